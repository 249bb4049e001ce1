"""The launch planner: model + hardware + binary capabilities + settings -> an explained argv.

A pure function. Every flag it emits carries the reason it is there, so the window can show
"why" on hover and the CLI can print it. The speculative decision (:func:`decide_speculative`)
reads the method table in ``spec_methods`` and mirrors docs/planner.md row by row; it follows
Unsloth Studio's launcher with its known flaws fixed: one comma-chained ``--spec-type`` (never
repeated), ngram-mod n-max 64, no chaining where two methods would share a flag, model size
counted from tensors, and never an argv the server is known to refuse (MTP on a model without
MTP layers is dropped with the reason, not emitted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.idle_gpu import idle_gpu_notice
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.memory.estimate import (
    BUDGET_DEFAULT,
    BUDGET_MTP,
    MemoryEstimate,
    MemoryEvidence,
    estimate,
    fit_context,
)
from llama_launcher.core.memory.launch import CACHE_K_ALIASES, breakdown_verbosity_flag, memory_launch
from llama_launcher.core.models.model_info import ModelInfo, format_params
from llama_launcher.core.models.shape import ShapeError, check_context
from llama_launcher.core.plan.extra_args import ExtraArgsError, ParsedExtraArgs, parse_extra_args
from llama_launcher.core.settings.launch import CACHE_TYPES, ModelSettings, PlanSettings
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.methods import (
    BY_ID,
    KNOBS,
    METHODS,
    MODES,
    Method,
    combo_label,
    flag_clash,
    resolve_dialect,
)
from llama_launcher.core.speculative.pairing import DraftOption, auto_draft, head_for

__all__ = ["ModelSettings", "PlanSettings", "Plan", "PlanError", "plan_launch", "decide_speculative"]

# MTP is not auto-enabled below this many trunk parameters. The seed used 2B; published B200
# numbers show 2B models also lose with MTP n=2 (377 -> 308 t/s, 0.82x) while 4B gains
# (241 -> 258 t/s, 1.07x), and 0.8B loses badly (452 -> 283, 0.63x; CPU n=3 84.5 -> 64.9).
# A draft model or head on a small model has even less to win, so the same gate applies.
SMALL_MODEL_THRESHOLD = 3_000_000_000
DRAFT_N_GPU = 2  # 27B sweep on B200: n=2 best, n=6 worse on every prompt type
DRAFT_N_CPU = KNOBS["draft_n_max"].default  # llama.cpp's default (3); what the CPU/Mac chain used in the seed
# Built-in llama-server templates for architectures whose GGUFs often ship without a chat template
# (the demo model does): without one, llama-server falls back to ChatML, which Gemma does not speak.
FALLBACK_TEMPLATES = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "gemma3n": "gemma"}
CTX_ALIASES = ("-c", "--ctx-size")
REDACTED = "<redacted>"


def default_draft_n(gpu: bool) -> int:
    """The draft length used when neither the user nor a measurement chose one."""
    return DRAFT_N_GPU if gpu else DRAFT_N_CPU


class PlanError(ValueError):
    """Input that cannot be planned (bad extra args, bad values); one line."""


class Availability(NamedTuple):
    ok: bool
    reason: str


@dataclass
class FlagReason:
    args: list[str]
    reason: str
    group: str = "general"  # "model", "network", "speculative", "memory", "metrics", "user"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SpeculativeDecision:
    methods: list[str] = field(default_factory=list)  # engaged method ids, table order
    types: list[str] = field(default_factory=list)  # their --spec-type tokens
    draft_n_max: int | None = None
    draft: DraftOption | None = None  # the draft model or head file in use
    source: str = "table"  # "table", "measured", "user extra args", "unavailable"
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


@dataclass
class Plan:
    argv: list[str]
    flags: list[FlagReason]
    warnings: list[str]
    memory: MemoryEstimate | None
    speculative: SpeculativeDecision
    gpu_branch: bool
    gpu_reason: str
    endpoint: str
    context: int = 0  # the context the server really gets (the user's -c in extra arguments wins)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the child (never printed)
    context_warnings: list[str] = field(default_factory=list)  # shown next to the Context control

    def redacted_argv(self) -> list[str]:
        out, hide = [], False
        for a in self.argv:
            out.append(REDACTED if hide else a)
            hide = a == "--api-key"
        return out

    def reason_for(self, flag: str) -> str | None:
        for f in self.flags:
            if f.args and f.args[0] == flag:
                return f.reason
        return None

    def to_dict(self) -> dict[str, Any]:
        flags = []
        for f in self.flags:
            args = [REDACTED if i > 0 and f.args[i - 1] == "--api-key" else a for i, a in enumerate(f.args)]
            flags.append({"args": args, "reason": f.reason, "group": f.group})
        return {
            "argv": self.redacted_argv(),
            "reasons": flags,
            "warnings": list(self.warnings),
            "context": self.context,
            "memory": self.memory.to_dict() if self.memory else None,
            "speculative": self.speculative.to_dict(),
            "gpu_branch": self.gpu_branch,
            "gpu_reason": self.gpu_reason,
            "endpoint": self.endpoint,
        }


# --- what each method needs ---------------------------------------------------------------------

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


# --- the decision table (docs/planner.md, "Speculative decoding") ------------------------------

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
        d.source, d.user_types = "user extra args", list(extra.spec_types)
        d.summary = "set by your extra arguments (" + (", ".join(extra.spec_types) or "none") + ")"
        return d
    if not caps.speculative:
        if any(v == "on" for v in modes.values()) or model.is_mtp:
            warnings.append("this llama-server has no --spec-type: speculative decoding is off; update llama.cpp")
        d.source, d.summary = "unavailable", "off: this llama-server has no speculative decoding"
        return d

    measured = tuned is not None and all(v == "auto" for v in modes.values())
    chosen: set[str] = set()
    if measured and tuned is not None:
        d.source = "measured"
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
        knob = KNOBS["draft_n_max"]
        if n is not None and not knob.lo <= n <= knob.hi:
            raise PlanError(f"draft length must be between {knob.lo} and {knob.hi} (got {n})")
        d.draft_n_max = n
    d.summary = combo_label(d.methods, d.draft_n_max)
    if d.draft is not None:
        d.summary += f" ({d.draft.name})"
    if d.source == "measured" and tuned is not None:
        d.summary += f" — {tuned.describe()}"
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


# --- memory --------------------------------------------------------------------------------------

def memory_budget(hw: Hardware, gpu: bool, mtp: bool) -> tuple[int, str]:
    frac = BUDGET_MTP if mtp else BUDGET_DEFAULT
    pct = int(frac * 100)
    if gpu:
        return int(hw.gpu_free_mib() * frac), f"{pct}% of free GPU memory" + (" (MTP needs room)" if mtp else "")
    if hw.apple_silicon:
        return int(hw.ram_available_mib * frac), f"{pct}% of available unified memory"
    return int(hw.ram_available_mib * frac), f"{pct}% of available RAM"


def _user_context(extra: ParsedExtraArgs) -> int | None:
    value = extra.value(*CTX_ALIASES)
    if value is None:
        return None
    try:
        ctx = int(value)
    except ValueError as exc:
        raise PlanError(f"-c needs a whole number of tokens, not {value!r}") from exc
    if ctx < 0:
        raise PlanError(f"the context size must not be negative (got {ctx})")
    return ctx


# --- the plan ------------------------------------------------------------------------------------

def plan_launch(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, settings: PlanSettings,
                tuned: TunedChoice | None = None, drafts: list[DraftOption] | None = None,
                memory_evidence: MemoryEvidence | None = None) -> Plan:
    """Plan one llama-server launch. Raises :class:`PlanError` for input that cannot be planned.

    ``drafts`` are the catalog's drafters for this model (draft_pairing); ``memory_evidence``
    (llama.cpp's projection, this model's past launches) is gathered by the caller; with it, those
    decide the memory fit instead of the launcher's own model.
    """
    warnings: list[str] = []
    flags: list[FlagReason] = []
    if model.error:
        raise PlanError(f"{model.file_name} cannot be launched: {model.error}")
    if model.is_projector:
        raise PlanError(f"{model.file_name} is a vision projector (mmproj), not a model")
    try:
        extra = parse_extra_args(settings.extra_args, caps, lan=settings.lan)
    except ExtraArgsError as exc:
        raise PlanError(str(exc)) from exc
    warnings += extra.warnings

    gpu, gpu_reason = hw.gpu_branch()
    if idle := idle_gpu_notice(hw):  # a GPU this binary cannot use: say so with the plan
        warnings.append(idle)
    model_path = model.split_parts[0] if model.split_parts else model.path
    flags.append(FlagReason(["-m", model_path], "the model you selected" + (
        f" (part 1 of {model.split_count}; llama-server loads the other parts itself)" if model.split_count > 1 else ""),
        "model"))

    env: dict[str, str] = {}
    if settings.lan:
        if not settings.api_key:
            raise PlanError("LAN access needs an API key; the launcher generates one for you")
        flags.append(FlagReason(["--host", "0.0.0.0"], "LAN access is on: other machines on your network can connect",
                                "network"))
        if caps.has_api_key_file and settings.api_key_file:
            flags.append(FlagReason(["--api-key-file", settings.api_key_file],
                                    "LAN access requires the API key on every request; it is read from this "
                                    "owner-only file, so it never appears in the process list", "network"))
        else:
            env["LLAMA_API_KEY"] = settings.api_key  # an environment is private to its owner, unlike argv
            flags.append(FlagReason([], "LAN access requires the API key on every request; this llama-server has no "
                                    "--api-key-file, so the key is passed in its environment (LLAMA_API_KEY)",
                                    "network"))
    else:
        flags.append(FlagReason(["--host", "127.0.0.1"], "only programs on this computer can connect", "network"))
    if not 1 <= settings.port <= 65535:
        raise PlanError(f"the port must be between 1 and 65535 (got {settings.port})")
    flags.append(FlagReason(["--port", str(settings.port)],
                            "Port is Auto: a port that is free right now" if settings.port_auto else
                            "the port you chose, the same at every launch", "network"))

    spec = decide_speculative(model, caps, settings, gpu, extra, tuned, warnings, drafts)
    flags += _speculative_flags(spec, caps, settings, gpu)

    # context and memory
    mtp_on = spec.mtp_engaged
    budget, budget_src = memory_budget(hw, gpu, mtp_on or spec.draft is not None)
    cache_type = extra.value(*CACHE_K_ALIASES) or settings.cache_type or "f16"
    if settings.cache_type is not None and settings.cache_type not in CACHE_TYPES:
        raise PlanError(f"unknown KV cache type {settings.cache_type!r} (known: {', '.join(CACHE_TYPES)})")
    draft_model = spec.draft.model if spec.draft is not None else None
    launch = memory_launch(model, hw, gpu, spec.types, spec.draft_n_max, settings.ngram_n_max, cache_type, extra.argv)
    evidence = memory_evidence or MemoryEvidence()
    learned, projection = evidence.learned_for(launch), evidence.projection_for(launch)
    free = hw.gpu_free_mib() if gpu else None
    user_ctx = _user_context(extra)
    chosen_ctx = user_ctx if user_ctx is not None else settings.ctx
    if chosen_ctx is not None and chosen_ctx < 0:
        raise PlanError(f"the context size must not be negative (got {chosen_ctx})")
    try:
        native = check_context(model.context_length, "the model's context_length") \
            if model.context_length is not None else 4096
    except ShapeError as exc:
        if not chosen_ctx:
            raise PlanError(f"{exc}; set a context size") from exc
        native = None
    context_warnings: list[str] = []
    try:
        if chosen_ctx is not None:
            ctx = check_context(chosen_ctx if chosen_ctx > 0 else native, "context size")
            mem = estimate(model, ctx, budget, budget_src, launch=launch, projection=projection, learned=learned,
                           gpu_free_mib=free, draft=draft_model)
            if mem.status == "does not fit":
                context_warnings.append(f"context {ctx:,} probably does not fit: {mem.describe()}")
            elif mem.status == "tight":
                context_warnings.append(f"context {ctx:,} only just fits: {mem.describe()}")
            if native is not None and ctx > native:
                context_warnings.append(f"context {ctx:,} is above the model's native {native:,}: quality may suffer")
            reason = "your context size" + (" (from your extra arguments)" if user_ctx is not None else "")
        else:
            assert native is not None
            ctx = fit_context(model, native, budget, launch=launch, projection=projection, learned=learned,
                              draft=draft_model) if budget > 0 else min(native, 4096)
            mem = estimate(model, ctx, budget, budget_src, launch=launch, projection=projection, learned=learned,
                           gpu_free_mib=free, draft=draft_model)
            reason = (f"the model's native context {native:,}" if ctx == native else
                      f"largest context that fits {budget_src} (native {native:,}; {mem.decided_by})")
            if mem.status == "does not fit":
                context_warnings.append(f"the model probably does not fit in memory: {mem.describe()}")
    except ShapeError as exc:
        raise PlanError(f"{model.file_name}: {exc}") from exc
    if evidence.projection_error:
        mem.notes.append(evidence.projection_error)
    warnings += context_warnings
    if user_ctx is None:
        flags.append(FlagReason(["-c", str(ctx)], reason + f"; memory: {mem.status}", "memory"))
    if settings.cache_type:
        flags.append(FlagReason(["--cache-type-k", settings.cache_type, "--cache-type-v", settings.cache_type],
                                "your KV cache type", "memory"))
    if caps.has_fit:
        flags.append(FlagReason(["--fit", "on"], "let llama-server fit layers to the memory it really finds", "memory"))
    if settings.gpu_layers is not None:
        flags.append(FlagReason(["-ngl", str(settings.gpu_layers)], "your GPU layer count", "memory"))
    if settings.threads is not None:
        if settings.threads < 1:
            raise PlanError(f"threads must be at least 1 (got {settings.threads})")
        flags.append(FlagReason(["-t", str(settings.threads)], "your thread count", "general"))
    flags += _template_flags(model, caps, extra)
    if caps.has_metrics:
        flags.append(FlagReason(["--metrics"], "the live panel reads /metrics to show other clients' speed",
                                "metrics"))
    lv = breakdown_verbosity_flag(caps, extra.flags)
    if lv:
        flags.append(FlagReason(lv, "llama-server logs its memory use only at verbosity 4; the launcher reads it "
                                "to learn what this model really uses", "memory"))
    if settings.vision:
        proj = model.mmproj[0] if model.mmproj else None
        if proj:
            flags.append(FlagReason(["--mmproj", proj], "vision projector paired with this model", "model"))
        else:
            warnings.append("vision is on, but no projector (mmproj) was found beside this model")
    if extra.argv:
        flags.append(FlagReason(list(extra.argv), "your extra arguments (they come last and win)", "user"))
    argv = [binary]
    for f in flags:
        argv.extend(f.args)
    endpoint = f"http://127.0.0.1:{settings.port}"
    return Plan(argv, flags, warnings, mem, spec, gpu, gpu_reason, endpoint, ctx, env, context_warnings)


def _speculative_flags(spec: SpeculativeDecision, caps: Capabilities, settings: ModelSettings,
                       gpu: bool) -> list[FlagReason]:
    if not spec.types:
        return []
    why = {"measured": "measured on this machine",
           "table": "GPU branch: a model-based drafter alone" if gpu and any(BY_ID[m].kind == "model" for m in spec.methods)
           else "GPU branch" if gpu else "CPU/Mac branch"}.get(spec.source, spec.source)
    flags = [FlagReason(["--spec-type", ",".join(spec.types)],
                        f"speculative decoding: {spec.summary} ({why}; one --spec-type, comma-chained)", "speculative")]
    for mid in spec.methods:
        m, dialect = BY_ID[mid], caps.dialects.get(mid, {})
        if m.kind == "model":
            if spec.draft is not None and "model" in dialect:
                flags.append(FlagReason([dialect["model"], spec.draft.path],
                                        f"the {m.label.lower()} that drafts for this model: {spec.draft.reason}",
                                        "speculative"))
                if gpu and "gpu_layers" in dialect:
                    flags.append(FlagReason([dialect["gpu_layers"], "all"], "the draft runs on the GPU too",
                                            "speculative"))
            if spec.draft_n_max is not None and "draft_n_max" in dialect:
                src = (" (your setting)" if settings.draft_n_max is not None else
                       " (measured best)" if spec.source == "measured" else f" ({'GPU' if gpu else 'CPU/Mac'} default)")
                flags.append(FlagReason([dialect["draft_n_max"], str(spec.draft_n_max)],
                                        f"{m.label} draft length {spec.draft_n_max}{src}", "speculative"))
        else:
            knobs = [k for k in m.knobs if k in dialect]
            values = {k: getattr(settings, k) for k in knobs}
            if "ngram_n_min" in values and "ngram_n_max" in values and values["ngram_n_min"] > values["ngram_n_max"]:
                raise PlanError(f"ngram-mod n-min ({values['ngram_n_min']}) must not exceed n-max "
                                f"({values['ngram_n_max']})")
            if knobs:
                args = [a for k in knobs for a in (dialect[k], str(values[k]))]
                old = caps.dialect_names.get(mid) == "legacy"
                flags.append(FlagReason(args, f"{m.label} knobs" + (" under this older llama-server's names" if old
                                        else ": match length, minimum and maximum draft"), "speculative"))
    return flags


TEMPLATE_FLAGS = frozenset({"--chat-template", "--chat-template-file", "--jinja", "--no-jinja"})


def fallback_template(model: ModelInfo, caps: Capabilities) -> str | None:
    """The built-in template this binary has for a model whose file carries none, if any."""
    fallback = FALLBACK_TEMPLATES.get(model.architecture or "")
    if model.has_chat_template or not fallback or fallback not in caps.builtin_templates:
        return None
    return fallback


def chat_template_given(plan: Plan) -> str:
    """In words, which template chat clients of this plan's server get (for a model without its own)."""
    for f in plan.flags:
        if f.group == "model" and "--chat-template" in f.args:
            name = f.args[f.args.index("--chat-template") + 1]
            return f"the launcher passes llama-server's built-in '{name}' template for chat clients"
        if f.group == "user" and TEMPLATE_FLAGS & {a.split("=", 1)[0] for a in f.args}:
            return "your extra arguments choose the chat template"
    return "chat clients get llama-server's generic template"


def _template_flags(model: ModelInfo, caps: Capabilities, extra: ParsedExtraArgs) -> list[FlagReason]:
    """A built-in template for a model without one, spelt so that this binary honours it.

    With the Jinja engine on (b11434's default), ``--chat-template gemma`` is taken as the literal
    template text "gemma" and every message is lost; built-in names work only with ``--no-jinja``."""
    fallback = fallback_template(model, caps)
    if fallback is None or TEMPLATE_FLAGS & set(extra.flags):
        return []
    args = ["--chat-template", fallback]
    how = ""
    if caps.jinja_default:
        args = ["--no-jinja", *args]
        how = "; --no-jinja because this llama-server reads built-in template names only with its Jinja engine off"
    return [FlagReason(args, f"the model file has no chat template; {model.architecture} models use llama-server's "
                             f"built-in '{fallback}' template{how}", "model")]
