"""The launch planner: model + hardware + binary capabilities + settings -> an explained argv.

A pure function. Every flag it emits carries the reason it is there, so the window can show
"why" on hover and the CLI can print it. Its parts: the speculative decision (``speculative.py``),
chat templates (``templates.py``), the memory fit (``core/memory``), the user's extra arguments
(``extra_args.py``); this module puts them together in argv order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.idle_gpu import idle_gpu_notice
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.memory.estimate import (
    BUDGET_DEFAULT,
    BUDGET_MTP,
    FitStatus,
    MemoryEstimate,
    MemoryEvidence,
    estimate,
    fit_context,
)
from llama_launcher.core.memory.launch import CACHE_K_ALIASES, breakdown_verbosity_flag, memory_launch
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.models.shape import ShapeError, check_context
from llama_launcher.core.models.sidecar import kind_of, refusal
from llama_launcher.core.plan.extra_args import ExtraArgsError, ParsedExtraArgs, parse_extra_args
from llama_launcher.core.plan.flags import FlagGroup, FlagReason, PlanError
from llama_launcher.core.plan.spec_flags import speculative_flags
from llama_launcher.core.plan.speculative import SpeculativeDecision, decide_speculative, draft_lengths
from llama_launcher.core.plan.templates import template_flags
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.pairing import DraftOption

CTX_ALIASES = ("-c", "--ctx-size")


REDACTED = "<redacted>"


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

    def shown_flags(self) -> list[FlagReason]:
        """The flags as the preview and ``plan`` show them: in argv order, a key never in them."""
        return [FlagReason([REDACTED if i > 0 and f.args[i - 1] == "--api-key" else a for i, a in enumerate(f.args)],
                           f.reason, f.group) for f in self.flags]

    def to_dict(self) -> dict[str, Any]:
        return {
            "argv": self.redacted_argv(),
            "reasons": [f.to_dict() for f in self.shown_flags()],
            "warnings": list(self.warnings),
            "context": self.context,
            "memory": self.memory.to_dict() if self.memory else None,
            "speculative": self.speculative.to_dict(),
            "gpu_branch": self.gpu_branch,
            "gpu_reason": self.gpu_reason,
            "endpoint": self.endpoint,
        }


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


def _network_flags(settings: PlanSettings, caps: Capabilities) -> tuple[list[FlagReason], dict[str, str]]:
    """--host and --port, and the API key for LAN access (a file or the environment, never argv)."""
    flags: list[FlagReason] = []
    env: dict[str, str] = {}
    if settings.lan:
        if not settings.api_key:
            raise PlanError("LAN access needs an API key; the launcher generates one for you")
        flags.append(FlagReason(["--host", "0.0.0.0"], "LAN access is on: other machines on your network can connect",
                                FlagGroup.NETWORK))
        if caps.has_api_key_file and settings.api_key_file:
            flags.append(FlagReason(["--api-key-file", settings.api_key_file],
                                    "LAN access requires the API key on every request; it is read from this "
                                    "owner-only file, so it never appears in the process list", FlagGroup.NETWORK))
        else:
            env["LLAMA_API_KEY"] = settings.api_key  # an environment is private to its owner, unlike argv
            flags.append(FlagReason([], "LAN access requires the API key on every request; this llama-server has no "
                                    "--api-key-file, so the key is passed in its environment (LLAMA_API_KEY)",
                                    FlagGroup.NETWORK))
    else:
        flags.append(FlagReason(["--host", "127.0.0.1"], "only programs on this computer can connect", FlagGroup.NETWORK))
    if not 1 <= settings.port <= 65535:
        raise PlanError(f"the port must be between 1 and 65535 (got {settings.port})")
    flags.append(FlagReason(["--port", str(settings.port)],
                            "Port is Auto: free right now (the window keeps it at the next start while it stays free)"
                            if settings.port_auto else
                            "the port you chose, the same at every launch", FlagGroup.NETWORK))
    return flags, env


def _context_and_memory(model: ModelInfo, hw: Hardware, gpu: bool, settings: PlanSettings, spec: SpeculativeDecision,
                        extra: ParsedExtraArgs, memory_evidence: MemoryEvidence | None,
                        ) -> tuple[int, MemoryEstimate, str, list[str], int | None]:
    """The context to launch with and the memory it needs: the user's (checked against the memory), or
    the largest that fits. Returns (context, estimate, the -c reason, context warnings, the context
    given in the extra arguments)."""
    mtp_on = spec.mtp_engaged
    budget, budget_src = memory_budget(hw, gpu, mtp_on or spec.draft is not None)
    cache_type = extra.value(*CACHE_K_ALIASES) or settings.cache_type or "f16"
    head = spec.head  # an MTP head counts by its own tensors and context, never as a second model
    draft_model = spec.draft.model if spec.draft is not None and head is None else None
    launch = memory_launch(model, hw, gpu, spec.types, spec.draft_n_max, draft_lengths(spec, settings), cache_type,
                           extra.argv, spec.draft_cache_type or "f16")
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
                           gpu_free_mib=free, draft=draft_model, head=head)
            if mem.status is FitStatus.DOES_NOT_FIT:
                context_warnings.append(f"context {ctx:,} probably does not fit: {mem.describe()}")
            elif mem.status is FitStatus.TIGHT:
                context_warnings.append(f"context {ctx:,} only just fits: {mem.describe()}")
            if native is not None and ctx > native:
                context_warnings.append(f"context {ctx:,} is above the model's native {native:,}: quality may suffer")
            reason = "your context size" + (" (from your extra arguments)" if user_ctx is not None else "")
        else:
            assert native is not None
            ctx = fit_context(model, native, budget, launch=launch, projection=projection, learned=learned,
                              draft=draft_model, head=head) if budget > 0 else min(native, 4096)
            mem = estimate(model, ctx, budget, budget_src, launch=launch, projection=projection, learned=learned,
                           gpu_free_mib=free, draft=draft_model, head=head)
            reason = (f"the model's native context {native:,}" if ctx == native else
                      f"largest context that fits {budget_src} (native {native:,}; {mem.decided_by})")
            if mem.status is FitStatus.DOES_NOT_FIT:
                context_warnings.append(f"the model probably does not fit in memory: {mem.describe()}")
    except ShapeError as exc:
        raise PlanError(f"{model.file_name}: {exc}") from exc
    if evidence.projection_error:
        mem.notes.append(evidence.projection_error)
    return ctx, mem, reason, context_warnings, user_ctx


def plan_launch(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, settings: PlanSettings,
                tuned: TunedChoice | None = None, drafts: list[DraftOption] | None = None,
                memory_evidence: MemoryEvidence | None = None, avoid: dict[str, str] | None = None) -> Plan:
    """Plan one llama-server launch. Raises :class:`PlanError` for input that cannot be planned.

    The per-model settings are trusted to have passed ``settings.launch.check_model_settings`` (the
    settings file, the CLI and the window all run it); what is checked here is what only a plan can
    know: the extra arguments against this binary, LAN without a key, the port, the context.

    ``drafts`` are the catalog's drafters for this model (draft models and heads, ``speculative.pairing``);
    ``memory_evidence`` (llama.cpp's projection, this model's past launches) is gathered by the caller;
    with it, those decide the memory fit instead of the launcher's own model. ``avoid`` holds the
    methods Auto leaves off because they stopped this model from loading with this binary
    (``plan.fallback``), each with the reason.
    """
    warnings: list[str] = []
    flags: list[FlagReason] = []
    if model.error:
        raise PlanError(f"{model.file_name} cannot be launched: {model.error}")
    if model.is_projector:
        raise PlanError(f"{model.file_name} is a vision projector (mmproj), not a model")
    if kind_of(model) is not None:
        raise PlanError(refusal(model))
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
        FlagGroup.MODEL))

    net_flags, env = _network_flags(settings, caps)
    flags += net_flags

    spec = decide_speculative(model, caps, settings, gpu, extra, tuned, warnings, drafts, avoid)
    flags += speculative_flags(spec, caps, settings, gpu, warnings, apple=hw.apple_silicon)

    ctx, mem, reason, context_warnings, user_ctx = _context_and_memory(model, hw, gpu, settings, spec, extra,
                                                                      memory_evidence)
    warnings += context_warnings
    if user_ctx is None:
        flags.append(FlagReason(["-c", str(ctx)], reason + f"; memory: {mem.status}", FlagGroup.MEMORY))
    if settings.cache_type:
        flags.append(FlagReason(["--cache-type-k", settings.cache_type, "--cache-type-v", settings.cache_type],
                                "your KV cache type", FlagGroup.MEMORY))
    if caps.has_fit:
        flags.append(FlagReason(["--fit", "on"], "let llama-server fit layers to the memory it really finds", FlagGroup.MEMORY))
    if settings.gpu_layers is not None:
        flags.append(FlagReason(["-ngl", str(settings.gpu_layers)], "your GPU layer count", FlagGroup.MEMORY))
    if settings.threads is not None:
        flags.append(FlagReason(["-t", str(settings.threads)], "your thread count", FlagGroup.GENERAL))
    flags += template_flags(model, caps, extra)
    if caps.has_metrics:
        flags.append(FlagReason(["--metrics"], "the live panel reads /metrics to show other clients' speed",
                                FlagGroup.METRICS))
    lv = breakdown_verbosity_flag(caps, extra.flags)
    if lv:
        flags.append(FlagReason(lv, "llama-server logs its memory use only at verbosity 4; the launcher reads it "
                                "to learn what this model really uses", FlagGroup.MEMORY))
    if settings.vision:
        proj = model.mmproj[0] if model.mmproj else None
        if proj:
            flags.append(FlagReason(["--mmproj", proj], "vision projector paired with this model", FlagGroup.MODEL))
        else:
            warnings.append("vision is on, but no projector (mmproj) was found beside this model")
    if extra.argv:
        flags.append(FlagReason(list(extra.argv), "your extra arguments (they come last and win)", FlagGroup.USER))
    argv = [binary]
    for f in flags:
        argv.extend(f.args)
    endpoint = f"http://127.0.0.1:{settings.port}"
    return Plan(argv, flags, warnings, mem, spec, gpu, gpu_reason, endpoint, ctx, env, context_warnings)
