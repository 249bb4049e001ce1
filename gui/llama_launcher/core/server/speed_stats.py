"""Speeds the user can trust: from the server's own ``timings``, ``/metrics`` and log lines.

Never a wall-clock-derived speed when timings exist: wall clock mixes prompt processing, network
and UI time into "tokens per second" (Unsloth Studio fell back to it when ``usage`` was empty).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass
class Speed:
    decode_tps: float | None = None
    prompt_tps: float | None = None
    predicted_n: int | None = None
    prompt_n: int | None = None
    draft_n: int | None = None
    draft_accepted: int | None = None
    source: str = "timings"  # "timings", "metrics", "log"
    predicted_ms: float | None = None  # the server's decode time so far (per-token timings: cumulative)

    @property
    def acceptance(self) -> float | None:
        if self.draft_n:
            return (self.draft_accepted or 0) / self.draft_n
        return None


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _int(v: Any) -> int | None:
    n = _num(v)
    return int(n) if n is not None else None


def speed_from_timings(timings: dict[str, Any] | None) -> Speed | None:
    """decode = predicted_per_second, prompt = prompt_per_second, drafts = draft_n/draft_n_accepted."""
    if not isinstance(timings, dict):
        return None
    return Speed(
        decode_tps=_num(timings.get("predicted_per_second")),
        prompt_tps=_num(timings.get("prompt_per_second")),
        predicted_n=_int(timings.get("predicted_n")),
        prompt_n=_int(timings.get("prompt_n")),
        draft_n=_int(timings.get("draft_n")),
        draft_accepted=_int(timings.get("draft_n_accepted")),
        predicted_ms=_num(timings.get("predicted_ms")),
    )


def backfill_usage(response: dict[str, Any]) -> dict[str, Any] | None:
    """Fill ``usage`` from ``timings`` when the server left it missing or zero (seed PR #5582).

    completion_tokens <- predicted_n when missing or 0; prompt_tokens <- prompt_n when missing or 0;
    total_tokens = their sum. Modifies and returns the response's usage (None if neither exists).
    """
    timings = response.get("timings")
    usage = response.get("usage")
    if not isinstance(usage, dict):
        usage = None
    if not isinstance(timings, dict):
        return usage
    if usage is None:
        usage = {}
        response["usage"] = usage
    if not usage.get("completion_tokens"):
        predicted = _int(timings.get("predicted_n"))
        if predicted is not None:
            usage["completion_tokens"] = predicted
        if not usage.get("prompt_tokens"):
            prompt = _int(timings.get("prompt_n"))
            if prompt is not None:
                usage["prompt_tokens"] = prompt
        usage["total_tokens"] = int(usage.get("completion_tokens") or 0) + int(usage.get("prompt_tokens") or 0)
    return usage


# --- /metrics ------------------------------------------------------------------------------

_METRIC_LINE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>[-+0-9.eEinfNa]+)")
_LABEL = re.compile(r'\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*,?')
MAX_METRIC_LINES = 20_000  # a hostile or broken /metrics answer is read this far, no further


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {name: value}; the ``llamacpp:`` prefix is kept."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line.strip())
        if m and not m.group("labels"):  # a labelled series is not its name's total (parse_metric_series)
            try:
                out[m.group("name")] = float(m.group("value"))
            except ValueError:
                continue
    return out


def parse_metric_series(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> {name: [(labels, value), ...]}: the labelled series kept apart, as llama-server
    reports acceptance per draft position (``..._per_pos_total{position="0"}``)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines()[:MAX_METRIC_LINES]:
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line.strip())
        if not m:
            continue
        try:
            value = float(m.group("value"))
        except ValueError:
            continue
        labels = {lm.group("key"): lm.group("value") for lm in _LABEL.finditer(m.group("labels") or "")}
        out.setdefault(m.group("name"), []).append((labels, value))
    return out


def speed_from_metrics(before: dict[str, float], after: dict[str, float]) -> Speed | None:
    """Decode t/s over an interval from the counters' deltas; None when nothing was generated."""
    def delta(name: str) -> float:
        key = "llamacpp:" + name
        return after.get(key, 0.0) - before.get(key, 0.0)

    tokens = delta("tokens_predicted_total")
    seconds = delta("tokens_predicted_seconds_total")
    if tokens <= 0 or seconds <= 0:
        return None
    p_tokens, p_seconds = delta("prompt_tokens_total"), delta("prompt_seconds_total")
    drafted, accepted = delta("spec_decode_num_draft_tokens_total"), delta("spec_decode_num_accepted_tokens_total")
    return Speed(
        decode_tps=tokens / seconds,
        prompt_tps=(p_tokens / p_seconds) if p_tokens > 0 and p_seconds > 0 else None,
        predicted_n=int(tokens),
        prompt_n=int(p_tokens) if p_tokens > 0 else None,
        draft_n=int(drafted) if drafted > 0 else None,
        draft_accepted=int(accepted) if drafted > 0 else None,
        source="metrics",
    )


# --- log lines (servers without --metrics) --------------------------------------------------

_EVAL_LINE = re.compile(
    r"(?P<prompt>prompt )?eval time\s*=\s*(?P<ms>[0-9.]+) ms /\s*(?P<n>\d+) (?:tokens|runs).*?(?P<tps>[0-9.]+) tokens per second")
_DRAFT_LINE = re.compile(r"draft acceptance\s*=\s*(?P<rate>[0-9.]+)\s*\(\s*(?P<acc>\d+) accepted /\s*(?P<gen>\d+) generated\)")


class LogSpeedParser:
    """Feeds on server log lines; returns the request's Speed when its timing block arrives.

    llama-server prints ``prompt eval time``, then ``eval time``, then (when something was drafted)
    ``draft acceptance``; the Speed is returned at ``eval time`` and returned again, completed
    with the draft counts, when the acceptance line follows.
    """

    def __init__(self) -> None:
        self._pending = Speed(source="log")
        self._last: Speed | None = None

    def feed(self, line: str) -> Speed | None:
        m = _DRAFT_LINE.search(line)
        if m:
            target = self._last if self._last is not None else self._pending
            target.draft_accepted = int(m.group("acc"))
            target.draft_n = int(m.group("gen"))
            self._last = None
            return target if target.decode_tps is not None else None
        m = _EVAL_LINE.search(line)
        if not m:
            return None
        if m.group("prompt"):
            self._pending.prompt_tps = float(m.group("tps"))
            self._pending.prompt_n = int(m.group("n"))
            self._last = None
            return None
        self._pending.decode_tps = float(m.group("tps"))
        self._pending.predicted_n = int(m.group("n"))
        done, self._pending = self._pending, Speed(source="log")
        self._last = done
        return done
