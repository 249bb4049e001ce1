"""The speculative part of a plan: which methods run, with which files, knobs and draft length, and why.

It reads the method table (``core/speculative/methods.py``) and mirrors docs/planner.md row by row;
it follows Unsloth Studio's launcher with its known flaws fixed: one comma-chained ``--spec-type``
(never repeated), ngram-mod n-max 64, no chaining where two methods would share a flag, model size
counted from tensors, and never an argv the server is known to refuse (MTP on a model without MTP
layers is dropped with the reason, not emitted; a second model-based drafter is refused, as
llama.cpp runs one). Every method that could run on Auto and does not says why (``auto_off``), so
the window's Auto is never a riddle. MTP runs from the model's own layers or from its MTP head in
a file of its own (``-md mtp-<name>.gguf --spec-type draft-mtp``). The flags themselves are
``spec_flags.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo, format_params
from llama_launcher.core.models.sidecar import block_clamp, head_label, kind_of
from llama_launcher.core.plan.extra_args import ParsedExtraArgs
from llama_launcher.core.plan.flags import PlanError
from llama_launcher.core.settings.launch import ModelSettings, PlanSettings
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.methods import (
    BY_ID,
    BY_TOKEN,
    DRAFT_N_DEFAULT,
    METHODS,
    MODES,
    Method,
    SpecSource,
    combo_label,
    flag_clash,
    resolve_dialect,
)
from llama_launcher.core.speculative.pairing import DraftOption, auto_draft, head_for

# MTP is not auto-enabled below this many trunk parameters. The seed used 2B; published B200
# numbers show 2B models also lose with MTP n=2 (377 -> 308 t/s, 0.82x) while 4B gains
# (241 -> 258 t/s, 1.07x), and 0.8B loses badly (452 -> 283, 0.63x; CPU n=3 84.5 -> 64.9).
# A draft model or head on a small model has even less to win, so the same gate applies.
SMALL_MODEL_THRESHOLD = 3_000_000_000


DRAFT_N_GPU = 2  # 27B sweep on B200: n=2 best, n=6 worse on every prompt type


DRAFT_N_CPU = DRAFT_N_DEFAULT  # llama.cpp's default (3); what the CPU/Mac chain used in the seed


NGRAM_CACHE_DRAFT = 8  # common/speculative.cpp: ngram-cache drafts at most 8 tokens


def default_draft_n(gpu: bool) -> int:
    """The draft length used when neither the user nor a measurement chose one."""
    return DRAFT_N_GPU if gpu else DRAFT_N_CPU


class Availability(NamedTuple):
    ok: bool
    reason: str


@dataclass
class SpeculativeDecision:
    methods: list[str] = field(default_factory=list)  # engaged method ids, table order
    types: list[str] = field(default_factory=list)  # their --spec-type tokens
    draft_n_max: int | None = None
    draft: DraftOption | None = None  # the draft model or head file in use (an MTP head for MTP from a file)
    source: SpecSource = SpecSource.RULES
    summary: str = "off"
    available: dict[str, Availability] = field(default_factory=dict)
    user_types: list[str] = field(default_factory=list)  # what the user's own --spec-type engages
    auto_off: dict[str, str] = field(default_factory=dict)  # why an available method on Auto stays off
    refused: dict[str, str] = field(default_factory=dict)  # a method set On that cannot run with the others, why
    draft_clamp: int | None = None  # a DFlash/DSpark head's longest draft (its block size)
    draft_cache_type: str | None = None  # the drafter's KV cache type when the launcher sets one

    @property
    def mtp_engaged(self) -> bool:
        """MTP runs, whether the launcher or the user's extra arguments asked for it."""
        return "mtp" in self.methods or any(t in BY_ID["mtp"].tokens for t in self.user_types)

    @property
    def head(self) -> ModelInfo | None:
        """The MTP head file (an ``mtp-`` file or a Gemma 4 assistant) that MTP runs from, if any."""
        if self.draft is not None and self.draft.method == "mtp" and "mtp" in self.methods:
            return self.draft.model
        return None

    def to_dict(self) -> dict[str, Any]:
        head = self.head
        return {"methods": self.methods, "types": self.types, "draft_n_max": self.draft_n_max,
                "draft_model": self.draft.path if self.draft else None,
                "head": {"path": head.path, "kind": head_label(kind_of(head)), "bytes": head.file_size}
                if head is not None else None,
                "draft_clamp": self.draft_clamp, "draft_cache_type": self.draft_cache_type,
                "source": self.source, "summary": self.summary, "user_types": self.user_types,
                "auto_off": self.auto_off, "refused": self.refused,
                "available": {k: {"ok": v.ok, "reason": v.reason} for k, v in self.available.items()}}


def builtin_mtp(model: ModelInfo) -> bool:
    """The model file holds its MTP layers: the metadata declares them and (where the tensors were
    counted) their ``blk.N.nextn.*`` tensors are there. A target converted ``--no-mtp`` that kept the key
    loads, but llama.cpp aborts when MTP is asked of it (mimo2: "MTP block missing nextn.eh_proj")."""
    if model.nextn_predict_layers <= 0:
        return False
    return not (model.mtp_parameters == 0 and model.parameters)


def _mtp_availability(model: ModelInfo, caps: Capabilities, drafts: list[DraftOption]) -> Availability:
    if builtin_mtp(model):
        return Availability(True, f"the model has {model.nextn_predict_layers} MTP layer(s)")
    head = head_for("mtp", drafts)
    if head is not None:
        if "model" not in file_flags(caps, BY_ID["mtp"]):
            return Availability(False, f"{head.model.file_name} is this model's MTP head, but this llama-server "
                                       "has no --spec-draft-model; update llama.cpp")
        return Availability(True, f"{head_label(kind_of(head.model))} {head.model.file_name}: {head.reason}")
    unfit = next((o for o in drafts if o.method == "mtp" and not o.ok), None)
    why = f"; {unfit.model.file_name} does not fit it: {unfit.reason}" if unfit is not None else ""
    if model.nextn_predict_layers > 0:
        return Availability(False, "the model declares MTP layers, but none of their tensors are in this file "
                                   f"(its MTP head is published as its own mtp- file: put it beside the model){why}")
    if model.is_mtp:
        return Availability(False, f"the model is only named -MTP; its metadata declares no MTP layers{why}")
    return Availability(False, f"the model has no MTP layers and no MTP head was found beside it{why}")


def availability(m: Method, model: ModelInfo, caps: Capabilities, drafts: list[DraftOption],
                 settings: ModelSettings) -> Availability:
    """(can this method run here, why not) — for the planner, the window's controls and tune."""
    if not caps.speculative:
        return Availability(False, "this llama-server has no --spec-type; update llama.cpp")
    if m.id not in caps.method_tokens:
        return Availability(False, f"this llama-server has no {m.label} ({m.tokens[0]}); update llama.cpp")
    if m.knobs_required and m.id not in caps.dialects:
        return Availability(False, f"this llama-server has no {m.label} knobs; update llama.cpp")
    if m.needs == "mtp-layers":
        return _mtp_availability(model, caps, drafts)
    if m.needs in ("draft-model", "head"):
        if "model" not in caps.dialects.get(m.id, {}):
            return Availability(False, "this llama-server has no --spec-draft-model; update llama.cpp")
        pick = _chosen_file(m, model, drafts, settings)
        if pick is None:
            what = "no smaller model with the same tokenizer" if m.needs == "draft-model" else \
                f"no {m.label} trained for this model"
            return Availability(False, f"{what} was found in your model folders")
        clamp = block_clamp(pick.model)
        limit = f" (drafts at most {clamp} tokens: its block size)" if clamp else ""
        return Availability(True, f"{pick.name}: {pick.reason}{limit}")
    return Availability(True, f"{m.label} ({caps.dialect_names.get(m.id, 'built-in')} flags)")


def file_flags(caps: Capabilities, m: Method) -> dict[str, str]:
    """The flags that pass a drafter's file: the method's own dialect, or (MTP from a head file) the draft
    model's, which every build that takes a draft model has."""
    own = caps.dialects.get(m.id, {})
    return own if "model" in own else {k: v for k, v in caps.dialects.get("draft", {}).items()
                                       if k in ("model", "gpu_layers")}


def _chosen_file(m: Method, model: ModelInfo, drafts: list[DraftOption], settings: ModelSettings) -> DraftOption | None:
    if m.id == "mtp":
        return None if builtin_mtp(model) else head_for("mtp", drafts)
    if m.needs == "head":
        return head_for(m.id, drafts)
    if settings.draft_model:
        return next((d for d in drafts if d.path == settings.draft_model and d.ok and d.method == "draft"), None)
    return auto_draft(model, drafts)


def _auto_wants(m: Method, model: ModelInfo, gpu: bool, chosen: set[str]) -> bool:
    """The Auto row of an available method, given the methods already chosen."""
    if not m.auto_rule:
        return False  # the newer ngram types: only a measurement engages them on Auto
    model_method_chosen = any(BY_ID[c].kind == "model" for c in chosen)
    if m.kind == "ngram":
        return not model_method_chosen or not gpu  # GPU: a model method alone; CPU/Mac: chained with ngram-mod
    if model_method_chosen:
        return False  # one model-based drafter at a time: MTP (built in) first, then a head, then a draft model
    return (model.trunk_parameters or 0) >= SMALL_MODEL_THRESHOLD


def _check_mode(m: Method, value: str) -> str:
    v = (value or "auto").lower()
    if v not in MODES:
        raise PlanError(f"{m.label} must be one of auto, on, off (got {value!r})")
    return v


def _check_user_types(types: list[str]) -> None:
    """llama.cpp runs one model-based drafter (one draft context): two in the user's own --spec-type are refused."""
    drafters = [t for t in types if t in BY_TOKEN and BY_TOKEN[t].kind == "model"]
    if len(set(drafters)) > 1:
        raise PlanError(f"--spec-type {','.join(types)} asks for {' and '.join(sorted(set(drafters)))}: llama.cpp "
                        "runs at most one model-based type (draft-*) at a time, plus any ngram types")


def decide_speculative(model: ModelInfo, caps: Capabilities, settings: PlanSettings, gpu: bool,
                       extra: ParsedExtraArgs, tuned: TunedChoice | None, warnings: list[str],
                       drafts: list[DraftOption] | None = None,
                       avoid: dict[str, str] | None = None) -> SpeculativeDecision:
    """``avoid``: methods Auto leaves off and why (they stopped this model from loading with this binary)."""
    drafts = drafts or []
    avoid = avoid or {}
    modes = {m.id: _check_mode(m, settings.mode(m.id)) for m in METHODS}
    d = SpeculativeDecision(available={m.id: availability(m, model, caps, drafts, settings) for m in METHODS})
    if extra.spec_types is not None:
        _check_user_types(extra.spec_types)
        d.source, d.user_types = SpecSource.USER, list(extra.spec_types)
        d.summary = "set by your extra arguments (" + (", ".join(extra.spec_types) or "none") + ")"
        return d
    if not caps.speculative:
        if any(v == "on" for v in modes.values()) or model.is_mtp:
            warnings.append("this llama-server has no --spec-type: speculative decoding is off; update llama.cpp")
        d.source, d.summary = SpecSource.UNAVAILABLE, "off: this llama-server has no speculative decoding"
        return d

    measured = tuned is not None and all(v == "auto" for v in modes.values())
    chosen = _measured(d, tuned, avoid, warnings) if measured and tuned is not None else \
        _by_rules(d, model, caps, modes, gpu, avoid, warnings)
    chosen = _fit_to_binary(chosen, caps, warnings)
    d.methods = [m.id for m in METHODS if m.id in chosen]
    d.auto_off = _why_auto_off(model, modes, d, gpu, measured, avoid)
    # ngram types first, as llama.cpp tries them (and as Unsloth Studio spells the chain)
    d.types = [caps.method_tokens[mid] for mid in sorted(d.methods, key=lambda mid: BY_ID[mid].kind != "ngram")]
    _draft_and_length(d, model, settings, drafts, gpu, measured, tuned, warnings)
    if not {"--spec-draft-type-k", "--spec-draft-type-v"} <= set(caps.real_options):
        d.draft_cache_type = None  # this binary cannot set it: the drafter's cache stays at llama-server's f16
    d.summary = combo_label(d.methods, d.draft_n_max)
    if d.draft is not None:
        d.summary += f" ({d.draft.name})" if d.head is None else f" (head {d.draft.model.file_name})"
    if d.source is SpecSource.MEASURED and tuned is not None:
        d.summary += f" — {tuned.in_effect_words()}"
    return d


def _measured(d: SpeculativeDecision, tuned: TunedChoice, avoid: dict[str, str], warnings: list[str]) -> set[str]:
    d.source = SpecSource.MEASURED
    chosen: set[str] = set()
    for mid in tuned.methods:
        if mid in avoid:
            warnings.append(f"the measured setting used {BY_ID[mid].label}, but {avoid[mid]}: it is left out")
        elif not d.available[mid].ok:
            warnings.append(f"the measured setting used {BY_ID[mid].label}, which cannot run now "
                            f"({d.available[mid].reason}): it is left out")
        elif BY_ID[mid].kind == "model" and any(BY_ID[c].kind == "model" for c in chosen):
            warnings.append(f"the measured setting names {BY_ID[mid].label} too: llama.cpp runs one model-based "
                            "drafter at a time, it is left out")
        else:
            chosen.add(mid)
    return chosen


def _by_rules(d: SpeculativeDecision, model: ModelInfo, caps: Capabilities, modes: dict[str, str], gpu: bool,
              avoid: dict[str, str], warnings: list[str]) -> set[str]:
    chosen: set[str] = set()
    for m in METHODS:  # forced ones first, in table order
        if modes[m.id] != "on":
            continue
        if not d.available[m.id].ok:
            warnings.append(f"{m.label} is on, but {d.available[m.id].reason}: {m.label} is left out")
        elif m.kind == "model" and any(BY_ID[c].kind == "model" for c in chosen):
            other = combo_label([c for c in chosen if BY_ID[c].kind == "model"])
            d.refused[m.id] = (f"llama.cpp runs one model-based drafter at a time (one draft context): "
                               f"{other} is on, so {m.label} is refused")
            warnings.append(f"{m.label} is on too, but {d.refused[m.id]}")
        else:
            chosen.add(m.id)
    # then the Auto rows: model methods first, because the ngram-mod row depends on them
    for m in sorted(METHODS, key=lambda m: m.kind != "model"):
        if modes[m.id] == "auto" and d.available[m.id].ok and m.id not in avoid and _auto_wants(m, model, gpu, chosen):
            chosen.add(m.id)
    _warn_lost_ngram(model, caps, modes, gpu, chosen, warnings)
    if modes["mtp"] == "auto" and model.is_mtp and model.nextn_predict_layers <= 0 and not d.available["mtp"].ok:
        warnings.append("the model is named -MTP but its metadata declares no MTP layers: MTP stays off")
    elif modes["mtp"] == "auto" and model.nextn_predict_layers > 0 and "mtp" not in caps.method_tokens:
        warnings.append("this llama-server has no MTP type: MTP is off; update llama.cpp to a build with draft-mtp")
    small = (model.trunk_parameters or 0) < SMALL_MODEL_THRESHOLD
    for mid in chosen:
        if modes[mid] == "on" and BY_ID[mid].kind == "model" and small:
            warnings.append(f"{BY_ID[mid].label} is on for a small model ({format_params(model.trunk_parameters)}): "
                            "below 3B, model-based drafting measured slower than off")
    return chosen


def _warn_lost_ngram(model: ModelInfo, caps: Capabilities, modes: dict[str, str], gpu: bool, chosen: set[str],
                     warnings: list[str]) -> None:
    """A binary with ngram-mod but without its knobs (a fork era): the Auto row would have engaged it, and
    leaving it out silently made Unsloth Studio's resolver cases D01/D02 disagree. Say so."""
    m = BY_ID["ngram-mod"]
    if modes[m.id] != "auto" or m.id not in caps.method_tokens or m.id in caps.dialects:
        return
    if not _auto_wants(m, model, gpu, chosen):
        return
    flags = "/".join(f for f in m.dialects[0].flags.values())
    drafters = [c for c in chosen if BY_ID[c].kind == "model"]
    runs = f"{combo_label(drafters)} runs without it" if drafters else "nothing else is chained"
    warnings.append(f"ngram-mod is left out: this llama-server lists ngram-mod but not its knobs ({flags}), so "
                    f"the CPU/Mac chain cannot set them; {runs} — update llama.cpp")


def _draft_and_length(d: SpeculativeDecision, model: ModelInfo, settings: PlanSettings, drafts: list[DraftOption],
                      gpu: bool, measured: bool, tuned: TunedChoice | None, warnings: list[str]) -> None:
    """The drafter's file, its draft length (clamped to a DFlash/DSpark head's block) and its KV cache type."""
    model_methods = [BY_ID[mid] for mid in d.methods if BY_ID[mid].kind == "model"]
    if not model_methods:
        return
    mm = model_methods[0]
    d.draft = _chosen_file(mm, model, drafts, settings)
    n = settings.draft_n_max
    if n is None and measured and tuned is not None and tuned.draft_n_max:
        n = tuned.draft_n_max
    if n is None and mm.needs != "head":  # a head's trained block size is the server's own default
        n = default_draft_n(gpu)
    clamp = block_clamp(d.draft.model) if d.draft is not None else None
    if clamp is not None:
        d.draft_clamp = clamp
        if n is not None and n > clamp:
            if settings.draft_n_max is not None:
                warnings.append(f"{mm.label} drafts at most {clamp} tokens (its trained block size): draft length "
                                f"{clamp} instead of {n}")
            n = clamp
    d.draft_n_max = n
    d.draft_cache_type = settings.draft_cache_type or settings.cache_type


def _why_auto_off(model: ModelInfo, modes: dict[str, str], d: SpeculativeDecision, gpu: bool,
                  measured: bool, avoid: dict[str, str]) -> dict[str, str]:
    """In words, why each method that could run on Auto does not: the Auto choice is never a riddle."""
    engaged_models = [mid for mid in d.methods if BY_ID[mid].kind == "model"]
    out: dict[str, str] = {}
    for m in METHODS:
        if modes[m.id] != "auto" or not d.available[m.id].ok or m.id in d.methods:
            continue
        if m.id in avoid:
            out[m.id] = avoid[m.id]
        elif measured:
            out[m.id] = (f"the measurement on this machine chose {combo_label(d.methods)}"
                         if d.methods else "the measurement on this machine chose no speculation")
        elif not m.auto_rule:
            out[m.id] = "Auto uses it only when Tune measured it faster on this machine"
        elif m.kind == "model" and engaged_models:
            out[m.id] = f"{combo_label(engaged_models)} runs instead"
        elif m.kind == "model" and (model.trunk_parameters or 0) < SMALL_MODEL_THRESHOLD:
            out[m.id] = (f"the model is below 3B ({format_params(model.trunk_parameters)})" if model.trunk_parameters
                         else "the model's size is unknown, so Auto treats it as small")
        elif m.kind == "ngram" and gpu and engaged_models:
            out[m.id] = f"on a GPU {combo_label(engaged_models)} runs alone"
        else:
            out[m.id] = "this llama-server cannot combine it with the others"
    return out


def _dialect_flags(caps: Capabilities, m: Method) -> dict[str, str] | None:
    """The method's flags in this binary: the probe's dialect, else (a hand-made caps) resolved from its options."""
    if m.id in caps.dialects:
        return caps.dialects[m.id]
    dialect = resolve_dialect(m, caps.real_options)
    return dict(dialect.flags) if dialect else None


def chain_clash(caps: Capabilities, a: str, b: str) -> str | None:
    """The flag methods ``a`` and ``b`` would both need in this binary, or None."""
    return flag_clash(_dialect_flags(caps, BY_ID[a]), _dialect_flags(caps, BY_ID[b]))


def can_chain(caps: Capabilities, a: str, b: str) -> bool:
    """Whether this binary runs methods ``a`` and ``b`` at once: a comma list, and no flag both need."""
    return caps.spec_chains and chain_clash(caps, a, b) is None


def _fit_to_binary(chosen: set[str], caps: Capabilities, warnings: list[str]) -> set[str]:
    """Keep what this binary can pass at once: one type where it cannot chain, no shared flags."""
    ordered = [m for m in METHODS if m.id in chosen]
    if len(ordered) > 1 and not caps.spec_chains:
        keep = next((m for m in ordered if m.kind == "model"), ordered[0])
        warnings.append(f"this llama-server takes one speculative type at a time: {keep.label} alone")
        return {keep.id}
    for a in ordered:
        for b in ordered:
            if a.id < b.id:
                clash = chain_clash(caps, a.id, b.id)
                if clash:
                    keep = a if a.kind == "model" else b
                    warnings.append(f"this llama-server uses {clash} for both {a.label} and {b.label}, so the "
                                    f"launcher does not chain them: {keep.label} alone")
                    return {keep.id}
    return chosen


def draft_lengths(spec: SpeculativeDecision, settings: ModelSettings) -> dict[str, int]:
    """The longest draft each engaged ngram type makes (its logits rows per slot; llama.cpp's
    ``common_speculative_n_max``): ngram-mod n-max, the map/simple types' m-gram, ngram-cache 8."""
    out: dict[str, int] = {}
    for mid in spec.methods:
        if mid == "ngram-mod":
            out[mid] = settings.ngram_n_max
        elif mid == "ngram-cache":
            out[mid] = NGRAM_CACHE_DRAFT
        elif BY_ID[mid].kind == "ngram":
            out[mid] = int(getattr(settings, mid.replace("-", "_") + "_size_m"))
    return out

