"""The speculative flags of a plan, each with its reason: ``--spec-type``, the drafter's file and knobs.

The decision (``speculative.py``) says which methods run with which file and length; this spells it
in the binary's own dialect. MTP from a head file takes the draft model's file flags
(``-md``/``--spec-draft-ngl``), as llama.cpp runs it (``-md mtp-<name>.gguf --spec-type draft-mtp``).
The drafter's other knobs (minimum, confidence, sampling, its KV cache type) are emitted only when
set and only when this binary has their flags; a knob the binary lacks is said, not dropped silently.
"""

from __future__ import annotations

from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.sidecar import head_label, kind_of
from llama_launcher.core.plan.flags import FlagGroup, FlagReason
from llama_launcher.core.plan.speculative import SpeculativeDecision, file_flags
from llama_launcher.core.settings.launch import MODEL_SETTINGS, ModelSettings
from llama_launcher.core.speculative.methods import BY_ID, DRAFT_KNOB_FLAGS, KNOBS, Method, SpecSource


def speculative_flags(spec: SpeculativeDecision, caps: Capabilities, settings: ModelSettings,
                      gpu: bool, warnings: list[str] | None = None, apple: bool = False) -> list[FlagReason]:
    warnings = warnings if warnings is not None else []
    if not spec.types:
        return []
    flags = [FlagReason(["--spec-type", ",".join(spec.types)], spec_type_reason(spec, gpu, apple),
                        FlagGroup.SPECULATIVE)]
    for mid in spec.methods:
        m = BY_ID[mid]
        flags += _model_flags(spec, caps, settings, gpu, m, warnings, apple) if m.kind == "model" else \
            _ngram_flags(caps, settings, m, warnings)
    return flags


def where_it_runs(gpu: bool, apple: bool) -> str:
    """Where the model runs, in a person's words (the planner's GPU or CPU/Mac rules follow from it)."""
    return "on a GPU" if gpu else "on the Apple GPU" if apple else "on the CPU"


def spec_type_reason(spec: SpeculativeDecision, gpu: bool, apple: bool = False) -> str:
    """Why --spec-type says what it says: the types, whether measured or the default where the model runs."""
    if spec.source is SpecSource.MEASURED:
        why = "measured on this machine"
    elif spec.source is SpecSource.RULES:
        why = f"the default when the model runs {where_it_runs(gpu, apple)}"
        if gpu and any(BY_ID[m].kind == "model" for m in spec.methods):
            why += ": a model-based drafter alone"
    else:
        why = str(spec.source)
    several = "; several types go in one --spec-type, separated by commas" if len(spec.types) > 1 else ""
    return f"speculative decoding: {spec.summary} ({why}{several})"


def _model_flags(spec: SpeculativeDecision, caps: Capabilities, settings: ModelSettings, gpu: bool, m: Method,
                 warnings: list[str], apple: bool = False) -> list[FlagReason]:
    flags: list[FlagReason] = []
    dialect, files = caps.dialects.get(m.id, {}), file_flags(caps, m)
    if spec.draft is not None and "model" in files:
        head = spec.head
        what = f"{head_label(kind_of(head))} that drafts for this model (MTP from its own file)" if head is not None \
            else f"{m.label.lower()} that drafts for this model"
        flags.append(FlagReason([files["model"], spec.draft.path], f"the {what}: {spec.draft.reason}",
                                FlagGroup.SPECULATIVE))
        if gpu and "gpu_layers" in files:
            flags.append(FlagReason([files["gpu_layers"], "all"],
                                    f"the {'head' if head is not None else 'draft'} runs on the GPU too",
                                    FlagGroup.SPECULATIVE))
    if spec.draft_n_max is not None and "draft_n_max" in dialect:
        src = (" (your setting)" if settings.draft_n_max is not None else
               " (measured best)" if spec.source is SpecSource.MEASURED else f" (the default {where_it_runs(gpu, apple)})")
        if spec.draft_clamp is not None and spec.draft_n_max == spec.draft_clamp:
            src += f"; at most {spec.draft_clamp}: the head's trained block size"
        flags.append(FlagReason([dialect["draft_n_max"], str(spec.draft_n_max)],
                                f"{m.label} draft length {spec.draft_n_max}{src}", FlagGroup.SPECULATIVE))
    real = set(caps.real_options)
    for knob, knob_flags in DRAFT_KNOB_FLAGS.items():
        value = spec.draft_cache_type if knob == "draft_cache_type" else getattr(settings, knob)
        if value is None:
            continue
        label = MODEL_SETTINGS[knob].label
        if not all(f in real for f in knob_flags):
            if knob != "draft_cache_type" or settings.draft_cache_type is not None:
                warnings.append(f"this llama-server has no {knob_flags[0]}: your {label.lower()} ({value}) is not used")
            continue
        if knob == "draft_cache_type":
            reason = ("your draft KV cache type" if settings.draft_cache_type is not None else
                      f"the drafter's KV cache follows the model's ({value}); llama-server would keep it at f16")
        else:
            reason = f"your {label.lower()}"
        flags.append(FlagReason([a for f in knob_flags for a in (f, str(value))], reason, FlagGroup.SPECULATIVE))
    return flags


def _ngram_flags(caps: Capabilities, settings: ModelSettings, m: Method, warnings: list[str]) -> list[FlagReason]:
    dialect = caps.dialects.get(m.id, {})
    knobs = [k for k in m.knobs if k in dialect]
    if not knobs:
        changed = [k for k in m.knobs if getattr(settings, k) != KNOBS[k].default]
        if changed:
            warnings.append(f"this llama-server has no flags for {m.label}'s knobs: "
                            f"{', '.join(KNOBS[k].label for k in changed)} stay at llama-server's defaults")
        return []
    args = [a for k in knobs for a in (dialect[k], str(getattr(settings, k)))]
    old = caps.dialect_names.get(m.id) == "legacy"
    words = ": match length, minimum and maximum draft" if m.id == "ngram-mod" else \
        ": lookup n-gram, drafted m-gram, minimum hits"
    return [FlagReason(args, f"{m.label} knobs" + (" under this older llama-server's names" if old else words),
                       FlagGroup.SPECULATIVE)]
