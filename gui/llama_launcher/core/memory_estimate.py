"""How much memory a model needs at a context size: weights plus KV cache, from GGUF metadata.

Users asked for a memory fit that counts the MTP draft context (Unsloth Studio ran out of memory
once MTP really engaged). The estimate is deliberately simple and explainable: file size for the
weights, a per-layer KV size that knows sliding-window layers, MLA and hybrid recurrent models,
and a fixed allowance for compute buffers. ``--fit on`` lets the server correct the rest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from llama_launcher.core.model_info import ModelInfo

MIB = 1024 * 1024
COMPUTE_OVERHEAD_MIB = 256
SERVER_SLOTS = 4  # llama-server's default -np auto gives 4 slots; SWA caches scale with them
UBATCH = 512
CACHE_TYPE_BYTES = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32,
                    "q4_1": 20 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32}
# Interleave patterns that llama.cpp hard-codes when the GGUF does not store one (every Nth layer is full).
DEFAULT_SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4, "gemma-embedding": 6}
BUDGET_MTP = 0.85  # MTP's draft context needs room (Unsloth PR #5585)
BUDGET_DEFAULT = 0.90


@dataclass
class MemoryEstimate:
    context: int
    weights_mib: int
    kv_mib: int
    overhead_mib: int
    total_mib: int
    budget_mib: int
    budget_source: str
    status: str  # "fits", "tight", "does not fit", "unknown"
    draft_mib: int = 0  # a draft model's weights and KV cache, when one is used

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        draft = f" + draft {self.draft_mib:,}" if self.draft_mib else ""
        return (f"{self.status}: ~{self.total_mib:,} MiB needed (weights {self.weights_mib:,} + KV {self.kv_mib:,}"
                f"{draft} + buffers {self.overhead_mib}) of {self.budget_mib:,} MiB ({self.budget_source})")


def _per_layer(value: Any, n_layers: int, default: int) -> list[int]:
    if isinstance(value, list) and value:
        vals = [int(v) for v in value if isinstance(v, (int, float))]
        return (vals + [vals[-1]] * n_layers)[:n_layers] if vals else [default] * n_layers
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [int(value)] * n_layers
    return [default] * n_layers


def _swa_layers(model: ModelInfo, n_layers: int) -> list[bool]:
    meta = model.arch_meta
    window = meta.get("attention.sliding_window")
    if not window:
        return [False] * n_layers
    pattern = meta.get("attention.sliding_window_pattern")
    if isinstance(pattern, list) and pattern:
        flags = [bool(p) for p in pattern]
        return (flags + [flags[-1]] * n_layers)[:n_layers]
    period = pattern if isinstance(pattern, int) and not isinstance(pattern, bool) and pattern > 0 else \
        DEFAULT_SWA_PATTERN.get(model.architecture or "", 0)
    if period <= 0:
        return [False] * n_layers  # unknown layout: count every layer as full (safe side)
    return [(i + 1) % period != 0 for i in range(n_layers)]


def kv_bytes(model: ModelInfo, context: int, cache_type: str = "f16", include_mtp: bool = False) -> int:
    """KV-cache bytes at ``context`` tokens for all slots together."""
    meta = model.arch_meta
    blocks = model.block_count or 0
    nextn = model.nextn_predict_layers or 0
    n_layers = blocks if include_mtp else max(blocks - nextn, 0)
    if n_layers <= 0:
        return 0
    heads = meta.get("attention.head_count")
    head0 = _per_layer(heads, 1, 1)[0] or 1
    embd = int(meta.get("embedding_length") or 0)
    default_len = embd // head0 if embd and head0 else 128
    k_len = int(meta.get("attention.key_length") or default_len)
    v_len = int(meta.get("attention.value_length") or default_len)
    kv_heads = _per_layer(meta.get("attention.head_count_kv"), n_layers, head0)
    per_elem = CACHE_TYPE_BYTES.get(cache_type, 2.0)
    lora = meta.get("attention.kv_lora_rank")
    swa = _swa_layers(model, n_layers)
    window = int(meta.get("attention.sliding_window") or 0)
    interval = meta.get("full_attention_interval")
    total = 0.0
    for i in range(n_layers):
        if isinstance(interval, int) and interval > 1 and (i + 1) % interval != 0:
            continue  # recurrent layer of a hybrid model: a small fixed state, no KV
        if kv_heads[i] == 0:
            continue  # per-layer arrays mark recurrent layers with 0 KV heads
        tokens = min(context, window * SERVER_SLOTS + UBATCH) if swa[i] and window else context
        if lora:
            # MLA caches the compressed KV (kv_lora_rank) plus the rope part of the key, once per token;
            # converted MLA GGUFs store key_length = kv_lora_rank + rope dims (576 = 512 + 64 for DeepSeek)
            rope = k_len - int(lora) if k_len > int(lora) else 64
            width = int(lora) + rope
        else:
            width = kv_heads[i] * (k_len + v_len)
        total += tokens * width * per_elem
    return int(total)


def estimate(model: ModelInfo, context: int, budget_mib: int, budget_source: str, cache_type: str = "f16",
             mtp_engaged: bool = False, draft: ModelInfo | None = None) -> MemoryEstimate:
    weights = model.file_size // MIB
    kv = kv_bytes(model, context, cache_type, include_mtp=mtp_engaged) // MIB
    draft_mib = (draft.file_size + kv_bytes(draft, context, cache_type)) // MIB if draft is not None else 0
    total = weights + kv + draft_mib + COMPUTE_OVERHEAD_MIB
    if budget_mib <= 0:
        status = "unknown"
    elif total <= budget_mib * 0.9:
        status = "fits"
    elif total <= budget_mib:
        status = "tight"
    else:
        status = "does not fit"
    return MemoryEstimate(context, weights, kv, COMPUTE_OVERHEAD_MIB, total, budget_mib, budget_source, status,
                          draft_mib)


def fit_context(model: ModelInfo, native: int, budget_mib: int, cache_type: str = "f16",
                mtp_engaged: bool = False, draft: ModelInfo | None = None) -> int:
    """Largest context <= native (multiple of 256, not below min(4096, native)) that fits the budget."""
    floor = min(4096, native)
    if estimate(model, native, budget_mib, "", cache_type, mtp_engaged, draft).total_mib <= budget_mib:
        return native
    lo, hi = max(floor // 256, 1), native // 256
    best = floor
    while lo <= hi:
        mid = (lo + hi) // 2
        if estimate(model, mid * 256, budget_mib, "", cache_type, mtp_engaged, draft).total_mib <= budget_mib:
            best = mid * 256
            lo = mid + 1
        else:
            hi = mid - 1
    return max(best, floor)
