"""What a model really used at its last launch, per (model file, llama-server build, machine).

After a launch ends, the server's own figures (``memory_breakdown``) are kept here; the next
estimate for the same model, build and machine starts from them ("learned from your last
launch") instead of from the launcher's model alone. A measurement applies only to launches
that share the settings that change memory (cache types, FlashAttention, slots, ubatch, logits
rows, MTP): those are its ``key``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core.host.identity import store_key
from llama_launcher.core.memory.breakdown import ServerMemory, parse_server_memory
from llama_launcher.core.memory.launch import LaunchMemory
from llama_launcher.core.state import paths, state_files

STORE_VERSION = 1
MAX_PER_MODEL = 8  # measurements kept per (model, build, machine): one per settings variant
MAX_MODELS = 500
MAX_MIB = float(1 << 30)


@dataclass
class MemoryMeasurement:
    """One launch's real use, in MiB (the draft context's buffers apart)."""

    context: int
    weights_mib: float
    kv_mib: float
    compute_mib: float
    draft_kv_mib: float = 0.0
    draft_compute_mib: float = 0.0
    backend_mib: float | None = None  # GPU memory lost beyond the buffers, when the free memory before launch was known
    flash_attn_used: bool | None = None
    estimated_mib: int | None = None  # the launcher's estimate for that launch, for the note
    key: dict[str, Any] = field(default_factory=dict)
    source: str = "buffers"  # "buffers" (the load-time buffer lines) or "breakdown" (the exit table)
    measured_at: str = ""

    @property
    def total_mib(self) -> float:
        return (self.weights_mib + self.kv_mib + self.compute_mib + self.draft_kv_mib + self.draft_compute_mib
                + (self.backend_mib or 0.0))

    def describe(self) -> str:
        text = f"it used {self.total_mib:,.0f} MiB at {self.context:,} tokens"
        if self.estimated_mib is not None:
            text += f", estimated then {self.estimated_mib:,}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mib(data: dict[str, Any], key: str, optional: bool = False) -> float | None:
    value = data.get(key)
    if value is None and optional:
        return None
    state_files.expect(value, (int, float), key)
    assert isinstance(value, (int, float))
    if not 0 <= value <= MAX_MIB:  # also false for NaN
        raise state_files.StateFileError(f"{key} is out of range")
    return float(value)


def _measurement(data: Any) -> MemoryMeasurement:
    state_files.expect(data, dict, "a measurement")
    fa = data.get("flash_attn_used")
    if fa is not None:
        state_files.expect(fa, bool, "flash_attn_used")
    key = data.get("key", {})
    state_files.expect(key, dict, "key")
    context = data.get("context")
    state_files.expect(context, int, "context")
    if not 0 < context <= 1 << 32:
        raise state_files.StateFileError("context is out of range")
    estimated = _mib(data, "estimated_mib", True)
    return MemoryMeasurement(
        context=context, weights_mib=_mib(data, "weights_mib") or 0.0, kv_mib=_mib(data, "kv_mib") or 0.0,
        compute_mib=_mib(data, "compute_mib") or 0.0, draft_kv_mib=_mib(data, "draft_kv_mib", True) or 0.0,
        draft_compute_mib=_mib(data, "draft_compute_mib", True) or 0.0,
        backend_mib=_mib(data, "backend_mib", True), flash_attn_used=fa,
        estimated_mib=int(estimated) if estimated is not None else None, key=dict(key),
        source=str(data.get("source", "buffers"))[:20], measured_at=str(data.get("measured_at", ""))[:40])


def _validate(data: Any) -> dict[str, list[MemoryMeasurement]]:
    state_files.expect(data, dict, "the file")
    if data.get("version") != STORE_VERSION:
        raise state_files.StateFileError(f"unknown version {data.get('version')!r}")
    results = data.get("results")
    state_files.expect(results, dict, "results")
    out: dict[str, list[MemoryMeasurement]] = {}
    for k, v in list(results.items())[:MAX_MODELS]:
        state_files.expect(v, list, f"results[{k!r}]")
        out[str(k)] = [_measurement(m) for m in v[:MAX_PER_MODEL]]
    return out


def store_file() -> Path:
    return paths.data_dir() / "memory_corrections.json"


def _load() -> dict[str, list[MemoryMeasurement]]:
    return state_files.read_json(store_file(), "the learned memory figures", _validate) or {}


def lookup_all(model_path: str, build: int | str | None, machine: str | None = None) -> list[MemoryMeasurement]:
    """Every measurement for this model, build and machine, newest first."""
    return list(_load().get(store_key(model_path, build, machine), []))


def save(model_path: str, build: int | str | None, measurement: MemoryMeasurement,
         machine: str | None = None) -> bool:
    results = _load()
    key = store_key(model_path, build, machine)
    kept = [m for m in results.get(key, []) if m.key != measurement.key]
    results[key] = [measurement, *kept][:MAX_PER_MODEL]
    if len(results) > MAX_MODELS:
        for old in list(results)[: len(results) - MAX_MODELS]:
            results.pop(old, None)
    data = {"version": STORE_VERSION, "results": {k: [m.to_dict() for m in v] for k, v in results.items()}}
    return state_files.save_json(store_file(), data, "the learned memory figures", indent=1)


def measurement_from_log(lines: Iterable[str], launch: LaunchMemory, context: int,
                         estimated_mib: int | None = None, gpu_free_before_mib: int | None = None
                         ) -> MemoryMeasurement | None:
    """The server's own figures from one run's log, or None when it printed none (it never loaded)."""
    mem = parse_server_memory(lines)
    return measurement_from_server_memory(mem, launch, context, estimated_mib, gpu_free_before_mib)


def measurement_from_server_memory(mem: ServerMemory, launch: LaunchMemory, context: int,
                                   estimated_mib: int | None = None, gpu_free_before_mib: int | None = None
                                   ) -> MemoryMeasurement | None:
    if mem.total_mib() is None:
        return None
    parts = {k: round(v, 2) for k, v in mem.parts_mib().items()}
    backend = None
    devices = mem.device_rows()
    if devices and gpu_free_before_mib is not None:
        # the GPU lost (free before - free while running); what no buffer explains is the backend's own
        lost = gpu_free_before_mib - sum(r.free or 0 for r in devices)
        explained = sum(r.self_mib for r in devices) + parts["draft_kv"] + parts["draft_compute"]
        backend = float(max(0, min(lost - explained, 1 << 16)))
    return MemoryMeasurement(
        context=mem.n_ctx or context, weights_mib=parts["weights"], kv_mib=parts["kv"], compute_mib=parts["compute"],
        draft_kv_mib=parts["draft_kv"], draft_compute_mib=parts["draft_compute"], backend_mib=backend,
        flash_attn_used=mem.flash_attn, estimated_mib=estimated_mib, key=launch.key(),
        source="buffers" if mem.has_buffers else "breakdown", measured_at=time.strftime("%Y-%m-%d %H:%M:%S"))


def learn_from_run(model_path: str, build: int | str | None, lines: Iterable[str], launch: LaunchMemory,
                   context: int, estimated_mib: int | None = None, gpu_free_before_mib: int | None = None,
                   machine: str | None = None) -> MemoryMeasurement | None:
    """After a launch ends: keep what the server reported, for the next estimate. None if it reported nothing."""
    m = measurement_from_log(lines, launch, context, estimated_mib, gpu_free_before_mib)
    if m is not None:
        save(model_path, build, m, machine)
    return m
