"""What llama-server itself says about its memory, read from its log.

Three kinds of lines carry llama.cpp's own accounting:

- the buffer lines printed while loading (default log level): ``CPU_Mapped model buffer size``,
  ``CPU KV buffer size``, ``CPU compute buffer size``, once per context (the MTP draft context
  prints its own KV and compute lines after ``creating MTP draft context``);
- ``llama_memory_breakdown_print`` (``common_memory_breakdown_print`` in newer builds), the table
  printed when the server exits, but only at log verbosity 4 (``-lv 4``): per device
  ``total = free + (self = model + context + compute) + unaccounted``;
- ``projected to use X MiB of device memory vs. Y MiB of free device memory`` from ``--fit on``,
  also at verbosity 4 (``host memory`` on a machine without a GPU).

The table covers the main context only; the buffer lines cover the draft context too, so both are
kept and :meth:`ServerMemory.total_mib` adds the draft's buffers to the table when both exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LINES = 200_000  # a log is read at most this far; the lines that matter come at load and at exit

_TABLE_TAG = "memory_breakdown_print:"
# |   - CUDA0 (RTX 4090)   | 24077 =  945 + (19187 = 17904 +     384 +     898) +        3945 |
_DEVICE_ROW = re.compile(r"\|\s+-\s+(?P<name>.+?)\s+\|\s*(?P<total>\d+)\s*=\s*(?P<free>\d+)\s*\+\s*\(\s*(?P<self>\d+)\s*="
                         r"\s*(?P<model>\d+)\s*\+\s*(?P<context>\d+)\s*\+\s*(?P<compute>\d+)\s*\)\s*\+\s*(?P<unacc>-?\d+)\s*\|")
# |   - Host               |                 58271 = 58259 +       0 +      12                |
_OTHER_ROW = re.compile(r"\|\s+-\s+(?P<name>.+?)\s+\|\s*(?P<self>\d+)\s*=\s*(?P<model>\d+)\s*\+\s*(?P<context>\d+)\s*\+"
                        r"\s*(?P<compute>\d+)\s*\|")
_PROJECTED = re.compile(r"projected to use (?P<used>\d+) MiB of (?P<kind>device|host) memory vs\. (?P<avail>\d+) MiB")
_BUFFER = re.compile(r"(?P<buft>[\w.\-]+)\s+(?P<kind>model|KV|compute|RS) buffer size\s*=\s*(?P<mib>[\d.]+) MiB")
_DRAFT_MARK = re.compile(r"creating (?:MTP )?draft context|creating MTP context|draft model buffer|loading draft model",
                         re.IGNORECASE)
_FLASH = re.compile(r"flash_attn\s*=\s*(?P<v>\w+)")
_FA_FUSED = re.compile(r"resolve_fused_ops: Flash Attention (?P<v>enabled|not supported)")
_LOADED = re.compile(r"load_tensors:|model loaded|server is listening|cleaning up before exit")
_N_CTX = re.compile(r"llama_context: n_ctx\s*=\s*(?P<n>\d+)")


@dataclass
class BreakdownRow:
    """One row of the exit table, in MiB. ``total``/``free``/``unaccounted`` exist only for devices."""

    name: str
    model: int
    context: int
    compute: int
    total: int | None = None
    free: int | None = None
    unaccounted: int | None = None
    printed_self: int | None = None  # the table's own "self" (its parts are each rounded down)

    @property
    def self_mib(self) -> int:
        return self.printed_self if self.printed_self is not None else self.model + self.context + self.compute

    @property
    def is_device(self) -> bool:
        return self.total is not None


@dataclass
class ContextBuffers:
    """The buffer lines of one llama_context (main or draft), in MiB.

    KV lines add up (a sliding-window model has two caches); a compute line replaces the earlier
    one of its buffer type, because the server reserves the graph again after adding speculation.
    """

    kv: float = 0.0
    compute_by_type: dict[str, float] = field(default_factory=dict)

    @property
    def compute(self) -> float:
        return sum(self.compute_by_type.values())

    @property
    def total(self) -> float:
        return self.kv + self.compute


@dataclass
class ServerMemory:
    """llama-server's own memory figures from one log, all in MiB."""

    rows: list[BreakdownRow] = field(default_factory=list)  # the exit table (main context)
    fit_rows: list[BreakdownRow] = field(default_factory=list)  # tables printed by --fit on before loading
    model_buffers: float = 0.0
    main: ContextBuffers = field(default_factory=ContextBuffers)
    draft: ContextBuffers | None = None
    projected_mib: int | None = None
    projected_kind: str | None = None  # "device" or "host"
    available_mib: int | None = None
    n_ctx: int | None = None
    flash_attn: bool | None = None

    @property
    def has_buffers(self) -> bool:
        return self.model_buffers > 0 or self.main.total > 0

    def device_rows(self) -> list[BreakdownRow]:
        return [r for r in self.rows if r.is_device]

    def parts_mib(self) -> dict[str, float]:
        """weights / kv / compute / draft_kv / draft_compute in MiB.

        From the buffer lines where printed (two decimals; they are what the table adds up), else
        from the exit table (whole MiB, rounded down by llama.cpp).
        """
        if self.has_buffers:
            weights, kv, compute = self.model_buffers, self.main.kv, self.main.compute
        else:
            weights = float(sum(r.model for r in self.rows))
            kv = float(sum(r.context for r in self.rows))
            compute = float(sum(r.compute for r in self.rows))
        draft = self.draft or ContextBuffers()
        return {"weights": weights, "kv": kv, "compute": compute, "draft_kv": draft.kv, "draft_compute": draft.compute}

    def total_mib(self) -> float | None:
        """What the server allocated for weights, KV and compute (main + draft contexts)."""
        if not self.rows and not self.has_buffers:
            return None
        if not self.has_buffers:
            return float(sum(r.self_mib for r in self.rows)) + (self.draft.total if self.draft else 0.0)
        return sum(self.parts_mib().values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["total_mib"] = self.total_mib()
        d["parts_mib"] = self.parts_mib() if self.total_mib() is not None else None
        return d


def _parse_row(text: str) -> BreakdownRow | None:
    m = _DEVICE_ROW.search(text)
    if m:
        return BreakdownRow(m["name"].strip(), int(m["model"]), int(m["context"]), int(m["compute"]),
                            total=int(m["total"]), free=int(m["free"]), unaccounted=int(m["unacc"]),
                            printed_self=int(m["self"]))
    m = _OTHER_ROW.search(text)
    if m:
        return BreakdownRow(m["name"].strip(), int(m["model"]), int(m["context"]), int(m["compute"]),
                            printed_self=int(m["self"]))
    return None


def parse_server_memory(lines: Iterable[str]) -> ServerMemory:
    """Read the memory lines of one server run (a log file's lines or the runner's history).

    Tables printed before the model loads come from ``--fit on`` measuring (kept as
    ``fit_rows``); the table after the load is the exit breakdown. A second load in the same log
    starts over.
    """
    out = ServerMemory()
    ctx: ContextBuffers = out.main
    in_draft = loaded = reading_table = False
    for i, line in enumerate(lines):
        if i >= MAX_LINES:
            break
        if _TABLE_TAG in line:
            if "memory breakdown [MiB]" in line:
                reading_table = True
                if loaded:
                    out.rows = []  # the last exit table wins; --fit's tables (main, then draft) all stay
                continue
            row = _parse_row(line) if reading_table else None
            if row is not None:
                (out.rows if loaded else out.fit_rows).append(row)
            continue
        reading_table = False
        if not loaded and _LOADED.search(line):
            loaded = True  # tables from here on are the exit breakdown, not --fit measuring
        m = _PROJECTED.search(line)
        if m:
            out.projected_mib, out.projected_kind, out.available_mib = int(m["used"]), m["kind"], int(m["avail"])
            continue
        if _DRAFT_MARK.search(line):
            in_draft = True
            out.draft = ctx = ContextBuffers()
            continue
        m = _BUFFER.search(line)
        if m:
            mib = float(m["mib"])
            if m["kind"] == "model":
                if in_draft:
                    continue  # a separate draft model's weights: not this model's
                if loaded and (out.main.total > 0 or out.rows):  # a second load into the same log
                    fit_rows, projected = out.fit_rows, (out.projected_mib, out.projected_kind, out.available_mib)
                    out = ServerMemory(fit_rows=fit_rows)
                    out.projected_mib, out.projected_kind, out.available_mib = projected
                    ctx = out.main
                loaded = True
                out.model_buffers += mib
            elif m["kind"] in ("KV", "RS"):
                ctx.kv += mib
            else:
                ctx.compute_by_type[m["buft"]] = mib
            continue
        if in_draft:
            continue
        m = _N_CTX.search(line)
        if m and "llama_context" in line:
            out.n_ctx = int(m["n"])
            continue
        m = _FA_FUSED.search(line)
        if m:
            out.flash_attn = m["v"].lower() == "enabled"
            continue
        m = _FLASH.search(line)
        if m and "llama_context" in line:
            word = m["v"].lower()
            if word in ("enabled", "disabled"):
                out.flash_attn = word == "enabled"
    return out
