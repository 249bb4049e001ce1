"""Tune's decisions on recorded numbers: plain steps, the draft-length ladder, ties and margins.

The end-to-end proof (the real server, tune against the full sweep in the same run) is
``benchmarks/bench_tune.py`` and the tune tests in test_cli/test_gui; these pin the rules.
"""

from __future__ import annotations

from llama_launcher.core.tuning.measure import plain_steps
from llama_launcher.core.tuning.tune import (
    MIN_PLAIN_STEPS,
    Candidate,
    TuneRow,
    _baseline_from,
    _climb,
    _finish,
)


def row(methods: tuple[str, ...], tps: float, n: int | None = None, **kw) -> TuneRow:
    return TuneRow(Candidate(methods, n), {"code": tps, "prose": tps}, 0, 0, 192, **kw)


def test_plain_steps_are_steps_that_made_one_token_and_drafted_nothing() -> None:
    # (tokens so far, decode ms so far, drafted so far): a plain step every 30 ms, then an accepted
    # draft of 4 tokens (the same ms), then a rejected draft (one token, drafted count grows)
    samples = [(1, 0.0, 0), (2, 30.0, 0), (3, 60.0, 0), (4, 90.0, 0), (5, 120.0, 0),
               (6, 150.0, 4), (7, 150.0, 4), (8, 150.0, 4), (9, 150.0, 4),
               (10, 185.0, 8), (11, 215.0, 8), (12, 245.0, 8)]
    # steps: 30, 30, 30, 30 (plain), 30 (the accepted draft: 4 tokens), 35 (drafted), 30, 30 (plain)
    assert plain_steps(samples) == [30.0, 30.0, 30.0, 30.0]  # the first two of the reply are left out


def test_the_baseline_is_read_from_enough_plain_steps_only() -> None:
    ngram = row(("ngram-mod",), 60.0, plain_ms=[25.0] * MIN_PLAIN_STEPS)
    off = _baseline_from(ngram)
    assert off is not None and not off.candidate.methods and round(off.mean_tps, 6) == 40.0
    assert "ngram-mod" in off.label() and "without drafts" in off.label()
    assert _baseline_from(row(("ngram-mod",), 60.0, plain_ms=[25.0] * (MIN_PLAIN_STEPS - 1))) is None


def test_the_ladder_climbs_from_the_default_and_stops_when_it_turns() -> None:
    speeds = {1: 90.0, 2: 100.0, 3: 110.0, 4: 118.0, 6: 117.0}
    seen: list[int] = []

    def measure(n: int) -> TuneRow:
        seen.append(n)
        return row(("mtp",), speeds[n], n)

    rows = _climb((1, 2, 3, 4, 6), 3, measure, 0.01)
    assert seen == [3, 4, 6]  # longer drafts paid, then turned: nothing below the default
    assert max(rows, key=lambda r: r.mean_tps).candidate.draft_n_max == 4
    seen.clear()
    speeds.update({2: 115.0, 1: 112.0, 4: 100.0})
    _climb((1, 2, 3, 4, 6), 3, measure, 0.01)
    assert seen == [3, 4, 2, 1]  # the longer one lost: look below, until it turns


def test_within_the_noise_the_simpler_setting_is_kept_and_said() -> None:
    rows = [row((), 50.0, noise=0.02), row(("ngram-mod",), 100.0), row(("mtp", "ngram-mod"), 102.0, 3)]
    outcome = _finish(rows, 0.02, 3, 0.0)
    assert outcome.choice.methods == ("ngram-mod",) and "within the noise" in outcome.choice.note
    assert abs(outcome.choice.speedup - 2.0) < 1e-9 and outcome.choice.margin > 0
    clear = _finish([row((), 50.0), row(("ngram-mod",), 100.0), row(("mtp", "ngram-mod"), 120.0, 3)], 0.02, 3, 0.0)
    assert clear.choice.methods == ("mtp", "ngram-mod") and clear.choice.note == ""
