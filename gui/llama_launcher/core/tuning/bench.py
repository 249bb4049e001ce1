"""``bench``: measure one speculative setting on this machine, in its own llama-server."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.methods import combo_key, parse_combo
from llama_launcher.core.speculative.pairing import DraftOption
from llama_launcher.core.state.command_line import shown_command_line
from llama_launcher.core.tuning.measure import (
    BenchError,
    Log,
    RunStats,
    measure,
    planned_session,
    prompt_text,
    settings_for,
)


@dataclass
class BenchResult:
    spec: str
    draft_n_max: int | None
    prompt: str
    argv: list[str]
    runs: list[RunStats] = field(default_factory=list)
    time_to_ready_s: float | None = None

    @property
    def decode_tps(self) -> float:
        return statistics.median(r.decode_tps for r in self.runs) if self.runs else 0.0

    @property
    def prompt_tps(self) -> float | None:
        vals = [r.prompt_tps for r in self.runs if r.prompt_tps is not None]
        return statistics.median(vals) if vals else None

    @property
    def drafted(self) -> int:
        return sum(r.draft_n for r in self.runs)

    @property
    def accepted(self) -> int:
        return sum(r.draft_accepted for r in self.runs)

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "draft_n_max": self.draft_n_max, "prompt": self.prompt, "argv": self.argv,
                "decode_tps": self.decode_tps, "prompt_tps": self.prompt_tps, "drafted": self.drafted,
                "accepted": self.accepted, "acceptance": self.acceptance, "time_to_ready_s": self.time_to_ready_s,
                "runs": [asdict(r) for r in self.runs]}


def bench(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, base: PlanSettings, spec: str,
          prompt: str = "code", tokens: int = 256, runs: int = 3, log: Log = lambda s: None,
          tuned: TunedChoice | None = None, drafts: list[DraftOption] | None = None,
          avoid: dict[str, str] | None = None) -> BenchResult:
    """Measure one setting: ``auto`` (what a launch would use) or methods such as ``mtp+ngram-mod``.

    The draft length is ``base.draft_n_max`` (None: the plan's default or the measured best); ``avoid``
    is what Auto leaves off for this model and binary (it stopped a launch from loading)."""
    try:
        methods = None if spec == "auto" else parse_combo(spec)
    except ValueError as exc:
        raise BenchError(str(exc)) from exc
    settings = settings_for(methods, base)
    text = prompt_text(prompt)
    with planned_session(binary, model, hw, caps, settings, tuned=tuned if methods is None else None,
                         drafts=drafts, avoid=avoid if methods is None else None) as (plan, session):
        log(f"server ready in {session.time_to_ready:.1f} s: {shown_command_line(plan.redacted_argv()[1:])}")
        label = combo_key(plan.speculative.methods) if methods is None else combo_key(methods)
        result = BenchResult(label, plan.speculative.draft_n_max, prompt, plan.redacted_argv(),
                             time_to_ready_s=session.time_to_ready)
        measure(session.runner.base_url, "Say hi.", 8, 1, base.api_key)  # warm-up
        result.runs = measure(session.runner.base_url, text, tokens, runs, base.api_key)
    return result
