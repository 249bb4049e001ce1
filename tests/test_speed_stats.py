"""Speeds from timings, the usage backfill, /metrics deltas and log lines (recorded samples)."""

from __future__ import annotations

from llama_launcher.core.server.chat_client import iter_sse
from llama_launcher.core.server.speed_stats import (
    LogSpeedParser,
    backfill_usage,
    parse_metrics,
    speed_from_metrics,
    speed_from_timings,
)

TIMINGS = {"cache_n": 0, "prompt_n": 12, "prompt_ms": 5.051, "prompt_per_token_ms": 0.42, "prompt_per_second": 2375.77,
           "predicted_n": 256, "predicted_ms": 71.162, "predicted_per_token_ms": 0.279, "predicted_per_second": 3583.37,
           "draft_n": 233, "draft_n_accepted": 230}


def test_speed_from_timings() -> None:
    s = speed_from_timings(TIMINGS)
    assert s is not None
    assert s.decode_tps == 3583.37 and s.prompt_tps == 2375.77
    assert (s.draft_n, s.draft_accepted) == (233, 230) and abs(s.acceptance - 230 / 233) < 1e-9
    no_draft = speed_from_timings({"predicted_per_second": 60.0, "predicted_n": 10})
    assert no_draft.acceptance is None and no_draft.draft_n is None
    assert speed_from_timings(None) is None


def test_backfill_fills_missing_or_zero_usage() -> None:
    r = {"usage": {"completion_tokens": 0, "prompt_tokens": 0, "total_tokens": 0}, "timings": TIMINGS}
    assert backfill_usage(r) == {"completion_tokens": 256, "prompt_tokens": 12, "total_tokens": 268}
    r = {"timings": TIMINGS}
    assert backfill_usage(r) == {"completion_tokens": 256, "prompt_tokens": 12, "total_tokens": 268}
    r = {"usage": {"completion_tokens": 0, "prompt_tokens": 7}, "timings": TIMINGS}
    assert backfill_usage(r) == {"completion_tokens": 256, "prompt_tokens": 7, "total_tokens": 263}


def test_backfill_leaves_real_usage_and_missing_timings_alone() -> None:
    real = {"completion_tokens": 5, "prompt_tokens": 3, "total_tokens": 8}
    assert backfill_usage({"usage": dict(real), "timings": TIMINGS}) == real
    assert backfill_usage({"usage": {"completion_tokens": 0}}) == {"completion_tokens": 0}
    assert backfill_usage({}) is None


METRICS_1 = """# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 100
llamacpp:prompt_seconds_total 1.0
llamacpp:tokens_predicted_total 500
llamacpp:tokens_predicted_seconds_total 10
llamacpp:spec_decode_num_draft_tokens_total 40
llamacpp:spec_decode_num_accepted_tokens_total 30
llamacpp:requests_processing 0
"""
METRICS_2 = METRICS_1.replace(" 500", " 800").replace("seconds_total 10", "seconds_total 14").replace(
    "tokens_total 40", "tokens_total 140").replace("tokens_total 30", "tokens_total 110").replace(
    "prompt_tokens_total 100", "prompt_tokens_total 300").replace("prompt_seconds_total 1.0", "prompt_seconds_total 2.0")


def test_metrics_deltas() -> None:
    a, b = parse_metrics(METRICS_1), parse_metrics(METRICS_2)
    assert a["llamacpp:tokens_predicted_total"] == 500
    s = speed_from_metrics(a, b)
    assert s is not None and s.source == "metrics"
    assert s.decode_tps == 300 / 4 and s.prompt_tps == 200.0 and s.predicted_n == 300
    assert (s.draft_n, s.draft_accepted) == (100, 80)
    assert speed_from_metrics(a, a) is None  # nothing generated in the interval


LOG = """slot print_timing: id  3 | task 0 | prompt eval time =       5.05 ms /    12 tokens (    0.42 ms per token,  2375.77 tokens per second)
slot print_timing: id  3 | task 0 |        eval time =      71.16 ms /   256 tokens (    0.28 ms per token,  3583.37 tokens per second)
slot print_timing: id  3 | task 0 | draft acceptance = 1.00000 (  233 accepted /   233 generated), mean len = 11.59
slot print_timing: id  3 | task 1 | prompt eval time =      15.00 ms /    30 tokens (    0.50 ms per token,  2000.00 tokens per second)
slot print_timing: id  3 | task 1 |        eval time =    1000.00 ms /    60 tokens (   16.67 ms per token,    60.00 tokens per second)
"""


def test_log_lines() -> None:
    p = LogSpeedParser()
    out = [s for s in (p.feed(line) for line in LOG.splitlines()) if s is not None]
    assert out[0].decode_tps == 3583.37 and out[0].prompt_tps == 2375.77
    assert out[1] is out[0] and out[1].draft_n == 233 and out[1].draft_accepted == 233
    assert out[2].decode_tps == 60.0 and out[2].prompt_n == 30 and out[2].draft_n is None


def test_sse_stream_decoding() -> None:
    lines = [b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n', b"\n", b": keep-alive\n",
             b'data: {"choices":[{"delta":{}}],"timings":{"predicted_per_second":50.5,"predicted_n":2}}\n',
             b"data: [DONE]\n", b'data: {"never": 1}\n']
    events = list(iter_sse(iter(lines)))
    assert len(events) == 2 and events[1]["timings"]["predicted_per_second"] == 50.5
