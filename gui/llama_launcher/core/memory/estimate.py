"""How much memory llama-server will use: weights + KV cache + compute buffers + backend + MTP draft.

Users asked for a memory fit that matches what the server really takes (a plan that said "fits"
was 2.7x short on a GPU with FlashAttention off). Each part follows llama.cpp b11434's own
accounting and was checked against the server's breakdown (docs/benchmarks.md):

- weights: the file, less the MTP blocks when MTP is off (llama.cpp loads them only for MTP);
- KV cache: per layer, sliding-window layers hold ``window x slots + ubatch`` cells, MLA models
  the compressed width, hybrid recurrent models only their attention layers; the MTP layers' KV
  lives in the draft context, not the main one;
- compute buffers, for the worst-case ubatch (512 tokens): with FlashAttention off the attention
  scores (cells x ubatch x heads, f32) plus an f32 mask grow with the context; with it on only an
  f16 mask does. Activations add ubatch x (2 x embedding + feed-forward + query width) f32; the
  logits rows the server reserves (slots x (1 + draft length)) x vocabulary f32 reuse the scores'
  memory, so the larger of the two counts;
- the backend's own context (CUDA: hundreds of MiB) that no buffer accounts for;
- the MTP draft context: its KV (at the drafter's KV type, f16 unless ``-ctkd/-ctvd``) and its own
  compute buffers;
- an MTP head in its own file: its tensors and a draft context of its NextN layers (never a second
  model's KV over every layer); a Gemma 4 assistant reads the target's cache and has none of its own;
- a draft model (speculative decoding with a second GGUF): its weights, KV and compute buffers,
  estimated like the main model's at the same context.

The launch settings these depend on are ``launch_memory.LaunchMemory``. A measured launch
(``memory_corrections``) or llama.cpp's projection (``fit_projection``) decides instead of the
launcher's model when the caller passes one in; the estimate says which decided.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from llama_launcher.core.host.backends import Backend
from llama_launcher.core.memory.launch import CACHE_TYPE_BYTES, LaunchMemory
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.models.shape import ModelShape, check_context, model_shape

if TYPE_CHECKING:  # imported for types only: both modules are plain data + parsing
    from llama_launcher.core.memory.corrections import MemoryMeasurement
    from llama_launcher.core.memory.fit_projection import FitProjection

MIB = 1024 * 1024
CELL_PAD = 256  # llama.cpp pads the context and each cache to 256 cells
F32, F16 = 4, 2
BUDGET_MTP = 0.85  # MTP's draft context needs room (Unsloth PR #5585)
BUDGET_DEFAULT = 0.90
# Memory a backend takes for itself, outside any llama.cpp buffer (CUDA: context, cuBLAS workspace,
# memory pool). Not measurable on this project's CPU-only machines: the CUDA run put it at
# several hundred MiB. A launch on the GPU replaces it with what that GPU really lost.
BACKEND_CONTEXT_MIB = {Backend.CUDA: 450, Backend.ROCM: 450, Backend.SYCL: 450, Backend.VULKAN: 250, Backend.METAL: 0,
                       Backend.CPU: 0}
DECIDED_LAUNCHER, DECIDED_LLAMA_CPP, DECIDED_LEARNED = (
    "launcher estimate", "llama.cpp projection", "learned from your last launch")


@dataclass
class MemoryEvidence:
    """What the caller knows beyond metadata: llama.cpp's projection and this model's past launches."""

    projection: FitProjection | None = None
    measurements: list[MemoryMeasurement] = field(default_factory=list)
    projection_error: str | None = None  # why there is no projection (tool missing, failed), for the notes

    def learned_for(self, launch: LaunchMemory) -> MemoryMeasurement | None:
        """The newest launch made with the same memory-relevant settings."""
        want = launch.key()
        return next((m for m in self.measurements if m.key == want), None)

    def projection_for(self, launch: LaunchMemory) -> FitProjection | None:
        p = self.projection
        if p is None or p.flash_attn != launch.flash_attn or p.cache_type_k != launch.cache_type_k \
                or p.cache_type_v != launch.cache_type_v or p.n_ubatch != launch.n_ubatch:
            return None
        return p


@dataclass
class MemoryParts:
    """One estimate's parts, in bytes."""

    weights: int = 0
    kv: int = 0
    compute: int = 0
    backend: int = 0
    draft_kv: int = 0
    draft_compute: int = 0
    draft_model: int = 0  # a separate draft GGUF: its weights, KV and compute together
    head: int = 0  # an MTP head in its own file: its tensors (its draft context is draft_kv/draft_compute)

    @property
    def draft(self) -> int:
        return self.draft_kv + self.draft_compute

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.compute + self.backend + self.draft + self.draft_model + self.head


@dataclass
class MemoryEstimate:
    context: int
    weights_mib: int
    kv_mib: int
    compute_mib: int
    backend_mib: int
    draft_mib: int
    total_mib: int
    budget_mib: int
    budget_source: str
    status: FitStatus
    flash_attn: bool = True
    launcher_mib: int = 0  # the launcher's own model, whatever decided
    llama_cpp_mib: int | None = None  # llama.cpp's projection, completed with what it does not count
    decided_by: str = DECIDED_LAUNCHER
    learned_note: str | None = None
    notes: list[str] = field(default_factory=list)
    launch: LaunchMemory = field(default_factory=LaunchMemory)  # what the estimate assumed (the learning key)
    gpu_free_mib: int | None = None  # free GPU memory when planned: what a launch on the GPU is measured against
    draft_model_mib: int = 0  # a draft model's weights, KV cache and compute, when one is used
    head_mib: int = 0  # an MTP head file's own tensors, when MTP runs from one
    head_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def parts_text(self) -> str:
        parts = [f"weights {self.weights_mib:,}", f"KV {self.kv_mib:,}", f"compute {self.compute_mib:,}"]
        if self.backend_mib:
            parts.append(f"backend {self.backend_mib:,}")
        if self.head_mib:
            parts.append(f"MTP head {self.head_mib:,}")
        if self.draft_mib:
            parts.append(f"MTP draft {self.draft_mib:,}")
        if self.draft_model_mib:
            parts.append(f"draft model {self.draft_model_mib:,}")
        return " + ".join(parts)

    def source_text(self) -> str:
        if self.decided_by == DECIDED_LEARNED:
            text = f"{DECIDED_LEARNED}{f' ({self.learned_note})' if self.learned_note else ''}"
        elif self.decided_by == DECIDED_LLAMA_CPP:
            text = f"decided by llama.cpp's projection (llama-fit-params); launcher estimate {self.launcher_mib:,} MiB"
        else:
            text = DECIDED_LAUNCHER
            if self.llama_cpp_mib is not None:
                text += f"; llama.cpp projects {self.llama_cpp_mib:,} MiB"
        return text

    def describe(self) -> str:
        return (f"{self.status}: ~{self.total_mib:,} MiB needed ({self.parts_text()}) of {self.budget_mib:,} MiB "
                f"({self.budget_source}); {self.source_text()}")


def memory_line(mem: MemoryEstimate) -> str:
    """The window's memory line: the context really used, status, total, each part, the budget, what decided."""
    return f"at {mem.context:,} tokens — {mem.describe()}"


def memory_tooltip(mem: MemoryEstimate) -> str:
    """The window's memory tooltip: every part with what it depends on, and both estimates."""
    launch = mem.launch
    lines = [
        f"Weights: {mem.weights_mib:,} MiB (the model file" + ("; MTP layers load only with MTP)" if not launch.mtp else ")"),
        f"KV cache: {mem.kv_mib:,} MiB at {mem.context:,} tokens ({launch.n_parallel} slots, "
        f"{launch.cache_type_k}/{launch.cache_type_v})",
        f"Compute buffers: {mem.compute_mib:,} MiB (FlashAttention {'on' if mem.flash_attn else 'off'}, "
        f"ubatch {launch.n_ubatch}, {launch.n_outputs()} logits rows)",
        f"Backend ({launch.backend}): {mem.backend_mib:,} MiB",
        *([f"MTP head: {mem.head_mib:,} MiB ({mem.head_file}: its own tensors, not a second model)"]
          if mem.head_mib else []),
        f"MTP draft context: {mem.draft_mib:,} MiB" + (f" (the drafter's KV cache: {launch.draft_cache_type_k})"
                                                        if mem.draft_mib else "") if launch.mtp
        else "MTP draft context: none",
        *([f"Draft model: {mem.draft_model_mib:,} MiB (its weights, KV cache and compute buffers)"]
          if mem.draft_model_mib else []),
        f"Budget: {mem.budget_mib:,} MiB ({mem.budget_source})",
        f"Decided by: {mem.source_text()}",
        f"Launcher estimate: {mem.launcher_mib:,} MiB"
        + (f"; llama.cpp projection: {mem.llama_cpp_mib:,} MiB" if mem.llama_cpp_mib is not None else ""),
    ]
    return "\n".join(lines + mem.notes)


def _pad(n: int, to: int = CELL_PAD) -> int:
    return -(-n // to) * to


@dataclass(frozen=True)
class _Cells:
    """KV cells per stream and the number of streams, as llama.cpp sizes its caches."""

    full: int
    swa: int
    streams: int
    tokens: int  # the worst-case ubatch


def _cells(shape: ModelShape, context: int, launch: LaunchMemory) -> _Cells:
    n_ctx = _pad(context)
    slots = max(launch.n_parallel, 1)
    if launch.kv_unified:
        per_stream, streams = n_ctx, 1
    else:
        per_stream, streams = _pad(max(n_ctx // slots, 1)), slots
    if shape.window and not launch.swa_full:
        swa = _pad(min(per_stream, shape.window * (slots if launch.kv_unified else 1) + launch.n_ubatch))
    else:
        swa = per_stream
    return _Cells(per_stream, swa, streams, min(n_ctx, max(launch.n_ubatch, 1)))


def _kv_width_bytes(shape: ModelShape, layer: int, launch: LaunchMemory) -> float:
    k_bytes = CACHE_TYPE_BYTES.get(launch.cache_type_k, 2.0)
    v_bytes = CACHE_TYPE_BYTES.get(launch.cache_type_v, 2.0)
    if shape.kv_lora_rank:
        # MLA caches the compressed KV (kv_lora_rank) plus the rope part of the key, once per token;
        # converted MLA GGUFs store key_length = kv_lora_rank + rope dims (576 = 512 + 64 for DeepSeek)
        rope = shape.k_len - shape.kv_lora_rank if shape.k_len > shape.kv_lora_rank else 64
        return (shape.kv_lora_rank + rope) * k_bytes
    heads = shape.n_head_kv[layer]
    k_len, v_len = shape.k_len, shape.v_len
    if shape.window and shape.swa[layer] and shape.k_len_swa:  # Gemma 4: narrower heads on sliding-window layers
        k_len, v_len = shape.k_len_swa, shape.v_len_swa or shape.k_len_swa
    return heads * (k_len * k_bytes + v_len * v_bytes)


def _attention_layers(shape: ModelShape, layers: range) -> list[int]:
    return [i for i in layers if not shape.recurrent[i]]


def _kv_bytes(shape: ModelShape, layers: range, cells: _Cells, launch: LaunchMemory) -> int:
    total = 0.0
    for i in _attention_layers(shape, layers):
        if not shape.has_kv(i):
            continue  # Gemma 4's shared-KV layers read an earlier layer's cache
        n = cells.swa if shape.swa[i] and shape.window else cells.full
        total += cells.streams * n * _kv_width_bytes(shape, i, launch)
    return int(total)


def _compute_bytes(shape: ModelShape, layers: range, cells: _Cells, launch: LaunchMemory, outputs: int,
                   flash_attn: bool) -> int:
    attn = _attention_layers(shape, layers)
    t = cells.tokens
    if attn:
        has_full = any(not (shape.swa[i] and shape.window) for i in attn)
        has_swa = any(shape.swa[i] and shape.window for i in attn)
        mask_cells = (cells.full if has_full else 0) + (cells.swa if has_swa else 0)
        masks = mask_cells * t * (F16 if flash_attn else F32)
        scores = 0 if flash_attn else max(
            (cells.swa if shape.swa[i] and shape.window else cells.full) * t * shape.n_head[i] * F32 for i in attn)
    else:
        masks = scores = 0
    heads = max((shape.n_head[i] for i in layers), default=0)
    ff = max((shape.n_ff[i] for i in layers), default=0)
    activations = t * F32 * (2 * shape.n_embd + ff + heads * shape.k_len)
    logits = min(outputs, t) * shape.n_vocab * F32
    # the logits are allocated after the last attention: the graph allocator reuses the scores' memory
    return masks + activations + max(scores, logits)


def _weights_bytes(model: ModelInfo, shape: ModelShape, mtp: bool) -> int:
    size = shape.file_size
    if mtp or not shape.n_nextn or not model.parameters:
        return size
    blocks = model.block_parameters if isinstance(model.block_parameters, list) else []
    mtp_params = sum(p for p in blocks[shape.n_trunk:] if isinstance(p, int) and p > 0)
    return max(size - int(mtp_params * size / model.parameters), 0)


def launcher_parts(model: ModelInfo, context: int, launch: LaunchMemory, shape: ModelShape | None = None,
                   flash_attn: bool | None = None) -> MemoryParts:
    """The launcher's own model of every part, in bytes."""
    shape = shape or model_shape(model)
    fa = launch.flash_attn_on() if flash_attn is None else flash_attn
    cells = _cells(shape, context, launch)
    trunk = shape.layers(mtp=False)
    parts = MemoryParts(
        weights=_weights_bytes(model, shape, launch.mtp),
        kv=_kv_bytes(shape, trunk, cells, launch),
        compute=_compute_bytes(shape, trunk, cells, launch, launch.n_outputs(), fa),
        backend=BACKEND_CONTEXT_MIB.get(launch.backend, 0) * MIB,
    )
    if launch.mtp and shape.n_nextn:
        draft = shape.layers(mtp=True)
        parts.draft_kv = _kv_bytes(shape, draft, cells, launch.draft_context())
        parts.draft_compute = _compute_bytes(shape, draft, cells, launch, launch.n_parallel, fa)
    return parts


def head_parts(head: ModelInfo, context: int, launch: LaunchMemory, flash_attn: bool | None = None) -> MemoryParts:
    """An MTP head in its own file (or a Gemma 4 assistant), as llama.cpp loads it: its own tensors (the
    file), and a draft context of its NextN layers only (``ctx_type`` MTP filters the cache to them), at
    the target's context and the drafter's KV cache type, one output per slot. A Gemma 4 assistant
    reads the target's KV cache (``ctx_other``): it has none of its own."""
    shape = model_shape(head)
    fa = launch.flash_attn_on() if flash_attn is None else flash_attn
    cells = _cells(shape, context, launch)
    layers = shape.layers(mtp=True)
    shares_kv = head.architecture == "gemma4-assistant"
    return MemoryParts(head=shape.file_size,
                       draft_kv=0 if shares_kv else _kv_bytes(shape, layers, cells, launch.draft_context()),
                       draft_compute=_compute_bytes(shape, layers, cells, launch, launch.n_parallel, fa))


def kv_bytes(model: ModelInfo, context: int, cache_type: str = "f16", include_mtp: bool = False) -> int:
    """KV-cache bytes at ``context`` tokens for all slots together (main context, plus the MTP layers' KV)."""
    shape = model_shape(model)
    launch = LaunchMemory(cache_type_k=cache_type, cache_type_v=cache_type)
    cells = _cells(shape, context, launch)
    total = _kv_bytes(shape, shape.layers(mtp=False), cells, launch)
    if include_mtp:
        total += _kv_bytes(shape, shape.layers(mtp=True), cells, launch)
    return total


class FitStatus(str, enum.Enum):
    """How a launch's memory compares with its budget (a ``str``: printed and stored as its value)."""

    FITS = "fits"
    TIGHT = "tight"  # within the budget's last 10%
    DOES_NOT_FIT = "does not fit"
    UNKNOWN = "unknown"  # no budget to compare with

    def __str__(self) -> str:
        return self.value


def _status(total: int, budget: int) -> FitStatus:
    if budget <= 0:
        return FitStatus.UNKNOWN
    if total <= budget * 0.9:
        return FitStatus.FITS
    if total <= budget:
        return FitStatus.TIGHT
    return FitStatus.DOES_NOT_FIT


def _mib(n: float) -> int:
    return int(round(n / MIB))


def _total_mib(p: MemoryParts) -> int:
    """The sum of the parts as shown (each rounded), so that the shown figures add up."""
    return (_mib(p.weights) + _mib(p.kv) + _mib(p.compute) + _mib(p.backend) + _mib(p.draft) + _mib(p.draft_model)
            + _mib(p.head))


def _scaled(now: int, then: int, real_mib: float) -> int:
    """A part measured at another context: the launcher's growth applied to what the server really took."""
    if then <= 0:
        return int(real_mib * MIB)
    return int(now * real_mib * MIB / then)


def _learned(model: ModelInfo, shape: ModelShape, context: int, launch: LaunchMemory,
             measured: MemoryMeasurement) -> tuple[MemoryParts, bool]:
    fa = measured.flash_attn_used if measured.flash_attn_used is not None else launch.flash_attn_on()
    now = launcher_parts(model, context, launch, shape, fa)
    then = launcher_parts(model, measured.context, launch, shape, fa)
    parts = MemoryParts(
        weights=int(measured.weights_mib * MIB),
        kv=_scaled(now.kv, then.kv, measured.kv_mib),
        compute=_scaled(now.compute, then.compute, measured.compute_mib),
        backend=int(measured.backend_mib * MIB) if measured.backend_mib is not None else now.backend,
        draft_kv=_scaled(now.draft_kv, then.draft_kv, measured.draft_kv_mib),
        draft_compute=_scaled(now.draft_compute, then.draft_compute, measured.draft_compute_mib),
    )
    return parts, fa


def projected_parts(model: ModelInfo, context: int, launch: LaunchMemory, projection: FitProjection,
                    shape: ModelShape | None = None) -> MemoryParts:
    """llama.cpp's projection, moved from what llama-fit-params runs (one sequence, a ubatch of logits,
    no draft) to what llama-server will run, with the launcher's model for those differences only."""
    shape = shape or model_shape(model)
    fa = projection.flash_attn_used if projection.flash_attn_used is not None else launch.flash_attn_on()
    tool_cfg = replace(launch, n_parallel=1, kv_unified=True, n_draft=launch.n_ubatch, mtp=False)
    ours = launcher_parts(model, context, launch, shape, fa)
    as_tool = launcher_parts(model, context, tool_cfg, shape, fa)
    got = projection.parts_at(context)
    return MemoryParts(
        weights=got["weights"] * MIB + (ours.weights - as_tool.weights),
        kv=max(got["kv"] * MIB + (ours.kv - as_tool.kv), 0),
        compute=max(got["compute"] * MIB + (ours.compute - as_tool.compute), 0),
        backend=ours.backend, draft_kv=ours.draft_kv, draft_compute=ours.draft_compute,
    )


def estimate(model: ModelInfo, context: int, budget_mib: int, budget_source: str,
             launch: LaunchMemory | None = None,
             projection: FitProjection | None = None, learned: MemoryMeasurement | None = None,
             shape: ModelShape | None = None, gpu_free_mib: int | None = None,
             draft: ModelInfo | None = None, head: ModelInfo | None = None) -> MemoryEstimate:
    """Estimate one launch (``launch``: its memory settings; None: llama-server's defaults).

    Raises :class:`ShapeError` (one line) for unusable metadata or context."""
    context = check_context(context, "context size")
    launch = launch or LaunchMemory()
    shape = shape or model_shape(model)
    ours = launcher_parts(model, context, launch, shape)
    fa = launch.flash_attn_on()
    llama_cpp = projected_parts(model, context, launch, projection, shape) if projection is not None else None
    decided, parts, note = DECIDED_LAUNCHER, ours, None
    if learned is not None:
        parts, fa = _learned(model, shape, context, launch, learned)
        decided, note = DECIDED_LEARNED, learned.describe()
    elif llama_cpp is not None:
        decided, parts = DECIDED_LLAMA_CPP, llama_cpp
        if projection is not None and projection.flash_attn_used is not None:
            fa = projection.flash_attn_used
    if draft is not None:  # neither a past launch nor llama.cpp's projection counted a draft model
        d = launcher_parts(draft, context, replace(launch, mtp=False))
        parts = replace(parts, draft_model=d.weights + d.kv + d.compute)
        ours = replace(ours, draft_model=parts.draft_model)
    if head is not None:  # nor an MTP head's file; its draft context only where a past launch did not measure one
        h = head_parts(head, context, launch, fa)
        parts = replace(parts, head=h.head, draft_kv=parts.draft_kv or h.draft_kv,
                        draft_compute=parts.draft_compute or h.draft_compute)
        ours = replace(ours, head=h.head, draft_kv=h.draft_kv, draft_compute=h.draft_compute)
    weights, kv, compute = _mib(parts.weights), _mib(parts.kv), _mib(parts.compute)
    backend, mtp_draft = _mib(parts.backend), _mib(parts.draft)
    total = _total_mib(parts)
    return MemoryEstimate(
        context=context, weights_mib=weights, kv_mib=kv, compute_mib=compute, backend_mib=backend, draft_mib=mtp_draft,
        total_mib=total, budget_mib=budget_mib, budget_source=budget_source, status=_status(total, budget_mib),
        flash_attn=fa, launcher_mib=_total_mib(ours), llama_cpp_mib=_total_mib(llama_cpp) if llama_cpp else None,
        decided_by=decided, learned_note=note, launch=launch, gpu_free_mib=gpu_free_mib,
        draft_model_mib=_mib(parts.draft_model), head_mib=_mib(parts.head),
        head_file=head.file_name if head is not None else None)


def fit_context(model: ModelInfo, native: int, budget_mib: int, launch: LaunchMemory | None = None,
                projection: FitProjection | None = None, learned: MemoryMeasurement | None = None,
                draft: ModelInfo | None = None, head: ModelInfo | None = None) -> int:
    """Largest context <= native (multiple of 256, not below min(4096, native)) that fits the budget."""
    native = check_context(native, "the model's native context")
    shape = model_shape(model)

    def fits(ctx: int) -> bool:
        return estimate(model, ctx, budget_mib, "", launch, projection, learned, shape,
                        draft=draft, head=head).total_mib <= budget_mib

    floor = min(4096, native)
    if fits(native):
        return native
    lo, hi = max(floor // 256, 1), native // 256
    best = floor
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(mid * 256):
            best = mid * 256
            lo = mid + 1
        else:
            hi = mid - 1
    return max(best, floor)
