"""Which GGUFs in the catalog can draft for a model: draft models and speculator heads.

A draft model must share the main model's tokenizer (the same token list, compared by the hash
the header reader takes while skipping ``tokenizer.ggml.tokens``) and be smaller. A speculator
head is trained for one model (core/models/sidecar.py says when one fits): an MTP head in its own
file or a Gemma 4 assistant (run as MTP), an EAGLE3 or a DFlash/DSpark head. Every file that is not offered says why, so the window can
explain the list instead of leaving users to guess (LM Studio only hides what does not fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llama_launcher.core.models import sidecar
from llama_launcher.core.models.model_info import ModelInfo, format_params

# A draft pays off only when it is much cheaper than the model: Auto picks one at most this big.
AUTO_DRAFT_MAX_RATIO = 0.25


@dataclass
class DraftOption:
    model: ModelInfo
    method: str  # methods.py id: "draft", "mtp" (an MTP head or a Gemma 4 assistant), "eagle3", "dflash", "dspark"
    ok: bool
    reason: str

    @property
    def path(self) -> str:
        return self.model.path

    @property
    def name(self) -> str:
        return self.model.name

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "method": self.method, "ok": self.ok, "reason": self.reason}


def _size(m: ModelInfo) -> int:
    return m.parameters or m.file_size


def head_method(m: ModelInfo) -> str | None:
    """The speculative method a head GGUF runs as (``mtp`` for MTP heads and Gemma 4 assistants), or
    None for ordinary models. What a file is comes from its tensors (core/models/sidecar.py)."""
    return sidecar.head_method(sidecar.kind_of(m))


def _judge_head(target: ModelInfo, head: ModelInfo, method: str) -> DraftOption:
    ok, reason = sidecar.head_fits(target, head)
    return DraftOption(head, method, ok, reason)


def is_mtp_head_file(m: ModelInfo) -> bool:
    """An MTP head in its own file (llama.cpp's converter with ``--mtp``: ``mtp-<name>.gguf``, the target's
    architecture and vocabulary, only the MTP block): it runs as ``--spec-type draft-mtp``, never as a
    draft model (``draft-simple`` would load it as a whole model)."""
    return m.file_name.lower().startswith("mtp-") and m.nextn_predict_layers > 0


def _judge_draft(target: ModelInfo, cand: ModelInfo) -> DraftOption:
    if is_mtp_head_file(cand):
        return DraftOption(cand, "draft", False, "an MTP head (its own file): llama-server runs it as -md with "
                                                 "--spec-type draft-mtp, which the launcher does not plan yet")
    if not cand.vocab_hash or not target.vocab_hash:
        missing = "this model" if not target.vocab_hash else "that file"
        return DraftOption(cand, "draft", False, f"{missing} has no token list to compare")
    if cand.vocab_hash != target.vocab_hash:
        return DraftOption(cand, "draft", False, f"a different tokenizer ({cand.vocab_size or '?'} tokens vs "
                                                 f"{target.vocab_size or '?'})")
    if _size(cand) >= _size(target):
        return DraftOption(cand, "draft", False, "not smaller than this model")
    return DraftOption(cand, "draft", True, f"same tokenizer, {format_params(cand.parameters)} vs "
                                            f"{format_params(target.parameters)}")


def draft_options(target: ModelInfo, models: list[ModelInfo]) -> list[DraftOption]:
    """Every other model and head in the catalog, judged as a drafter for ``target`` (usable first)."""
    out: list[DraftOption] = []
    for cand in models:
        if cand.path == target.path or cand.error or cand.is_projector:
            continue
        method = head_method(cand)
        out.append(_judge_head(target, cand, method) if method else _judge_draft(target, cand))
    out.sort(key=lambda o: (not o.ok, o.method, _size(o.model)))
    return out


def auto_draft(target: ModelInfo, options: list[DraftOption]) -> DraftOption | None:
    """The draft model Auto uses: the largest usable one at most a quarter of the model's size."""
    limit = _size(target) * AUTO_DRAFT_MAX_RATIO
    fitting = [o for o in options if o.ok and o.method == "draft" and _size(o.model) <= limit]
    return max(fitting, key=lambda o: _size(o.model)) if fitting else None


def head_for(method: str, options: list[DraftOption]) -> DraftOption | None:
    return next((o for o in options if o.ok and o.method == method), None)
