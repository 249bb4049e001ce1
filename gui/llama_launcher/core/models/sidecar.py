"""Speculator heads that ship as their own GGUF: what makes a file one, and which models it drafts for.

Models are now published with their drafter beside them. llama.cpp's converter writes the MTP part
of a model alone with ``--mtp`` (``mtp-<name>.gguf``: the target's architecture and vocabulary,
``block_count`` = the target's layers + 1, only ``token_embd``/``output_norm``/``output`` and the last
block's tensors, ``<arch>.nextn_predict_layers = 1``) and the target with ``--no-mtp``; Gemma 4's
assistant drafter is architecture ``gemma4-assistant`` (every block a NextN block,
``embedding_length_out`` = the target's hidden size), published as ``mtp-*.gguf`` too; EAGLE3 and
DFlash/DSpark heads are architectures of their own. llama.cpp runs each as ``-md <head>`` with the
matching ``--spec-type``.

A head cannot run alone, so the catalog lists it under the models it fits instead of as a model.
The file name is only a hint (llama.cpp's router pairs ``mtp-``, ``dflash-``, ``dspark-`` prefixed
files, ``common/preset.cpp``): the tensors decide what a file is, and a head pairs with a model only
when the shapes fit (architecture, vocabulary hash, layers, hidden size) and the names match.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llama_launcher.core.state.safe_text import short_repr

GEMMA4_ASSISTANT = "gemma4-assistant"
HEAD_PREFIXES = ("mtp-", "dflash-", "dspark-", "eagle3-")  # llama.cpp's router's sidecar prefixes (+ EAGLE3's)
# the method each kind of head drafts with, and its words for lists and messages
HEAD_LABELS = {"mtp": "MTP head", GEMMA4_ASSISTANT: "Gemma 4 assistant", "eagle3": "EAGLE3 head",
               "dflash": "DFlash head", "dspark": "DSpark head"}
DFLASH_BLOCK_DEFAULT = 16  # common/speculative.cpp: the block size when dflash.block_size is absent

# a quantization (or float type) at the end of a file stem: -Q4_K_M, -UD-Q4_K_XL, .Q8_0, -IQ4_XS, -BF16, -MXFP4_MOE
_QUANT_TAIL = re.compile(r"[-_.](?:UD-)?(?:I?Q\d\w*|TQ\d\w*|F16|F32|BF16|MXFP4\w*)$", re.IGNORECASE)
_SPLIT_TAIL = re.compile(r"-\d{5}-of-\d{5}$", re.IGNORECASE)


def detect_head(architecture: str | None, nextn: int, block_count: int | None, block_parameters: list[int],
                mtp_tensors: int, markov_head: bool) -> str | None:
    """The kind of head a file is, from its architecture and tensors (never from its name), or None.

    An MTP head holds NextN tensors and no tensor of the trunk's blocks (``blk.0`` to
    ``blk.<block_count - nextn - 1>``): what ``--mtp`` writes, and what llama.cpp's mimo2/qwen35
    loaders call ``mtp_only``."""
    if architecture == "eagle3":
        return "eagle3"
    if architecture == "dflash":
        return "dspark" if markov_head else "dflash"
    if architecture == GEMMA4_ASSISTANT:
        return GEMMA4_ASSISTANT
    if nextn > 0 and mtp_tensors > 0 and block_count:
        trunk = max(block_count - nextn, 0)
        if trunk > 0 and not any(p > 0 for p in block_parameters[:trunk]):
            return "mtp"
    return None


def kind_of(m: Any) -> str | None:
    """A ``ModelInfo``'s head kind: as read from its file, else what its architecture alone says."""
    if m.head is not None:
        return str(m.head)
    return detect_head(m.architecture, 0, None, [], 0, bool(m.markov_head))


def head_method(kind: str | None) -> str | None:
    """The speculative method id (core/speculative/methods.py) a head of this kind runs as."""
    if kind in ("mtp", GEMMA4_ASSISTANT):
        return "mtp"  # llama.cpp runs both as -md <head> --spec-type draft-mtp
    return kind


def head_label(kind: str | None) -> str:
    return HEAD_LABELS.get(kind or "", "speculator head")


def base_name(file_name: str) -> str:
    """A file's model name without a head prefix, split suffix or quantization: what a head and its
    targets share (``mtp-Qwen3.6-8B-Q8_0.gguf`` and ``Qwen3.6-8B-Q4_K_M.gguf`` -> ``qwen3.6-8b``)."""
    stem = Path(file_name).name
    if stem.lower().endswith(".gguf"):
        stem = stem[:-5]
    low = stem.lower()
    for prefix in HEAD_PREFIXES:
        if low.startswith(prefix):
            stem = stem[len(prefix):]
            break
    stem = _SPLIT_TAIL.sub("", stem)
    for _ in range(2):  # "-UD-Q4_K_XL" and a float type after a quant are both tails
        stem = _QUANT_TAIL.sub("", stem)
    stem = re.sub(r"[-_.\s]assistant$", "", stem, flags=re.IGNORECASE)
    return stem.lower()


def _general_name(name: str) -> str:
    return re.sub(r"[\s\-_.]+", " ", re.sub(r"\bassistant\b", "", name, flags=re.IGNORECASE)).strip().lower()


def names_match(target_file: str, target_name: str, head_file: str, head_name: str) -> bool:
    """The head was published for this model: the same base file name, or the same ``general.name``
    (the converter writes the model's own name into both files)."""
    if base_name(target_file) == base_name(head_file):
        return True
    a, b = _general_name(target_name), _general_name(head_name)
    return bool(a) and a == b


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _layers(value: Any) -> list[int] | None:
    """A head's ``target_layers`` as layer numbers, or None when the metadata holds anything else."""
    if not isinstance(value, list):
        return None
    layers = [_int(x) for x in value]
    return [x for x in layers if x is not None] if all(x is not None and x >= 0 for x in layers) else None


def head_fits(target: Any, head: Any) -> tuple[bool, str]:
    """(whether ``head`` can draft for ``target``, the reason in words); both are ``ModelInfo``."""
    kind = kind_of(head)
    if head.vocab_hash and target.vocab_hash and head.vocab_hash != target.vocab_hash:
        return False, "a different tokenizer"
    if kind in ("mtp", GEMMA4_ASSISTANT):
        return _fits_mtp(target, head, kind)
    want = _int(head.arch_meta.get("target_hidden_size"))
    have = _int(target.arch_meta.get("embedding_length"))
    if want is not None and have is not None and want != have:
        return False, f"trained for a model with hidden size {want}, this one has {have}"
    raw = head.arch_meta.get("target_layers")
    layers = _layers(raw)
    if raw is not None and layers is None:
        return False, f"the head's metadata target_layers is {short_repr(raw)}, not a list of layer numbers"
    blocks = target.block_count or 0
    if layers and blocks and max(layers) >= blocks:
        return False, f"reads layer {max(layers)}, this model has {blocks}"
    if want is None and not (head.vocab_hash and head.vocab_hash == target.vocab_hash):
        return False, "the head does not say which model it was trained for"
    return True, f"{head_label(kind)} for this model"


def _fits_mtp(target: Any, head: Any, kind: str) -> tuple[bool, str]:
    label = head_label(kind)
    if kind_of(target) is not None:
        return False, "that file is a head itself"
    if not (head.vocab_hash and target.vocab_hash):
        return False, f"{'this model' if not target.vocab_hash else 'the head'} has no token list to compare"
    if kind == GEMMA4_ASSISTANT:
        if target.architecture != "gemma4":
            return False, f"a Gemma 4 assistant drafts for Gemma 4 models, not {target.architecture or 'this one'}"
        want = _int(head.arch_meta.get("embedding_length_out"))
        have = _int(target.arch_meta.get("embedding_length"))
        if want is None or have is None or want != have:
            return False, f"made for a model with hidden size {want if want is not None else '?'}, " \
                          f"this one has {have if have is not None else '?'}"
    else:
        if head.architecture != target.architecture:
            return False, f"made for a {head.architecture} model, this one is {target.architecture or 'unknown'}"
        head_trunk = (head.block_count or 0) - head.nextn_predict_layers
        target_trunk = (target.block_count or 0) - target.nextn_predict_layers
        if head_trunk != target_trunk:
            return False, f"made for a model with {head_trunk} layers, this one has {target_trunk}"
        want = _int(head.arch_meta.get("embedding_length"))
        have = _int(target.arch_meta.get("embedding_length"))
        if want is not None and have is not None and want != have:
            return False, f"made for a model with hidden size {want}, this one has {have}"
    if not names_match(target.file_name, target.name, head.file_name, head.name):
        return False, f"its name does not match this model's ({base_name(head.file_name)} vs " \
                      f"{base_name(target.file_name)})"
    return True, f"{label} made for this model (same tokenizer and shape)"


def block_clamp(head: Any) -> int | None:
    """The longest draft a DFlash/DSpark head makes: its trained block size less the anchor (DSpark
    with ``sample_from_anchor`` drafts the whole block), as llama.cpp clamps ``--spec-draft-n-max``."""
    kind = kind_of(head)
    if kind not in ("dflash", "dspark"):
        return None
    size = _int(head.arch_meta.get("block_size"))
    size = size if size is not None and 1 <= size <= 4096 else DFLASH_BLOCK_DEFAULT
    anchor = head.arch_meta.get("sample_from_anchor") is True
    return max(size if kind == "dspark" and anchor else size - 1, 1)


def head_line(head: Any) -> str:
    """How a head is shown under its model: 'MTP head: mtp-Qwen3.6-8B-Q8_0.gguf, 0.9 GiB'."""
    n = head.file_size if isinstance(head.file_size, int) else 0
    shown = f"{n / (1 << 30):.1f} GiB" if n >= (1 << 30) // 10 else f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 \
        else f"{n / 1024:.0f} KiB"
    return f"{head_label(kind_of(head))}: {head.file_name}, {shown}"


def refusal(head: Any, targets: list[Any] | None = None) -> str:
    """The one sentence said when a head is chosen to launch on its own."""
    kind = kind_of(head)
    label = head_label(kind)
    for_what = (" for " + ", ".join(t.file_name for t in targets[:3]) + (" ..." if len(targets) > 3 else "")
                if targets else "")
    setting = {"eagle3": "EAGLE3", "dflash": "DFlash", "dspark": "DSpark"}.get(kind or "", "MTP")
    return (f"{head.file_name} is {'an' if label.startswith(('MTP', 'EAGLE')) else 'a'} {label}: it drafts{for_what} and cannot "
            f"run on its own; launch the model it was made for (its {setting} setting uses this file)")
