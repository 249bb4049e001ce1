"""The speculative part of a plan: which methods run, with which files, knobs and draft length, and why.

It reads the method table (``core/speculative/methods.py``) and mirrors docs/planner.md row by row;
it follows Unsloth Studio's launcher with its known flaws fixed: one comma-chained ``--spec-type``
(never repeated), ngram-mod n-max 64, no chaining where two methods would share a flag, model size
counted from tensors, and never an argv the server is known to refuse (MTP on a model without MTP
layers is dropped with the reason, not emitted). Every method that could run on Auto and does not
says why (``auto_off``), so the window's Auto is never a riddle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo, format_params
from llama_launcher.core.plan.extra_args import ParsedExtraArgs
from llama_launcher.core.plan.flags import FlagGroup, FlagReason, PlanError
from llama_launcher.core.settings.launch import ModelSettings, PlanSettings
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.methods import (
    BY_ID,
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
    draft: DraftOption | None = None  # the draft model or head file in use
    source: SpecSource = SpecSource.RULES
    summary: str = "off"
    available: dict[str, Availability] = field(default_factory=dict)
    user_types: list[str] = field(default_factory=list)  # what the user's own --spec-type engages
    auto_off: dict[str, str] = field(default_factory=dict)  # why an available method on Auto stays off

    @property
    def mtp_engaged(self) -> bool:
        """MTP runs, whether the launcher or the user's extra arguments asked for it."""
        return "mtp" in self.methods or any(t in BY_ID["mtp"].tokens for t in self.user_types)

    def to_dict(self) -> dict[str, Any]:
        return {"methods": self.methods, "types": self.types, "draft_n_max": self.draft_n_max,
                "draft_model": self.draft.path if self.draft else None, "source": self.source,
                "summary": self.summary, "user_types": self.user_types, "auto_off": self.auto_off,
                "available": {k: {"ok": v.ok, "reason": v.reason} for k, v in self.available.items()}}


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
        if model.nextn_predict_layers <= 0:
            if model.is_mtp:
                return Availability(False, "the model is only named -MTP; its metadata declares no MTP layers")
            return Availability(False, "the model has no MTP layers")
        return Availability(True, f"the model has {model.nextn_predict_layers} MTP layer(s)")
    if m.needs in ("draft-model", "head"):
        if "model" not in caps.dialects.get(m.id, {}):
            return Availability(False, "this llama-server has no --spec-draft-model; update llama.cpp")
        pick = _chosen_file(m, model, drafts, settings)
        if pick is None:
            what = "no smaller model with the same tokenizer" if m.needs == "draft-model" else \
                f"no {m.label} trained for this model"
            return Availability(False, f"{what} was found in your model folders")
        return Availability(True, f"{pick.name}: {pick.reason}")
    return Availability(True, f"{m.label} ({caps.dialect_names.get(m.id, 'built-in')} flags)")


def _chosen_file(m: Method, model: ModelInfo, drafts: list[DraftOption], settings: ModelSettings) -> DraftOption | None:
    if m.needs == "head":
        return head_for(m.id, drafts)
    if settings.draft_model:
        return next((d for d in drafts if d.path == settings.draft_model and d.ok and d.method == "draft"), None)
    return auto_draft(model, drafts)


def _auto_wants(m: Method, model: ModelInfo, gpu: bool, chosen: set[str]) -> bool:
    """The Auto row of an available method, given the methods already chosen."""
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


def decide_speculative(model: ModelInfo, caps: Capabilities, settings: PlanSettings, gpu: bool,
                       extra: ParsedExtraArgs, tuned: TunedChoice | None, warnings: list[str],
                       drafts: list[DraftOption] | None = None) -> SpeculativeDecision:
    drafts = drafts or []
    modes = {m.id: _check_mode(m, settings.mode(m.id)) for m in METHODS}
    d = SpeculativeDecision(available={m.id: availability(m, model, caps, drafts, settings) for m in METHODS})
    if extra.spec_types is not None:
        d.source, d.user_types = SpecSource.USER, list(extra.spec_types)
        d.summary = "set by your extra arguments (" + (", ".join(extra.spec_types) or "none") + ")"
        return d
    if not caps.speculative:
        if any(v == "on" for v in modes.values()) or model.is_mtp:
            warnings.append("this llama-server has no --spec-type: speculative decoding is off; update llama.cpp")
        d.source, d.summary = SpecSource.UNAVAILABLE, "off: this llama-server has no speculative decoding"
        return d

    measured = tuned is not None and all(v == "auto" for v in modes.values())
    chosen: set[str] = set()
    if measured and tuned is not None:
        d.source = SpecSource.MEASURED
        for mid in tuned.methods:
            if d.available[mid].ok:
                chosen.add(mid)
            else:
                warnings.append(f"the measured setting used {BY_ID[mid].label}, which cannot run now "
                                f"({d.available[mid].reason}): it is left out")
    else:
        for m in METHODS:  # forced ones first, in table order
            if modes[m.id] != "on":
                continue
            if not d.available[m.id].ok:
                warnings.append(f"{m.label} is on, but {d.available[m.id].reason}: {m.label} is left out")
            elif m.kind == "model" and any(BY_ID[c].kind == "model" for c in chosen):
                warnings.append(f"{m.label} is on too, but only one model-based drafter runs at a time: "
                                f"{combo_label(chosen)} is used")
            else:
                chosen.add(m.id)
        # then the Auto rows: model methods first, because the ngram-mod row depends on them
        for m in sorted(METHODS, key=lambda m: m.kind != "model"):
            if modes[m.id] == "auto" and d.available[m.id].ok and _auto_wants(m, model, gpu, chosen):
                chosen.add(m.id)
        if modes["mtp"] == "auto" and model.is_mtp and model.nextn_predict_layers <= 0:
            warnings.append("the model is named -MTP but its metadata declares no MTP layers: MTP stays off")
        elif modes["mtp"] == "auto" and model.nextn_predict_layers > 0 and "mtp" not in caps.method_tokens:
            warnings.append("this llama-server has no MTP type: MTP is off; update llama.cpp to a build with draft-mtp")
        small = (model.trunk_parameters or 0) < SMALL_MODEL_THRESHOLD
        for mid in chosen:
            if modes[mid] == "on" and BY_ID[mid].kind == "model" and small:
                warnings.append(f"{BY_ID[mid].label} is on for a small model ({format_params(model.trunk_parameters)}): "
                                "below 3B, model-based drafting measured slower than off")

    chosen = _fit_to_binary(chosen, caps, warnings)
    d.methods = [m.id for m in METHODS if m.id in chosen]
    d.auto_off = _why_auto_off(model, modes, d, gpu, measured)
    # ngram types first, as llama.cpp tries them (and as Unsloth Studio spells the chain)
    d.types = [caps.method_tokens[mid] for mid in sorted(d.methods, key=lambda mid: BY_ID[mid].kind != "ngram")]
    model_methods = [BY_ID[mid] for mid in d.methods if BY_ID[mid].kind == "model"]
    if model_methods:
        mm = model_methods[0]
        if mm.needs in ("draft-model", "head"):
            d.draft = _chosen_file(mm, model, drafts, settings)
        n = settings.draft_n_max
        if n is None and measured and tuned is not None and tuned.draft_n_max:
            n = tuned.draft_n_max
        if n is None and mm.needs != "head":  # a head's trained block size is the server's own default
            n = default_draft_n(gpu)
        d.draft_n_max = n
    d.summary = combo_label(d.methods, d.draft_n_max)
    if d.draft is not None:
        d.summary += f" ({d.draft.name})"
    if d.source is SpecSource.MEASURED and tuned is not None:
        d.summary += f" — {tuned.in_effect_words()}"
    return d


def _why_auto_off(model: ModelInfo, modes: dict[str, str], d: SpeculativeDecision, gpu: bool,
                  measured: bool) -> dict[str, str]:
    """In words, why each method that could run on Auto does not: the Auto choice is never a riddle."""
    engaged_models = [mid for mid in d.methods if BY_ID[mid].kind == "model"]
    out: dict[str, str] = {}
    for m in METHODS:
        if modes[m.id] != "auto" or not d.available[m.id].ok or m.id in d.methods:
            continue
        if measured:
            out[m.id] = (f"the measurement on this machine chose {combo_label(d.methods)}"
                         if d.methods else "the measurement on this machine chose no speculation")
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


def speculative_flags(spec: SpeculativeDecision, caps: Capabilities, settings: ModelSettings,
                       gpu: bool) -> list[FlagReason]:
    if not spec.types:
        return []
    why = {SpecSource.MEASURED: "measured on this machine",
           SpecSource.RULES: "GPU branch: a model-based drafter alone" if gpu and any(BY_ID[m].kind == "model" for m in spec.methods)
           else "GPU branch" if gpu else "CPU/Mac branch"}.get(spec.source, spec.source)
    flags = [FlagReason(["--spec-type", ",".join(spec.types)],
                        f"speculative decoding: {spec.summary} ({why}; one --spec-type, comma-chained)", FlagGroup.SPECULATIVE)]
    for mid in spec.methods:
        m, dialect = BY_ID[mid], caps.dialects.get(mid, {})
        if m.kind == "model":
            if spec.draft is not None and "model" in dialect:
                flags.append(FlagReason([dialect["model"], spec.draft.path],
                                        f"the {m.label.lower()} that drafts for this model: {spec.draft.reason}",
                                        FlagGroup.SPECULATIVE))
                if gpu and "gpu_layers" in dialect:
                    flags.append(FlagReason([dialect["gpu_layers"], "all"], "the draft runs on the GPU too",
                                            FlagGroup.SPECULATIVE))
            if spec.draft_n_max is not None and "draft_n_max" in dialect:
                src = (" (your setting)" if settings.draft_n_max is not None else
                       " (measured best)" if spec.source is SpecSource.MEASURED else f" ({'GPU' if gpu else 'CPU/Mac'} default)")
                flags.append(FlagReason([dialect["draft_n_max"], str(spec.draft_n_max)],
                                        f"{m.label} draft length {spec.draft_n_max}{src}", FlagGroup.SPECULATIVE))
        else:
            knobs = [k for k in m.knobs if k in dialect]
            values = {k: getattr(settings, k) for k in knobs}
            if knobs:
                args = [a for k in knobs for a in (dialect[k], str(values[k]))]
                old = caps.dialect_names.get(mid) == "legacy"
                flags.append(FlagReason(args, f"{m.label} knobs" + (" under this older llama-server's names" if old
                                        else ": match length, minimum and maximum draft"), FlagGroup.SPECULATIVE))
    return flags
