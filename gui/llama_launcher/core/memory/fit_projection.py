"""llama.cpp's own memory projection, from ``llama-fit-params`` beside the llama-server binary.

``llama-fit-params --fit-print on`` loads the model without reading its weights, builds the
context and prints what it would allocate, per device and for the host, in MiB
(``<device> <model> <context> <compute>``). That is the same accounting ``--fit on`` uses, so the
launcher shows it beside its own estimate and lets it decide "fits" and Auto context.

Runs at a small, the planned and the native context give a piecewise line in the context size:
KV and, with FlashAttention off, the attention scores grow linearly with it (the logits reuse the
scores' memory, which bends the line). ``llama-fit-params`` has no
``--parallel`` and no speculative options: it projects one slot without the MTP draft context,
so the launcher adds its own estimate of those parts and says so.

Never called by the planner (which stays pure): the window's worker or the CLI runs it and passes
the :class:`FitProjection` in.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core.host.process_env import child_env, no_window_flags
from llama_launcher.core.llama_server.discovery import FIT_TOOL
from llama_launcher.core.memory.breakdown import parse_server_memory
from llama_launcher.core.memory.launch import LaunchMemory
from llama_launcher.core.state.errors import UserFacing

TOOL = FIT_TOOL
TIMEOUT_S = 60.0  # a no-alloc load reads only the header; seconds even for big models
MAX_OUTPUT = 1 << 20
_ROW = re.compile(r"^(?P<name>[A-Za-z][\w.\-]*)\s+(?P<model>\d+)\s+(?P<context>\d+)\s+(?P<compute>\d+)\s*$")
FA_VERBOSITY = 5  # what FlashAttention 'auto' resolved to is a debug line while the tool measures


class FitProjectionError(UserFacing):
    """llama-fit-params could not project this model; one line."""


@dataclass
class FitPoint:
    """One projection at one context size, in MiB, per device (``Host`` last)."""

    context: int
    rows: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name -> (model, context, compute)

    def total(self, devices_only: bool = False) -> int:
        rows = [v for k, v in self.rows.items() if not (devices_only and k == "Host")]
        return sum(sum(r) for r in rows)

    def parts(self) -> tuple[int, int, int]:
        m = sum(r[0] for r in self.rows.values())
        c = sum(r[1] for r in self.rows.values())
        k = sum(r[2] for r in self.rows.values())
        return m, c, k


@dataclass
class FitProjection:
    """llama.cpp's projection at a few context sizes; ``mib_at`` interpolates between them."""

    tool: str
    flash_attn: str  # "on", "off" or "auto" as passed
    cache_type_k: str
    cache_type_v: str
    n_ubatch: int
    points: list[FitPoint]
    flash_attn_used: bool | None = None  # what 'auto' resolved to, when the tool said

    def _value(self, point: FitPoint, which: int) -> float:
        return float(point.parts()[which] if which >= 0 else point.total())

    def _at(self, which: int, context: int) -> int:
        """Piecewise linear through the measured points (the scores and the logits share memory, so the
        growth bends where one overtakes the other); beyond them, the nearest segment's slope."""
        pts = sorted({p.context: p for p in self.points}.values(), key=lambda p: p.context)
        if len(pts) == 1:
            return max(int(round(self._value(pts[0], which))), 0)
        i = 1
        while i < len(pts) - 1 and pts[i].context < context:
            i += 1
        a, b = pts[i - 1], pts[i]
        va, vb = self._value(a, which), self._value(b, which)
        value = va + (vb - va) * (context - a.context) / (b.context - a.context)
        return max(int(round(value)), 0)

    def mib_at(self, context: int) -> int:
        """Projected MiB (weights + KV + compute, all devices and host) at ``context`` tokens."""
        return self._at(-1, context)

    def parts_at(self, context: int) -> dict[str, int]:
        return {name: self._at(i, context) for i, name in enumerate(("weights", "kv", "compute"))}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tool_beside(binary: str | Path) -> Path | None:
    """``llama-fit-params`` in the folder of ``binary`` (release zips, Homebrew and get-server put it there)."""
    p = Path(binary).parent / TOOL
    return p if p.is_file() else None


def parse_fit_print(text: str, context: int) -> FitPoint:
    point = FitPoint(context)
    for line in text.splitlines()[:1000]:
        m = _ROW.match(line.strip())
        if m:
            point.rows[m["name"]] = (int(m["model"]), int(m["context"]), int(m["compute"]))
    if not point.rows:
        raise FitProjectionError("llama-fit-params printed no memory projection")
    return point


def fit_params_argv(tool: str | Path, model_path: str, context: int, launch: LaunchMemory) -> list[str]:
    argv = [str(tool), "-m", model_path, "-c", str(context), "-fa", launch.flash_attn, "-ub", str(launch.n_ubatch),
            "-b", str(launch.n_batch), "--fit-print", "on", "-lv", str(FA_VERBOSITY)]
    if launch.cache_type_k != "f16" or launch.cache_type_v != "f16":
        argv += ["-ctk", launch.cache_type_k, "-ctv", launch.cache_type_v]
    return argv


def run_fit_print(tool: str | Path, model_path: str, context: int, launch: LaunchMemory,
                  timeout: float = TIMEOUT_S) -> tuple[FitPoint, bool | None]:
    """One projection; also what FlashAttention resolved to when the tool's log says."""
    argv = fit_params_argv(tool, model_path, context, launch)
    try:
        proc = subprocess.run(  # noqa: S603 - argv list, never a shell
            argv, stdin=subprocess.DEVNULL, capture_output=True, env=child_env(), timeout=timeout,
            creationflags=no_window_flags())
    except subprocess.TimeoutExpired as exc:
        raise FitProjectionError(f"llama-fit-params did not finish within {timeout:.0f} s") from exc
    except OSError as exc:
        raise FitProjectionError(f"cannot run {tool}: {exc.strerror or exc}") from exc
    out = proc.stdout[:MAX_OUTPUT].decode("utf-8", "replace")
    err = proc.stderr[-MAX_OUTPUT:].decode("utf-8", "replace")
    if proc.returncode != 0:
        last = [ln.strip() for ln in err.splitlines() if ln.strip()]
        raise FitProjectionError(f"llama-fit-params failed (exit {proc.returncode})" + (f": {last[-1][:200]}" if last else ""))
    mem = parse_server_memory(err.splitlines())
    table = mem.rows or mem.fit_rows
    if table:
        # the breakdown table (verbosity >= 4) also has the rows stdout leaves out (CPU_REPACK, ...)
        point = FitPoint(context, {r.name: (r.model, r.context, r.compute) for r in table})
    else:
        point = parse_fit_print(out, context)
    return point, mem.flash_attn


def project(tool: str | Path, model_path: str, contexts: tuple[int, ...], launch: LaunchMemory,
            timeout: float = TIMEOUT_S) -> FitProjection:
    """Run ``llama-fit-params`` at each context size (usually two) and keep the points."""
    points, fa_used = [], None
    for c in dict.fromkeys(contexts):
        point, fa = run_fit_print(tool, model_path, c, launch, timeout)
        points.append(point)
        fa_used = fa if fa is not None else fa_used
    if launch.flash_attn in ("on", "off"):
        fa_used = launch.flash_attn == "on"
    return FitProjection(str(tool), launch.flash_attn, launch.cache_type_k, launch.cache_type_v, launch.n_ubatch,
                         points, fa_used)


def projection_contexts(native: int, chosen: int | None = None) -> tuple[int, ...]:
    """Where to measure: a small context, the one the plan chose and the native one (joined piecewise)."""
    top = max(native, 1)
    points = {min(4096, top), top}
    if chosen:
        points.add(chosen)
    return tuple(sorted(points))
