"""Say when speculation is losing, live: drafts that are rarely accepted cost more than they save.

On a real H100, Auto's MTP n=2 ran at 0.70x of "off" for a model whose MTP head's drafts were
never accepted, and nothing said so until ``tune`` was run. The running server's own numbers
(``timings`` of each reply, ``/metrics`` counters for other clients) tell: once a few hundred tokens
have been generated, the decode speed is compared with the measured speed without drafts when
tuning left one for this model, machine and build; otherwise the share of accepted drafts is
compared with a break-even threshold.

Break-even without a measurement: a step that drafts n tokens and has a share a of them accepted
yields 1 + a*n tokens for the price of roughly 1 + c*n plain steps, where c is what one drafted
token costs to make and verify; it pays when a > c. For MTP heads and small draft models, c sits
around 0.2-0.4 in the published numbers the planner cites (a 0.8B model lost 37% at n=2 on a B200),
so below :data:`BREAK_EVEN_ACCEPTANCE` of drafts accepted, drafting is taken to be a loss.
"""

from __future__ import annotations

from dataclasses import dataclass

from llama_launcher.core.server.speed_stats import Speed

BREAK_EVEN_ACCEPTANCE = 0.25
MIN_TOKENS = 300  # judge only after this many generated tokens: short replies are too noisy
SLOWER_THAN_OFF = 0.95  # measured "off" known: losing when the live speed is below 95% of it


@dataclass(frozen=True)
class Verdict:
    losing: bool
    message: str


class SpeculationWatch:
    """Adds up what the running server generated and drafted; :meth:`verdict` once there is enough."""

    def __init__(self, label: str, off_tps: float | None = None) -> None:
        self.label = label  # "MTP", "ngram-mod", "Draft model + ngram-mod"
        self.off_tps = off_tps
        self.predicted = 0
        self.drafted = 0
        self.accepted = 0
        self.weighted_tps = 0.0  # sum of tps x tokens, for a token-weighted mean speed

    def add(self, speed: Speed | None) -> None:
        if speed is None or not speed.predicted_n or speed.decode_tps is None:
            return
        self.predicted += speed.predicted_n
        self.weighted_tps += speed.decode_tps * speed.predicted_n
        self.drafted += speed.draft_n or 0
        self.accepted += speed.draft_accepted or 0

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    @property
    def mean_tps(self) -> float | None:
        return self.weighted_tps / self.predicted if self.predicted else None

    def verdict(self) -> Verdict | None:
        """None until enough tokens; then whether the running setting is slowing the model down."""
        if self.predicted < MIN_TOKENS:
            return None
        acc = self.acceptance
        share = f"{acc * 100:.0f}% of drafts accepted" if acc is not None else "no drafts were made"
        tps = self.mean_tps
        if self.off_tps and tps is not None:
            if tps < self.off_tps * SLOWER_THAN_OFF:
                return Verdict(True, f"{self.label} is slowing this model down: {tps:.1f} t/s against "
                                     f"{self.off_tps:.1f} t/s measured without it ({share}) — Tune to measure again")
            return Verdict(False, f"{self.label} pays off: {tps:.1f} t/s against {self.off_tps:.1f} t/s without it")
        if acc is None or acc < BREAK_EVEN_ACCEPTANCE:
            return Verdict(True, f"{self.label} is probably slowing this model down: {share} (below the "
                                 f"{BREAK_EVEN_ACCEPTANCE * 100:.0f}% it needs to break even) — Tune to measure")
        return Verdict(False, f"{self.label}: {share}")
