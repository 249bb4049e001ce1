"""The launch planner: model + hardware + binary capabilities + settings -> an explained argv.

A pure function. Every flag it emits carries the reason it is there, so the window can show
"why" on hover and the CLI can print it. The speculative table follows Unsloth Studio's launcher
(see docs/planner.md) with its known flaws fixed: one comma-chained ``--spec-type`` (never
repeated), ngram-mod n-max 64 (not 6, which was below n-min), no chaining on legacy binaries whose
draft length and ngram max share ``--draft-max``, and model size counted from tensors, not names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from llama_launcher.core.binary_probe import Capabilities
from llama_launcher.core.extra_args import ExtraArgsError, parse_extra_args
from llama_launcher.core.hardware import Hardware
from llama_launcher.core.idle_gpu import idle_gpu_notice
from llama_launcher.core.memory_estimate import (
    BUDGET_DEFAULT,
    BUDGET_MTP,
    MemoryEstimate,
    estimate,
    fit_context,
)
from llama_launcher.core.model_info import ModelInfo, format_params
from llama_launcher.core.tuning_store import TunedChoice

# MTP is not auto-enabled below this many trunk parameters. The seed used 2B; published B200
# numbers show 2B models also lose with MTP n=2 (377 -> 308 t/s, 0.82x) while 4B gains
# (241 -> 258 t/s, 1.07x), and 0.8B loses badly (452 -> 283, 0.63x; CPU n=3 84.5 -> 64.9).
SMALL_MODEL_THRESHOLD = 3_000_000_000
DRAFT_N_GPU = 2  # 27B sweep on B200: n=2 best, n=6 worse on every prompt type
DRAFT_N_CPU = 3  # llama.cpp's default; what the CPU/Mac chain used in the seed
DRAFT_N_RANGE = (1, 16)
NGRAM_DEFAULTS = (24, 48, 64)  # n-match, n-min, n-max: llama.cpp's --spec-default values
MODES = ("auto", "on", "off")
# Built-in llama-server templates for architectures whose GGUFs often ship without a chat template
# (the demo model does): without one, llama-server falls back to ChatML, which Gemma does not speak.
FALLBACK_TEMPLATES = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "gemma3n": "gemma"}
REDACTED = "<redacted>"


class PlanError(ValueError):
    """Input that cannot be planned (bad extra args, bad values); one line."""


@dataclass
class PlanSettings:
    mtp: str = "auto"
    ngram_mod: str = "auto"
    draft_n_max: int | None = None
    ngram_n_match: int = NGRAM_DEFAULTS[0]
    ngram_n_min: int = NGRAM_DEFAULTS[1]
    ngram_n_max: int = NGRAM_DEFAULTS[2]
    ctx: int | None = None
    cache_type: str | None = None
    threads: int | None = None
    gpu_layers: int | None = None
    extra_args: str = ""
    lan: bool = False
    api_key: str | None = None
    port: int = 8080
    vision: bool = False
    mmproj: str | None = None


@dataclass
class FlagReason:
    args: list[str]
    reason: str
    group: str = "general"  # "model", "network", "speculative", "memory", "metrics", "user"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SpeculativeDecision:
    types: list[str] = field(default_factory=list)
    draft_n_max: int | None = None
    ngram_knobs: str | None = None  # "current" or "legacy"
    source: str = "table"  # "table", "measured", "user extra args", "unavailable"
    summary: str = "off"
    mtp_available: tuple[bool, str] = (False, "")
    ngram_available: tuple[bool, str] = (False, "")


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
            "memory": self.memory.to_dict() if self.memory else None,
            "speculative": {
                "types": self.speculative.types,
                "draft_n_max": self.speculative.draft_n_max,
                "source": self.speculative.source,
                "summary": self.speculative.summary,
                "mtp_available": list(self.speculative.mtp_available),
                "ngram_available": list(self.speculative.ngram_available),
            },
            "gpu_branch": self.gpu_branch,
            "gpu_reason": self.gpu_reason,
            "endpoint": self.endpoint,
        }


def _check_mode(name: str, value: str) -> str:
    v = (value or "auto").lower()
    if v not in MODES:
        raise PlanError(f"{name} must be one of auto, on, off (got {value!r})")
    return v


def mtp_availability(model: ModelInfo, caps: Capabilities) -> tuple[bool, str]:
    """(can MTP run, why not) for the window's tooltip and the planner."""
    if not caps.speculative:
        return False, "this llama-server has no --spec-type; update llama.cpp"
    if not caps.mtp_token:
        return False, "this llama-server has no MTP; update llama.cpp to a build with draft-mtp"
    if model.nextn_predict_layers <= 0:
        if model.is_mtp:
            return False, "model is only named -MTP; its metadata declares no MTP layers"
        return False, "model has no MTP layers"
    return True, f"model has {model.nextn_predict_layers} MTP layer(s); binary type {caps.mtp_token}"


def ngram_availability(caps: Capabilities) -> tuple[bool, str]:
    if not caps.speculative:
        return False, "this llama-server has no --spec-type; update llama.cpp"
    if "ngram-mod" not in caps.spec_types:
        return False, "this llama-server has no ngram-mod speculative type; update llama.cpp"
    if caps.ngram_mod_flavor is None:
        return False, "this llama-server has no ngram-mod knobs (--spec-ngram-mod-n-*); update llama.cpp"
    return True, f"ngram-mod with {caps.ngram_mod_flavor} knobs"


def decide_speculative(model: ModelInfo, caps: Capabilities, settings: PlanSettings, gpu: bool,
                       user_spec_flags: bool, tuned: TunedChoice | None, warnings: list[str]) -> SpeculativeDecision:
    mtp_mode = _check_mode("MTP", settings.mtp)
    ngram_mode = _check_mode("ngram-mod", settings.ngram_mod)
    d = SpeculativeDecision()
    d.mtp_available = mtp_availability(model, caps)
    d.ngram_available = ngram_availability(caps)
    if user_spec_flags:
        d.source, d.summary = "user extra args", "set by your extra arguments (--spec-type/--spec-default)"
        return d
    if not caps.speculative:
        if mtp_mode == "on" or ngram_mode == "on" or model.is_mtp:
            warnings.append("this llama-server has no --spec-type: speculative decoding is off; update llama.cpp")
        d.source, d.summary = "unavailable", "off: this llama-server has no speculative decoding"
        return d

    small = (model.trunk_parameters or 0) < SMALL_MODEL_THRESHOLD
    has_layers = model.nextn_predict_layers > 0
    want_mtp: bool
    want_ngram: bool
    draft_default = DRAFT_N_GPU if gpu else DRAFT_N_CPU
    if tuned is not None and mtp_mode == "auto" and ngram_mode == "auto":
        d.source = "measured"
        want_mtp = "mtp" in tuned.setting
        want_ngram = "ngram" in tuned.setting
        if tuned.draft_n_max:
            draft_default = tuned.draft_n_max
    else:
        if mtp_mode == "on":
            want_mtp = True
            if not has_layers:
                warnings.append("MTP forced on, but the model has no MTP layers: llama-server will refuse to load it")
            elif small:
                warnings.append(f"MTP forced on for a small model ({format_params(model.trunk_parameters)}): "
                                "below 3B, MTP measured slower than off")
        elif mtp_mode == "auto":
            want_mtp = has_layers and not small
            if model.is_mtp and not has_layers:
                warnings.append("the model is named -MTP but its metadata declares no MTP layers: MTP stays off")
        else:
            want_mtp = False
        if ngram_mode == "on":
            want_ngram = True
        elif ngram_mode == "auto":
            want_ngram = (not want_mtp) or not gpu  # GPU: MTP alone; CPU/Mac: the chain
        else:
            want_ngram = False

    mtp_ok = bool(caps.mtp_token)
    if want_mtp and not mtp_ok:
        warnings.append("this llama-server has no MTP type: MTP dropped; update llama.cpp to a build with draft-mtp")
        want_mtp = False
        if ngram_mode == "auto" and d.source != "measured":
            want_ngram = True  # as for a model without MTP: ngram-mod alone
    ngram_ok, why_not = d.ngram_available
    if want_ngram and not ngram_ok:
        warnings.append(f"ngram-mod dropped: {why_not}")
        want_ngram = False
    if want_mtp and want_ngram and caps.ngram_mod_flavor == "legacy":
        warnings.append("this llama-server uses --draft-max for both the draft length and ngram-mod's maximum, so "
                        "the launcher does not chain them: MTP alone")
        want_ngram = False

    if want_ngram:
        d.types.append("ngram-mod")
        d.ngram_knobs = caps.ngram_mod_flavor
    if want_mtp:
        assert caps.mtp_token is not None
        d.types.append(caps.mtp_token)
        n = settings.draft_n_max if settings.draft_n_max is not None else draft_default
        lo, hi = DRAFT_N_RANGE
        if not lo <= n <= hi:
            raise PlanError(f"draft length must be between {lo} and {hi} (got {n})")
        d.draft_n_max = n
    if not d.types:
        d.summary = "off"
    else:
        label = " + ".join("MTP" if t == caps.mtp_token else t for t in reversed(d.types))
        d.summary = label + (f" (draft length {d.draft_n_max})" if d.draft_n_max else "")
    if d.source == "measured" and tuned is not None:
        d.summary += f" — {tuned.describe()}"
    return d


def _budget(hw: Hardware, gpu: bool, mtp: bool) -> tuple[int, str]:
    frac = BUDGET_MTP if mtp else BUDGET_DEFAULT
    pct = int(frac * 100)
    if gpu:
        return int(hw.gpu_free_mib() * frac), f"{pct}% of free GPU memory" + (" (MTP needs room)" if mtp else "")
    if hw.apple_silicon:
        return int(hw.ram_available_mib * frac), f"{pct}% of available unified memory"
    return int(hw.ram_available_mib * frac), f"{pct}% of available RAM"


def plan_launch(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, settings: PlanSettings,
                tuned: TunedChoice | None = None) -> Plan:
    """Plan one llama-server launch. Raises :class:`PlanError` for input that cannot be planned."""
    warnings: list[str] = []
    flags: list[FlagReason] = []
    if model.error:
        raise PlanError(f"{model.file_name} cannot be launched: {model.error}")
    if model.is_projector:
        raise PlanError(f"{model.file_name} is a vision projector (mmproj), not a model")
    try:
        extra = parse_extra_args(settings.extra_args, known_flags=set(caps.real_options) or None,
                                 removed_flags=set(caps.removed_options))
    except ExtraArgsError as exc:
        raise PlanError(str(exc)) from exc

    gpu, gpu_reason = hw.gpu_branch()
    if idle := idle_gpu_notice(hw):  # a GPU this binary cannot use: say so with the plan
        warnings.append(idle)
    model_path = model.split_parts[0] if model.split_parts else model.path
    flags.append(FlagReason(["-m", model_path], "the model you selected" + (
        f" (part 1 of {model.split_count}; llama-server loads the other parts itself)" if model.split_count > 1 else ""),
        "model"))

    if settings.lan:
        key = settings.api_key
        if not key:
            raise PlanError("LAN access needs an API key; the launcher generates one for you")
        flags.append(FlagReason(["--host", "0.0.0.0"], "LAN access is on: other machines on your network can connect",
                                "network"))
        flags.append(FlagReason(["--api-key", key], "LAN access requires this API key on every request", "network"))
    else:
        flags.append(FlagReason(["--host", "127.0.0.1"], "only programs on this computer can connect", "network"))
    if not 1 <= settings.port <= 65535:
        raise PlanError(f"port must be between 1 and 65535 (got {settings.port})")
    flags.append(FlagReason(["--port", str(settings.port)], "a free port chosen just before start", "network"))

    spec = decide_speculative(model, caps, settings, gpu, extra.has_spec_flags, tuned, warnings)
    if spec.types:
        why = {"measured": f"{tuned.describe() if tuned else 'measured'} on this machine",
               "table": ("GPU branch: MTP alone" if gpu else "CPU/Mac branch")}.get(spec.source, spec.source)
        chain = ",".join(spec.types)
        flags.append(FlagReason(["--spec-type", chain], f"speculative decoding: {spec.summary} ({why}; "
                                "one --spec-type, comma-chained)", "speculative"))
        if spec.draft_n_max is not None and caps.draft_n_max_flag:
            flags.append(FlagReason([caps.draft_n_max_flag, str(spec.draft_n_max)],
                                    f"MTP draft length {spec.draft_n_max}"
                                    + (" (your setting)" if settings.draft_n_max is not None else
                                       " (measured best)" if spec.source == "measured" else
                                       f" ({'GPU' if gpu else 'CPU/Mac'} default)"), "speculative"))
        if spec.ngram_knobs == "current":
            m, lo, hi = settings.ngram_n_match, settings.ngram_n_min, settings.ngram_n_max
            if lo > hi:
                raise PlanError(f"ngram-mod n-min ({lo}) must not exceed n-max ({hi})")
            flags.append(FlagReason(["--spec-ngram-mod-n-match", str(m), "--spec-ngram-mod-n-min", str(lo),
                                     "--spec-ngram-mod-n-max", str(hi)],
                                    "ngram-mod knobs: match length, minimum and maximum draft", "speculative"))
        elif spec.ngram_knobs == "legacy":
            flags.append(FlagReason(["--spec-ngram-size-n", str(settings.ngram_n_match), "--draft-min",
                                     str(settings.ngram_n_min), "--draft-max", str(settings.ngram_n_max)],
                                    "ngram-mod knobs under this older llama-server's names", "speculative"))

    # context and memory
    native = model.context_length or 4096
    budget, budget_src = _budget(hw, gpu, "draft-mtp" in spec.types or "mtp" in spec.types)
    cache_type = settings.cache_type or "f16"
    mtp_on = any(t in ("draft-mtp", "mtp") for t in spec.types)
    if settings.ctx is not None:
        if settings.ctx < 0:
            raise PlanError(f"context size must be positive (got {settings.ctx})")
        ctx = settings.ctx if settings.ctx > 0 else native
        mem = estimate(model, ctx, budget, budget_src, cache_type, mtp_on)
        if mem.status == "does not fit":
            warnings.append(f"context {ctx} probably does not fit: {mem.describe()}")
        if ctx > native:
            warnings.append(f"context {ctx} is above the model's native {native}: quality may suffer")
        reason = "your context size"
    else:
        ctx = fit_context(model, native, budget, cache_type, mtp_on) if budget > 0 else min(native, 4096)
        mem = estimate(model, ctx, budget, budget_src, cache_type, mtp_on)
        reason = (f"the model's native context {native}" if ctx == native else
                  f"largest context that fits {budget_src} (native {native})")
        if mem.status == "does not fit":
            warnings.append(f"the model probably does not fit in memory: {mem.describe()}")
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
    fallback = FALLBACK_TEMPLATES.get(model.architecture or "")
    if (not model.has_chat_template and fallback and fallback in caps.builtin_templates
            and not {"--chat-template", "--chat-template-file"} & set(extra.flags)):
        flags.append(FlagReason(["--chat-template", fallback], f"the model file has no chat template; {model.architecture} "
                                f"models use llama-server's built-in '{fallback}' template", "model"))
    if caps.has_metrics:
        flags.append(FlagReason(["--metrics"], "the live panel reads /metrics to show other clients' speed",
                                "metrics"))
    if settings.vision:
        proj = settings.mmproj or (model.mmproj[0] if model.mmproj else None)
        if proj:
            flags.append(FlagReason(["--mmproj", proj], "vision projector paired with this model", "model"))
        else:
            warnings.append("vision is on, but no projector (mmproj) was found beside this model")
    if extra.argv:
        flags.append(FlagReason(list(extra.argv), "your extra arguments (they come last and win)", "user"))
    argv = [binary]
    for f in flags:
        argv.extend(f.args)
    host = "127.0.0.1"
    endpoint = f"http://{host}:{settings.port}"
    return Plan(argv, flags, warnings, mem, spec, gpu, gpu_reason, endpoint)
