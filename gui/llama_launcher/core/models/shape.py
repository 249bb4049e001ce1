"""The numbers the memory estimate needs, read once from GGUF metadata and checked.

Metadata comes from whoever made the file. A NaN head count, a string embedding width or a
block count of 2^32-1 used to give tracebacks, MemoryErrors or minutes of looping in the
estimate. Here every count must be a plain non-negative integer (llama.cpp itself refuses a key
of the wrong type), and each is bounded by what a real model can have and by what the file's size
can hold, so the estimate runs in bounded time and memory. Anything else is one
:class:`ShapeError` line naming the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.state.errors import UserFacing
from llama_launcher.core.state.safe_text import short_repr
from llama_launcher.core.state.units import file_size

MAX_LAYERS = 4096  # the deepest published models have ~130 layers
MIN_LAYER_BYTES = 32  # one tensor info record per layer at least (name, dims, type, offset)
MAX_WIDTH = 1 << 20  # embedding, feed-forward and head widths
MAX_HEADS = 1 << 14
MAX_VOCAB = 1 << 24
MAX_CONTEXT = (1 << 32) - 1  # llama.cpp's n_ctx is a 32-bit count
DEFAULT_HEAD_DIM = 128
DEFAULT_VOCAB = 32000  # when a file carries no tokenizer: a typical vocabulary, for the logits buffer
# Interleave patterns that llama.cpp hard-codes when the GGUF does not store one (every Nth layer is full).
DEFAULT_SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4, "gemma-embedding": 6}


class ShapeError(UserFacing, ValueError):
    """Metadata that no llama-server would load, or that no file of this size can hold; one line."""


def _size_text(n: int) -> str:
    return file_size(n)


def check_count(key: str, value: Any, upper: int, why: str = "") -> int:
    """``value`` as a count in [0, upper], else :class:`ShapeError` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and not math.isfinite(value):
            raise ShapeError(f"model metadata {key} is {short_repr(value)}, not a count")
        raise ShapeError(f"model metadata {key} is {short_repr(value)} ({type(value).__name__}), "
                         "not a whole number")
    if value < 0:
        raise ShapeError(f"model metadata {key} is negative ({value})")
    if value > upper:
        raise ShapeError(f"model metadata {key} = {value:,} is more than {why or f'the limit of {upper:,}'}")
    return value


def _optional(meta: dict[str, Any], key: str, upper: int, default: int, why: str = "") -> int:
    value = meta.get(key)
    if value is None:
        return default
    return check_count(key, value, upper, why)


def _per_layer(meta: dict[str, Any], key: str, n: int, upper: int, default: int) -> list[int]:
    """A scalar or a per-layer array (shorter arrays repeat their last value), each element checked."""
    value = meta.get(key)
    if value is None:
        return [default] * n
    if isinstance(value, list):
        if not value:
            return [default] * n
        vals = [check_count(f"{key}[{i}]", v, upper) for i, v in enumerate(value[:n])]
        return (vals + [vals[-1]] * n)[:n]
    return [check_count(key, value, upper)] * n


@dataclass(frozen=True)
class ModelShape:
    """Checked layer counts and widths; per-layer lists cover trunk and MTP layers (trunk first)."""

    n_trunk: int
    n_nextn: int
    n_embd: int
    n_vocab: int
    n_ff: list[int]
    n_head: list[int]
    n_head_kv: list[int]
    k_len: int
    v_len: int
    window: int
    swa: list[bool]
    kv_lora_rank: int
    recurrent: list[bool]
    file_size: int
    k_len_swa: int = 0  # Gemma 4: the sliding-window layers' head width (0: the same as k_len)
    v_len_swa: int = 0
    kv_layers: int = -1  # layers below this hold a KV cache; the rest reuse an earlier layer's (-1: all)

    def has_kv(self, layer: int) -> bool:
        return self.kv_layers < 0 or layer < self.kv_layers

    @property
    def n_layers(self) -> int:
        return self.n_trunk + self.n_nextn

    def layers(self, mtp: bool) -> range:
        """The trunk's layers, or the MTP layers (which only the draft context holds)."""
        return range(self.n_trunk, self.n_layers) if mtp else range(self.n_trunk)


def _swa_flags(model: ModelInfo, meta: dict[str, Any], n: int, window: int) -> list[bool]:
    if not window:
        return [False] * n
    pattern = meta.get("attention.sliding_window_pattern")
    if isinstance(pattern, list) and pattern:
        flags = []
        for i, p in enumerate(pattern[:n]):
            if not isinstance(p, (bool, int)) or isinstance(p, int) and not isinstance(p, bool) and p not in (0, 1):
                raise ShapeError(f"model metadata attention.sliding_window_pattern[{i}] is {short_repr(p)}, "
                                 "not true/false")
            flags.append(bool(p))
        return (flags + [flags[-1]] * n)[:n]
    if pattern is not None and not isinstance(pattern, list):
        period = check_count("attention.sliding_window_pattern", pattern, MAX_LAYERS)
    else:
        period = DEFAULT_SWA_PATTERN.get(model.architecture or "", 0)
    if period <= 0:
        return [False] * n  # unknown layout: count every layer as full (the safe side)
    return [(i + 1) % period != 0 for i in range(n)]


def model_shape(model: ModelInfo) -> ModelShape:
    """Check the metadata the estimate reads; raise :class:`ShapeError` (one line) when it is unusable."""
    meta = model.arch_meta if isinstance(model.arch_meta, dict) else {}
    size = model.file_size if isinstance(model.file_size, int) and model.file_size > 0 else 0
    layer_cap = min(MAX_LAYERS, max(size // MIN_LAYER_BYTES, 1)) if size else MAX_LAYERS
    layer_why = (f"a {_size_text(size)} file can hold" if size and layer_cap < MAX_LAYERS
                 else f"any real model has ({MAX_LAYERS:,})")
    blocks = check_count("block_count", model.block_count if model.block_count is not None else 0, layer_cap, layer_why)
    nextn = check_count("nextn_predict_layers", model.nextn_predict_layers or 0, blocks,
                        f"its block_count ({blocks})")
    n = blocks
    width_cap = min(MAX_WIDTH, size) if size else MAX_WIDTH
    width_why = f"a {_size_text(size)} file can hold" if size and width_cap < MAX_WIDTH else ""
    n_embd = _optional(meta, "embedding_length", width_cap, 0, width_why)
    n_head = _per_layer(meta, "attention.head_count", max(n, 1), MAX_HEADS, 0)
    head0 = next((h for h in n_head if h), 0)
    default_len = n_embd // head0 if n_embd and head0 else DEFAULT_HEAD_DIM
    k_len = _optional(meta, "attention.key_length", width_cap, default_len, width_why)
    v_len = _optional(meta, "attention.value_length", width_cap, default_len, width_why)
    n_head_kv = _per_layer(meta, "attention.head_count_kv", max(n, 1), MAX_HEADS, head0)
    n_ff = _per_layer(meta, "feed_forward_length", max(n, 1), width_cap, 4 * n_embd)
    window = _optional(meta, "attention.sliding_window", MAX_CONTEXT, 0)
    lora = _optional(meta, "attention.kv_lora_rank", width_cap, 0, width_why)
    interval = _optional(meta, "full_attention_interval", MAX_LAYERS, 0)
    vocab = model_vocab(model)
    # the interval counts trunk layers only: MTP blocks are attention layers (llama.cpp's qwen35/minimax-01)
    recurrent = [(interval > 1 and i < n - nextn and (i + 1) % interval != 0) or n_head_kv[i] == 0 for i in range(n)]
    k_swa = _optional(meta, "attention.key_length_swa", width_cap, 0, width_why)
    v_swa = _optional(meta, "attention.value_length_swa", width_cap, 0, width_why)
    shared = _optional(meta, "attention.shared_kv_layers", n, 0, f"its block_count ({n})")
    return ModelShape(n_trunk=n - nextn, n_nextn=nextn, n_embd=n_embd, n_vocab=vocab, n_ff=n_ff[:n],
                      n_head=n_head[:n], n_head_kv=n_head_kv[:n], k_len=k_len, v_len=v_len, window=window,
                      swa=_swa_flags(model, meta, n, window), kv_lora_rank=lora, recurrent=recurrent, file_size=size,
                      k_len_swa=k_swa, v_len_swa=v_swa, kv_layers=n - shared if shared else -1)


def model_vocab(model: ModelInfo) -> int:
    value = model.arch_meta.get("vocab_size") if isinstance(model.arch_meta, dict) else None
    if value is None:
        return DEFAULT_VOCAB
    return check_count("vocab_size", value, MAX_VOCAB) or DEFAULT_VOCAB


def check_context(value: Any, what: str) -> int:
    """A context size from the user or the metadata, as a count llama-server accepts."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError(f"{what} is {short_repr(value)}, not a whole number of tokens")
    if value <= 0:
        raise ShapeError(f"{what} must be positive (got {value})")
    if value > MAX_CONTEXT:
        raise ShapeError(f"{what} {value:,} is more than llama-server's limit of {MAX_CONTEXT:,} tokens")
    return value
