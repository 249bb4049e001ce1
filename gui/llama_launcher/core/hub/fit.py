"""Which quant fits this machine, decided before the first byte of it is downloaded.

Each quant's header is read remotely (``remote_header``) and planned like a file on disk: with the
llama-server in use, ``plan_launch`` decides as Auto would (speculative decoding, its memory, the
largest context that fits); without one, the memory estimate runs with llama-server's defaults and says
that speculation is not counted. Where a verdict lands:

- **GPU**: the whole model, its KV cache and buffers fit the GPU's budget (what a launch gets);
- **partial**: on a GPU machine, too big for the GPU alone but within GPU + RAM: llama-server's
  ``--fit`` keeps some layers on the CPU, which is slower;
- **memory**: on a Mac (unified memory) or a machine without a GPU, it fits the RAM budget;
- **no**: it does not fit at all.

The recommended quant is the largest GPU fit, else the largest partial or memory fit, with the reason
in words. What speculative decoding each gets is said too: MTP layers in the file, an ``mtp-`` head in
the repository, or neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.hub.repo_files import QuantGroup, RepoModels
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.memory.estimate import BUDGET_DEFAULT, MemoryEstimate, estimate, fit_context
from llama_launcher.core.memory.launch import memory_launch
from llama_launcher.core.models.model_info import ModelInfo, format_params
from llama_launcher.core.models.shape import ShapeError, check_context
from llama_launcher.core.plan.flags import PlanError
from llama_launcher.core.plan.planner import memory_budget, plan_launch
from llama_launcher.core.settings.launch import PlanSettings

PLACES = ("gpu", "partial", "memory", "no", "unknown")
PLACE_WORDS = {"gpu": "fits on the GPU", "partial": "partly on the GPU (slower)", "memory": "fits in memory",
               "no": "does not fit", "unknown": "cannot tell"}


@dataclass
class Verdict:
    quant: str
    size: int
    place: str  # one of PLACES
    context: int = 0
    needed_mib: int = 0
    budget_mib: int = 0
    reason: str = ""
    speculative: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.place in ("gpu", "partial", "memory")

    def to_dict(self) -> dict[str, Any]:
        return {"quant": self.quant, "size": self.size, "place": self.place, "verdict": PLACE_WORDS[self.place],
                "context": self.context, "needed_mib": self.needed_mib, "budget_mib": self.budget_mib,
                "reason": self.reason, "speculative": self.speculative, "notes": list(self.notes)}


def _mib(n: int) -> str:
    return f"{n:,} MiB"


def _plan_memory(info: ModelInfo, hw: Hardware, caps: Capabilities | None, ctx: int | None,
                 gpu: bool) -> tuple[MemoryEstimate, int, str | None, list[str]]:
    """(memory estimate, context, what Auto's speculative decision is, notes)."""
    if caps is not None:
        plan = plan_launch(caps.path or "llama-server", info, hw, caps, PlanSettings(ctx=ctx))
        assert plan.memory is not None
        return plan.memory, plan.context, plan.speculative.summary, []
    budget, source = memory_budget(hw, gpu, False)
    launch = memory_launch(info, hw, gpu, [], None, {}, "f16", [])
    native = check_context(info.context_length, "the model's context_length") if info.context_length else 4096
    context = check_context(ctx, "context size") if ctx else (
        fit_context(info, native, budget, launch) if budget > 0 else min(native, 4096))
    notes = ["no llama-server was found: the estimate leaves out speculative decoding's memory"]
    return estimate(info, context, budget, source, launch), context, None, notes


def judge(info: ModelInfo, group: QuantGroup, hw: Hardware, caps: Capabilities | None = None,
          ctx: int | None = None, repo: RepoModels | None = None) -> Verdict:
    """The verdict for one quant on this machine at ``ctx`` tokens (None: what Auto would plan)."""
    v = Verdict(group.quant, group.size, "unknown")
    v.speculative = speculative_words(info, repo, None)
    if info.error:
        v.reason = info.error
        return v
    gpu, _why = hw.gpu_branch()
    try:
        mem, context, spec, notes = _plan_memory(info, hw, caps, ctx, gpu)
    except (PlanError, ShapeError) as exc:
        v.reason = str(exc)
        return v
    v.context, v.needed_mib, v.budget_mib, v.notes = context, mem.total_mib, mem.budget_mib, notes
    v.speculative = speculative_words(info, repo, spec)
    at = f"{mem.total_mib:,} of {mem.budget_mib:,} MiB at {context:,} tokens"
    if mem.status in ("fits", "tight"):
        v.place = "gpu" if gpu else "memory"
        where = "the GPU" if gpu else ("unified memory" if hw.apple_silicon else "RAM")
        v.reason = f"needs {at} ({mem.budget_source})" + (": only just" if mem.status == "tight" else "") + \
            f"; everything in {where}"
        return v
    ram = int(hw.ram_available_mib * BUDGET_DEFAULT)
    if gpu and mem.total_mib <= mem.budget_mib + ram:
        v.place = "partial"
        v.reason = (f"needs {mem.total_mib:,} MiB at {context:,} tokens, more than the GPU's {_mib(mem.budget_mib)}; "
                    f"with {_mib(ram)} of RAM llama-server keeps {_mib(mem.total_mib - mem.budget_mib)} on the CPU "
                    "(slower)")
        return v
    v.place = "no"
    have = mem.budget_mib + (ram if gpu else 0)
    v.reason = f"needs {mem.total_mib:,} MiB even at {context:,} tokens; this machine has {_mib(have)} for it"
    return v


def speculative_words(info: ModelInfo, repo: RepoModels | None, auto: str | None) -> str:
    """What speculative decoding this quant gets: MTP in the file, an ``mtp-`` head in the repository, or none."""
    head = repo.mtp_heads[0] if repo is not None and repo.mtp_heads else None
    if info.nextn_predict_layers > 0:
        text = f"MTP: the file has {info.nextn_predict_layers} MTP layer(s)"
    elif head is not None:
        text = (f"MTP head in the repository ({head.name}), downloaded with it: MTP runs from it "
                "(-md <head> --spec-type draft-mtp)")
    else:
        text = "no MTP layers and no MTP head: ngram-mod (drafts from the context, no extra file) at most"
    if auto is not None:
        text += f"; Auto here: {auto}"
    elif info.nextn_predict_layers > 0 and (info.trunk_parameters or 0) < 3_000_000_000 and info.trunk_parameters:
        text += f" (below 3B, {format_params(info.trunk_parameters)}: Auto leaves MTP off, it measured slower)"
    return text


def recommend(verdicts: list[Verdict]) -> tuple[Verdict | None, str]:
    """The quant to download and why, in words: the largest full GPU fit, else the largest that fits at all."""
    on_gpu = [v for v in verdicts if v.place == "gpu"]
    if on_gpu:
        best = max(on_gpu, key=lambda v: v.size)
        bigger = [v for v in verdicts if v.size > best.size and v.place in ("partial", "no")]
        why = f"{best.quant} is the largest quant that fits fully on the GPU ({best.reason})"
        if bigger:
            why += f"; {', '.join(v.quant for v in bigger)} would not fit on the GPU"
        return best, why
    partial = [v for v in verdicts if v.place == "partial"]
    memory = [v for v in verdicts if v.place == "memory"]
    if memory:
        best = max(memory, key=lambda v: v.size)
        return best, f"{best.quant} is the largest quant that fits in memory ({best.reason})"
    if partial:
        best = max(partial, key=lambda v: v.size)
        return best, (f"no quant fits fully on the GPU; {best.quant} is the largest that fits with part of it on the "
                      f"CPU ({best.reason})")
    known = [v for v in verdicts if v.place == "no"]
    if known:
        smallest = min(known, key=lambda v: v.size)
        return None, f"no quant fits this machine: even {smallest.quant} {smallest.reason}"
    return None, "no quant could be judged: " + "; ".join(f"{v.quant}: {v.reason}" for v in verdicts[:3])
