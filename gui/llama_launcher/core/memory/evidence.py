"""Gathering what the planner may use beyond metadata, and learning from a finished launch.

The planner is a pure function; the I/O it would need lives here, for the CLI and the window's
workers: this model's past launches (``memory_corrections``) and llama.cpp's projection
(``fit_projection``, two short runs of ``llama-fit-params``, remembered per model file and
settings for the session so that replanning stays instant).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from llama_launcher.core.memory import corrections as memory_corrections
from llama_launcher.core.memory.corrections import MemoryMeasurement
from llama_launcher.core.memory.estimate import MemoryEstimate, MemoryEvidence
from llama_launcher.core.memory.fit_projection import (
    FitProjection,
    FitProjectionError,
    project,
    projection_contexts,
    tool_beside,
)
from llama_launcher.core.memory.launch import LaunchMemory
from llama_launcher.core.models.model_info import ModelInfo

LOG_HEAD_BYTES = 4 * 1024 * 1024  # the load section of a log (buffer sizes) comes first ...
LOG_TAIL_BYTES = 256 * 1024  # ... and the exit breakdown last
NO_TOOL = "llama.cpp's projection: llama-fit-params is not beside this llama-server ('llama-launcher get-server' builds it)"

_lock = threading.Lock()
_projections: dict[tuple, FitProjection | str] = {}


def _model_stamp(path: str) -> tuple[str, int, int]:
    try:
        st = Path(path).stat()
        return path, st.st_size, st.st_mtime_ns
    except OSError:
        return path, 0, 0


def projection_for(binary: str, model: ModelInfo, launch: LaunchMemory, native: int,
                   chosen: int | None = None) -> FitProjection | str:
    """llama.cpp's projection for this model and settings, or the one line that says why there is none."""
    tool = tool_beside(binary)
    if tool is None:
        return NO_TOOL
    path = model.split_parts[0] if model.split_parts else model.path
    contexts = projection_contexts(native, chosen)
    key = (str(tool), _model_stamp(path), launch.flash_attn, launch.cache_type_k, launch.cache_type_v,
           launch.n_ubatch, launch.n_batch, contexts)
    with _lock:
        hit = _projections.get(key)
    if hit is not None:
        return hit
    try:
        result: FitProjection | str = project(tool, path, contexts, launch)
    except FitProjectionError as exc:
        result = f"llama.cpp's projection: {exc}"
    with _lock:
        _projections[key] = result
    return result


def gather(model: ModelInfo, build: int | str | None) -> MemoryEvidence:
    """This model's past launches (a small file: cheap enough for the GUI thread)."""
    return MemoryEvidence(measurements=memory_corrections.lookup_all(model.path, build))


def add_projection(evidence: MemoryEvidence, binary: str, model: ModelInfo, launch: LaunchMemory,
                   chosen: int) -> MemoryEvidence:
    """The same evidence with llama.cpp's projection for these settings (or why there is none).

    Projects at the model's native context (or the chosen one when the native is unknown) and at the
    chosen one. Slow the first time per model and settings: call it off the GUI thread. A failure of
    any kind is one line in ``projection_error``; the past launches are kept either way.
    """
    native = model.context_length if isinstance(model.context_length, int) and model.context_length > 0 else 0
    try:
        got = projection_for(binary, model, launch, native or chosen, chosen)
    except Exception as exc:  # a broken tool or file must not cost the past launches
        got = f"llama.cpp's projection failed: {exc}"
    if isinstance(got, str):
        return replace(evidence, projection=None, projection_error=got)
    return replace(evidence, projection=got, projection_error=None)


def read_log_lines(path: str | Path) -> list[str]:
    """The head and the tail of a server log: enough for the memory lines, bounded for a long session."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(LOG_HEAD_BYTES)
            size = fh.seek(0, 2)
            tail = b""
            if size > LOG_HEAD_BYTES:
                fh.seek(max(size - LOG_TAIL_BYTES, LOG_HEAD_BYTES))
                tail = fh.read(LOG_TAIL_BYTES)
    except OSError:
        return []
    lines = head.decode("utf-8", "replace").splitlines()
    if tail:
        lines += tail.decode("utf-8", "replace").splitlines()[1:]  # the first tail line may be cut
    return lines


def learn_after_launch(model: ModelInfo, build: int | str | None, estimate: MemoryEstimate | None,
                       log_path: str | Path | None = None, lines: Iterable[str] | None = None
                       ) -> MemoryMeasurement | None:
    """Call when a launch has ended: keep what the server reported for the next estimate of this model.

    Reads the run's log file (``ServerRunner.log_path``) or, without one, the lines given (the
    runner's history). Returns the measurement, or None when the server reported nothing (it never
    finished loading, or it ran without ``-lv 4``).
    """
    if estimate is None:
        return None
    text = read_log_lines(log_path) if log_path else list(lines or [])
    return memory_corrections.learn_from_run(model.path, build, text, estimate.launch, estimate.context,
                                             estimate.launcher_mib, estimate.gpu_free_mib)
