"""Acceptance per draft position (issue 22, item 6), from /metrics answers recorded from b11434.

tests/fixtures/metrics/record.py says how each answer was recorded (the real server, a split MTP pair
from tests/synthetic_mtp.py, a draft length of 4).
"""

from __future__ import annotations

from pathlib import Path

from llama_launcher.core.server.speed_stats import parse_metric_series, parse_metrics
from llama_launcher.core.speculative.acceptance import DraftPositions, positions_from_metrics

METRICS = Path(__file__).parent / "fixtures" / "metrics"
NOISY = (METRICS / "b11434-mtp-head-n4-noisy.metrics.txt").read_text()
RIGHT = (METRICS / "b11434-mtp-head-n4.metrics.txt").read_text()


def test_the_labelled_series_are_kept_apart() -> None:
    series = parse_metric_series(NOISY)
    per_pos = series["llamacpp:spec_decode_num_accepted_tokens_per_pos_total"]
    assert per_pos == [({"position": "0"}, 35.0), ({"position": "1"}, 20.0), ({"position": "2"}, 13.0),
                       ({"position": "3"}, 7.0)]
    # the unlabelled reading never mistakes a position for a total
    assert "llamacpp:spec_decode_num_accepted_tokens_per_pos_total" not in parse_metrics(NOISY)
    assert parse_metrics(NOISY)["llamacpp:spec_decode_num_accepted_tokens_total"] == 75


def test_positions_and_the_advice_they_imply() -> None:
    p = positions_from_metrics(NOISY)
    assert p == DraftPositions((35, 20, 13, 7), 52, 203, 75)
    assert [round(r, 3) for r in p.rates] == [0.673, 0.385, 0.25, 0.135]
    assert p.compact(4) == "1: 67%  2: 38%  3: 25%  4: 13%" and p.steps_words() == "52 steps"
    # ngram-mod drafts up to 64: positions never accepted are said once, not as a row of 0%
    one = DraftPositions((1, 1) + (0,) * 62, 1, 2, 2)
    assert one.compact() == "1: 100%  2: 100%  (none accepted past 2)" and one.steps_words() == "1 step"
    assert p.advice(4) == "position 4 is rarely accepted: a draft length of 3 may be faster"
    d = p.to_dict(4)
    assert d["positions"][3] == {"position": 4, "accepted_steps": 7, "rate": 0.1346} and d["steps"] == 52
    good = positions_from_metrics(RIGHT)
    assert good is not None and good.advice(4) is None and good.rates[0] == 1.0


def test_advice_for_several_positions_and_for_none_at_all() -> None:
    two_bad = DraftPositions((90, 60, 10, 5), 100)
    assert two_bad.advice(4) == "positions 3–4 are rarely accepted: a draft length of 2 may be faster"
    assert two_bad.advice(2) is None  # only the positions this draft length makes count
    hopeless = DraftPositions((10, 2, 0), 100)
    assert "even the first drafted token is accepted in only 10% of steps" in (hopeless.advice(3) or "")
    assert DraftPositions((1, 0, 0), 5).advice(3) is None  # too few steps to tell
    assert two_bad.advice(None) is None  # no model drafter: ngram-mod's drafts are cut by its own knobs


def test_readings_between_two_answers() -> None:
    before = DraftPositions((10, 5), 20, 40, 15)
    after = DraftPositions((40, 20, 3), 80, 200, 63)
    assert after.since(before) == DraftPositions((30, 15, 3), 60, 160, 48)
    assert before.since(after) == before  # a restarted server: counters started again


def test_no_per_position_series_and_hostile_answers() -> None:
    assert positions_from_metrics("llamacpp:tokens_predicted_total 10\n") is None
    assert positions_from_metrics("") is None
    hostile = ("llamacpp:spec_decode_num_drafts_total NaN\n"
               'llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="999999999"} 5\n'
               'llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="-1"} 5\n'
               'llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="x"} 5\n'
               'llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="1"} NaN\n'
               'llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="0", other="a\\"b"} 3\n')
    p = positions_from_metrics(hostile)
    assert p is not None and p.accepted == (3,) and p.steps == 0 and p.rates == [0.0] and p.advice(3) is None
    flood = "\n".join(f'llamacpp:spec_decode_num_accepted_tokens_per_pos_total{{position="{i}"}} 1'
                      for i in range(200_000))
    p = positions_from_metrics(flood)
    assert p is not None and len(p.accepted) <= 1024  # bounded by llama.cpp's longest draft
