"""What the launcher knows about one GGUF file, derived from its header alone.

Parameter counts come from tensor shapes, not from the model's name (the seed's regex on the
name mislabelled models); the MTP trunk is reported apart from the total because the small-model
gate of the planner is about the trunk that runs every token.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Any

from llama_launcher.core.models.gguf_enums import LlamaFileType
from llama_launcher.core.models.gguf_header import (
    TOKENS_KEY,
    GGUFError,
    GGUFHeader,
    SkippedArray,
    read_header,
)
from llama_launcher.core.models.sidecar import detect_head
from llama_launcher.core.state.typed_json import checked_fields, field_checks

MAX_NAME_CHARS = 256  # general.name is for display; a header may hold up to 1 MiB of it
MAX_ARCH_CHARS = 64
MAX_LISTED_PARTS = 8  # missing split parts named in an entry (the count says how many in all)
SPLIT_RE = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
MTP_NAME_TAG = re.compile(r"(?:^|[-_.\s])MTP(?:$|[-_.\s])", re.IGNORECASE)

# Keys copied under the architecture prefix for the memory estimate.
_ARCH_KEYS = (
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.sliding_window",
    "attention.sliding_window_pattern",
    "attention.kv_lora_rank",
    "attention.key_length_mla",
    "attention.value_length_mla",
    "full_attention_interval",
    "ssm.state_size",
    "expert_count",
    "nextn_predict_layers",
    "target_hidden_size",  # speculator heads (eagle3, dflash): the hidden size of the model they draft for
    "target_layers",
    "vocab_size",
    "block_size",  # dflash/dspark heads: the trained block size that clamps the draft length
    "sample_from_anchor",
    "embedding_length_out",  # gemma4-assistant: the hidden size of the Gemma 4 model it drafts for
    "embedding_length_per_layer_input",  # Gemma 4 (E2B/E4B): per-layer embeddings
    "attention.shared_kv_layers",  # Gemma 4: the last N layers reuse earlier layers' KV (no cache of their own)
    "attention.key_length_swa",  # Gemma 4: sliding-window layers' head width differs from the full layers'
    "attention.value_length_swa",
)


@dataclass
class ModelInfo:
    """One GGUF file (or, once grouped by the catalog, one split model)."""

    path: str
    name: str
    file_name: str
    folder: str
    file_size: int = 0
    architecture: str | None = None
    parameters: int | None = None
    trunk_parameters: int | None = None
    mtp_parameters: int | None = None
    block_parameters: list[int] = field(default_factory=list)  # per block; MTP blocks load only when MTP runs
    size_label: str | None = None
    quantization: str | None = None
    context_length: int | None = None
    block_count: int | None = None
    nextn_predict_layers: int = 0
    is_mtp: bool = False
    mtp_evidence: str | None = None
    is_projector: bool = False
    has_chat_template: bool = False
    vocab_size: int | None = None
    vocab_hash: str | None = None  # sha256 of tokenizer.ggml.tokens: equal for models that share a tokenizer
    markov_head: bool = False  # a dflash-architecture head with markov_w1 is a DSpark speculator
    split_no: int = 0
    split_count: int = 0
    split_parts: list[str] = field(default_factory=list)  # the parts that exist, in order
    missing_parts: list[str] = field(default_factory=list)  # the first few missing parts
    missing_count: int = 0
    mmproj: list[str] = field(default_factory=list)
    head: str | None = None  # a speculator head, not a model: "mtp", "gemma4-assistant", "eagle3", "dflash", "dspark"
    heads: list[str] = field(default_factory=list)  # the heads in the catalog that fit this model (core/models/sidecar)
    launchable: bool = True
    error: str | None = None
    arch_meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        """Rebuild from ``to_dict`` output (the header cache); ``ValueError`` if any field has the wrong type."""
        return cls(**checked_fields(_FIELD_CHECKS, data, "a model entry", _REQUIRED))

    def storable_dict(self) -> dict[str, Any]:
        """``to_dict()`` if :meth:`from_dict` will take it back, else ``ValueError``.

        What was read from a file is kept as read (a NaN head count must reach the estimate, which
        names the key), but the header cache may only store what it can load again: one entry it
        refuses would set the whole cache aside at every later start. Both sides use this check."""
        data = self.to_dict()
        checked_fields(_FIELD_CHECKS, data, "a model entry", _REQUIRED)
        return data


_FIELD_CHECKS = field_checks(ModelInfo)
_REQUIRED = ("path", "name", "file_name", "folder")


def format_params(n: int | None) -> str:
    """153K, 268M, 2.00B: for tables, warnings and tooltips."""
    if not n:
        return "-"
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    return f"{n / 1e6:.0f}M" if n >= 1e6 else f"{max(n / 1e3, 1):.0f}K"


def merge_block_parameters(parts: list[list[int]]) -> list[int]:
    """Per-block parameter counts of a split model: the parts' lists added element by element."""
    n = max((len(p) for p in parts), default=0)
    return [sum(p[i] for p in parts if i < len(p)) for i in range(n)]


def quantization_name(file_type: Any, elements_by_type: dict[str, int]) -> str | None:
    """``general.file_type`` through gguf's enum (MOSTLY_Q4_K_M -> Q4_K_M), else the dominant tensor type."""
    if isinstance(file_type, int):
        try:
            name = LlamaFileType(file_type).name
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    if elements_by_type:
        dominant = max(elements_by_type.items(), key=lambda kv: kv[1])[0]
        return dominant
    return None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, SkippedArray):
        return None
    return value


def _vocabulary(tokens: Any) -> tuple[int | None, str | None]:
    """(size, hash) of the token list: the reader hashed a large one while skipping it."""
    if isinstance(tokens, SkippedArray):
        return tokens.count, tokens.digest
    if isinstance(tokens, list) and tokens:
        return len(tokens), hashlib.sha256("\x00".join(str(t) for t in tokens).encode()).hexdigest()[:32]
    return None, None


def info_from_header(header: GGUFHeader, file_size: int) -> ModelInfo:
    md = header.metadata
    path = header.path
    arch = md.get("general.architecture") if isinstance(md.get("general.architecture"), str) else None
    if arch is not None and len(arch) > MAX_ARCH_CHARS:
        arch = arch[:MAX_ARCH_CHARS]
    general_name = md.get("general.name")
    name = general_name if isinstance(general_name, str) and general_name.strip() else path.stem
    if len(name) > MAX_NAME_CHARS:
        name = name[: MAX_NAME_CHARS - 1] + "…"
    prefix = f"{arch}." if arch else ""
    arch_meta = {k: _plain(md.get(prefix + k)) for k in _ARCH_KEYS if (prefix + k) in md}
    if "vocab_size" not in arch_meta:
        # the logits buffers scale with the vocabulary; the token list's length is its size
        tokens = md.get("tokenizer.ggml.tokens")
        if isinstance(tokens, (list, SkippedArray)):
            arch_meta["vocab_size"] = len(tokens) if isinstance(tokens, list) else tokens.count
    nextn = _int_or_none(md.get(prefix + "nextn_predict_layers")) or 0
    tensors = header.tensors
    info = ModelInfo(
        path=str(path),
        name=name,
        file_name=path.name,
        folder=str(path.parent),
        file_size=file_size,
        architecture=arch,
        parameters=tensors.parameters if tensors.count else None,
        trunk_parameters=(tensors.parameters - tensors.mtp_parameters) if tensors.count else None,
        mtp_parameters=tensors.mtp_parameters if tensors.count else None,
        block_parameters=list(tensors.block_parameters),
        size_label=md["general.size_label"][:MAX_ARCH_CHARS] if isinstance(md.get("general.size_label"), str) else None,
        quantization=quantization_name(md.get("general.file_type"), tensors.elements_by_type),
        context_length=_int_or_none(md.get(prefix + "context_length")),
        block_count=_int_or_none(md.get(prefix + "block_count")),
        nextn_predict_layers=nextn,
        is_projector=arch == "clip",
        has_chat_template=isinstance(md.get("tokenizer.chat_template"), str),
        split_no=(_int_or_none(md.get("split.no")) or 0),
        split_count=(_int_or_none(md.get("split.count")) or 0),
        arch_meta=arch_meta,
    )
    info.vocab_size, info.vocab_hash = _vocabulary(md.get(TOKENS_KEY))
    info.markov_head = tensors.markov_head
    info.head = detect_head(arch, nextn, info.block_count, info.block_parameters, tensors.mtp_tensors,
                            tensors.markov_head)
    if nextn > 0 and info.head is None:
        info.is_mtp = True
        info.mtp_evidence = f"metadata: {prefix}nextn_predict_layers = {nextn}"
        if tensors.count and not tensors.mtp_tensors:  # converted without its head: that is an mtp- file beside it
            info.mtp_evidence += " (but none of the MTP tensors are in this file)"
    elif info.head is None and (MTP_NAME_TAG.search(path.stem) or
                                (isinstance(general_name, str) and MTP_NAME_TAG.search(general_name))):
        info.is_mtp = True
        info.mtp_evidence = "name tag '-MTP' only (weaker: the metadata declares no MTP layers)"
    if info.is_projector or info.head is not None:
        info.launchable = False
    return info


def read_model_info(path: str | Path) -> ModelInfo:
    """Read one file; never raises for bad input: the error is a one-line field."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        return error_info(p, f"cannot read the file: {exc.strerror or exc}")
    try:
        header = read_header(p)
    except GGUFError as exc:
        info = error_info(p, str(exc))
        info.file_size = size
        return info
    except OSError as exc:
        return error_info(p, f"cannot read the file: {exc.strerror or exc}")
    except (MemoryError, RecursionError) as exc:  # pragma: no cover - guarded by the reader's limits
        return error_info(p, f"cannot read the file: {type(exc).__name__}")
    return info_from_header(header, size)


def error_info(path: PurePath, message: str) -> ModelInfo:
    return ModelInfo(
        path=str(path),
        name=path.stem,
        file_name=path.name,
        folder=str(path.parent),
        launchable=False,
        error=message.splitlines()[0] if message else "unreadable",
    )
