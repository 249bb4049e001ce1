"""Fallback once: a start that speculation crashed is retried once without it, and said so.

An architecture llama.cpp's MTP does not support yet, a head that does not fit its target, a head
file that is incomplete: the server dies while loading or warming up, with speculation on. Unsloth
Studio retries such a start once without speculation; the launcher does the same, under a rule it
can defend:

- the server never became ready (it died in load or warm-up, not in the middle of serving);
- the speculation was the launcher's (the user's own ``--spec-type`` is theirs to change);
- the log points at speculation (``failure_reasons.speculation_evidence``: a failing line names MTP,
  its NextN tensors, a draft model or head, or a speculative flag).

The retry runs with the launcher's speculation off, once. What Auto then remembers, for that model
and binary until the binary changes (``speculative.fallback_store``), is what the log points at
(every engaged method when it does not say which): a crash in MTP does not cost ngram-mod at the
next launch. The message says what happened and what was turned off.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from llama_launcher.core.plan.planner import Plan
from llama_launcher.core.server.failure_reasons import FailureReason, killing_signal, speculation_evidence
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.methods import BY_ID, SpecMode, SpecSource, combo_label

# failures that speculation cannot have caused: a retry without it would fail the same way
NOT_SPECULATION = {"port_in_use", "binary_missing", "binary_not_executable", "spawn_failed", "model_missing",
                   "not_gguf", "unknown_argument"}
_MTP_WORDS = re.compile(r"\bMTP\b|nextn|eh_proj", re.I)
_HEAD_WORDS = {"eagle3": re.compile(r"eagle3", re.I), "dflash": re.compile(r"dflash", re.I),
               "dspark": re.compile(r"dspark|markov", re.I)}


@dataclass(frozen=True)
class Fallback:
    methods: tuple[str, ...]  # what the retry turns off: the launcher's speculation, all of it
    blamed: tuple[str, ...]  # what the log points at (what Auto remembers)
    reason: str  # the failure, one line
    evidence: list[str] = field(default_factory=list)
    log: str | None = None

    @property
    def label(self) -> str:
        return combo_label(self.blamed)

    def message(self) -> str:
        """'MTP stopped the server from loading: started without it. Log: …' (the window and serve say it)."""
        others = [m for m in self.methods if m not in self.blamed]
        also = f" (and without {combo_label(others)})" if others else ""
        log = f" Log: {self.log}" if self.log else ""
        return f"{self.label} stopped the server from loading: started without it{also}.{log}"


def _blamed(plan: Plan, evidence: list[str]) -> tuple[str, ...]:
    """The engaged methods the evidence names; all of them when it names none in particular."""
    spec = plan.speculative
    engaged = list(spec.methods)
    text = "\n".join(evidence)
    named: set[str] = set()
    if "mtp" in engaged and _MTP_WORDS.search(text):
        named.add("mtp")
    for mid, words in _HEAD_WORDS.items():
        if mid in engaged and words.search(text):
            named.add(mid)
    draft_file = spec.draft.path if spec.draft is not None else None
    if draft_file and (draft_file in text or Path(draft_file).name in text or "draft model" in text.lower()):
        named.add(next(m for m in engaged if BY_ID[m].kind == "model"))
    for mid in engaged:  # a flag of a method's own (--spec-ngram-mod-n-max, --spec-draft-p-min)
        flags = [f for f in plan.shown_flags() if f.group == "speculative" and f.args and f.args[0] in text]
        if any(mid in f.reason or BY_ID[mid].label in f.reason for f in flags):
            named.add(mid)
    return tuple(m for m in engaged if m in named) or tuple(engaged)


def fallback_for(plan: Plan, reached_ready: bool, reason: FailureReason | None, lines: list[str],
                 returncode: int | None = None, log: Path | str | None = None) -> Fallback | None:
    """The retry the rule allows after a failed start (module docstring), or None."""
    spec = plan.speculative
    if reached_ready or not spec.methods or spec.source not in (SpecSource.RULES, SpecSource.MEASURED):
        return None
    if reason is not None and reason.code in NOT_SPECULATION:
        return None
    crashed = killing_signal(returncode) is not None or (reason is not None and reason.code == "signal")
    evidence = speculation_evidence(lines, crashed)
    if not evidence:
        return None
    why = reason.message if reason is not None else evidence[0]
    return Fallback(tuple(spec.methods), _blamed(plan, evidence), why, evidence, str(log) if log else None)


def without(settings: PlanSettings, fallback: Fallback) -> PlanSettings:
    """The settings of the retry: every method the launcher had engaged Off."""
    modes = dict(settings.modes)
    modes.update({m: SpecMode.OFF for m in fallback.methods})
    return dataclasses.replace(settings, modes=modes)
