"""Acceptance per draft position, from llama-server's own ``/metrics``, and the draft length it implies.

One acceptance figure hides why a draft is too long: with 4 tokens drafted per step, 90% of first
tokens accepted and 10% of fourth ones, the fourth costs a drafted token nearly every step for
little. llama-server counts, per draft position, the verification steps in which that position was
accepted (``llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="i"}``, b11434
``tools/server/server-task.cpp``) against ``llamacpp:spec_decode_num_drafts_total`` steps; the same
ratio its log prints as "acc per pos". A position accepted in fewer steps than the break-even share
(``health.BREAK_EVEN_ACCEPTANCE``: what a drafted token costs to make and verify) does not pay for
itself, and neither does any after it: the draft length just before it may be faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llama_launcher.core.server.speed_stats import parse_metric_series
from llama_launcher.core.speculative.health import BREAK_EVEN_ACCEPTANCE

PER_POSITION = "llamacpp:spec_decode_num_accepted_tokens_per_pos_total"
STEPS = "llamacpp:spec_decode_num_drafts_total"
DRAFTED = "llamacpp:spec_decode_num_draft_tokens_total"
ACCEPTED = "llamacpp:spec_decode_num_accepted_tokens_total"
MAX_POSITIONS = 1024  # llama.cpp's longest draft (ngram n-max 1024): a hostile answer cannot claim more
MIN_STEPS = 20  # advise only after this many verification steps: a few replies are too noisy
SHOWN_POSITIONS = 8  # the live panel shows this many; ngram-mod drafts up to 64


@dataclass(frozen=True)
class DraftPositions:
    accepted: tuple[int, ...]  # per position (index 0 = the first drafted token): steps in which it was accepted
    steps: int  # verification steps
    drafted: int = 0
    accepted_total: int = 0

    @property
    def rates(self) -> list[float]:
        return [a / self.steps if self.steps else 0.0 for a in self.accepted]

    def since(self, earlier: DraftPositions | None) -> DraftPositions:
        """What happened between two readings (counters only grow; a restarted server starts again)."""
        if earlier is None or self.steps < earlier.steps:
            return self
        n = len(self.accepted)
        before = list(earlier.accepted) + [0] * max(n - len(earlier.accepted), 0)
        return DraftPositions(tuple(max(a - b, 0) for a, b in zip(self.accepted, before, strict=False)),
                              self.steps - earlier.steps, max(self.drafted - earlier.drafted, 0),
                              max(self.accepted_total - earlier.accepted_total, 0))

    def rarely_accepted_from(self, draft_n_max: int | None = None) -> int | None:
        """The first position (1-based) that, with every later one, is accepted in fewer steps than break-even."""
        rates = self.rates[:draft_n_max] if draft_n_max else self.rates
        if self.steps < MIN_STEPS or not rates:
            return None
        k = len(rates)
        while k > 0 and rates[k - 1] < BREAK_EVEN_ACCEPTANCE:
            k -= 1
        return k + 1 if k < len(rates) else None

    def advice(self, draft_n_max: int | None) -> str | None:
        """'positions 3–4 are rarely accepted: a draft length of 2 may be faster', or None.

        Only for a model drafter's draft length (``draft_n_max``; None: no advice): ngram-mod's long
        drafts are cut by its own n-min/n-max, not by a draft length."""
        if not draft_n_max:
            return None
        first = self.rarely_accepted_from(draft_n_max)
        if first is None:
            return None
        last = min(len(self.accepted), draft_n_max or len(self.accepted))
        if first == 1:
            return (f"even the first drafted token is accepted in only {self.rates[0] * 100:.0f}% of steps: "
                    "speculation is probably slowing this model down")
        where = f"position {first} is" if first == last else f"positions {first}–{last} are"
        return f"{where} rarely accepted: a draft length of {first - 1} may be faster"

    def compact(self, draft_n_max: int | None = None) -> str:
        """'1: 67%  2: 38%  3: 25%  4: 13%' (the first few positions; the rest counted). Positions past the
        last one ever accepted are said once ("none accepted past 2"), not as a row of 0% up to
        ngram-mod's 64."""
        rates = self.rates[:draft_n_max] if draft_n_max else self.rates
        last = max((i for i, r in enumerate(rates) if r > 0), default=-1)
        tail = f"  (none accepted past {last + 1})" if last >= 0 and last + 1 < len(rates) else ""
        if last >= 0:
            rates = rates[: last + 1]
        shown = "  ".join(f"{i + 1}: {r * 100:.0f}%" for i, r in enumerate(rates[:SHOWN_POSITIONS]))
        more = f"  (+{len(rates) - SHOWN_POSITIONS} more)" if len(rates) > SHOWN_POSITIONS else ""
        return shown + more + tail

    def steps_words(self) -> str:
        return f"{self.steps:,} step" + ("" if self.steps == 1 else "s")

    def to_dict(self, draft_n_max: int | None = None) -> dict[str, Any]:
        return {"steps": self.steps, "drafted": self.drafted, "accepted": self.accepted_total,
                "positions": [{"position": i + 1, "accepted_steps": a, "rate": round(r, 4)}
                              for i, (a, r) in enumerate(zip(self.accepted, self.rates, strict=True))],
                "advice": self.advice(draft_n_max)}


def positions_from_metrics(text: str) -> DraftPositions | None:
    """The per-position counters of one ``/metrics`` answer (labels kept), or None when it has none."""
    series = parse_metric_series(text)
    per_pos: dict[int, int] = {}
    for labels, value in series.get(PER_POSITION, []):
        pos = labels.get("position", "")
        if pos.isdigit() and int(pos) < MAX_POSITIONS and value >= 0 and value == value:  # NaN != NaN
            per_pos[int(pos)] = int(value)
    if not per_pos:
        return None

    def total(name: str) -> int:
        values = [v for labels, v in series.get(name, []) if not labels and v >= 0 and v == v]
        return int(values[-1]) if values and values[-1] < 1 << 62 else 0

    accepted = tuple(per_pos.get(i, 0) for i in range(max(per_pos) + 1))
    return DraftPositions(accepted, total(STEPS), total(DRAFTED), total(ACCEPTED))
