"""The server's replies as the Live panel shows them: one row per reply, every number the server's own.

Two sources. This app's Try it streams with per-token ``timings``; every other program's traffic is
read from ``/metrics`` counters. llama-server moves those counters at two different moments: the
prompt's when the prompt has been processed (``metrics_flush_prompt``, at the next idle turn), the
reply's when the request ends (``metrics_on_prediction``, as its slot is reset). One outside request
therefore usually moves the prompt counters in one poll and the decode counters in a later one; a
delta was taken as a reply only when tokens were predicted, so the prompt's half was dropped and
the panel showed "–" for a curl request whose timings said ``prompt_per_second: 172.1``.
:class:`OtherClients` keeps the prompt's share until its reply's decode arrives and joins them.

The chart draws one bar per reply (its decode t/s) and says how many replies it shows and over
what time: a line through per-token points claimed spans it had not measured ("last 0 s" for one
request; "last 2 s" after an 8-second reply, once the point buffer had dropped its oldest points).
The table under it is llama-swap's activity table: when, which client, prompt and reply tokens with
their speeds, drafts accepted.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass

from llama_launcher.core.server.speed_stats import Speed

KEEP_REPLIES = 60
COLUMNS = ("Time", "Client", "Prompt tokens", "Reply tokens", "Drafts accepted")
TRY_IT, OTHERS = "Try it", "other clients"


def _delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    key = "llamacpp:" + name
    return after.get(key, 0.0) - before.get(key, 0.0)


class OtherClients:
    """/metrics snapshots in, replies out: a prompt's counters held until its reply's decode arrives."""

    def __init__(self) -> None:
        self.previous: dict[str, float] | None = None
        self._prompt_tokens = 0.0
        self._prompt_seconds = 0.0
        self.busy = 0  # requests the server is processing now (its gauge): a reply on its way

    def in_progress(self) -> str:
        """The Live panel's line while other programs' replies are being written ('' when none is)."""
        if self.busy <= 0:
            return ""
        what = "a reply" if self.busy == 1 else f"{self.busy} replies"
        return f"other clients: {what} on the way; its speed shows when it ends"

    def reset(self) -> None:
        self.previous, self._prompt_tokens, self._prompt_seconds = None, 0.0, 0.0

    def update(self, now: dict[str, float]) -> Speed | None:
        """The traffic since the last snapshot, as one reply, once its decode has been counted (else None)."""
        before, self.previous = self.previous, now
        busy = now.get("llamacpp:requests_processing", 0.0)
        self.busy = int(busy) if busy == busy and busy > 0 else 0  # NaN or negative: none
        if before is None:
            return None
        if any(now[k] < before.get(k, 0.0) for k in now if k.endswith("_total")):  # counters went back: a new server
            self._prompt_tokens = self._prompt_seconds = 0.0
            return None
        p_tokens, p_seconds = _delta(before, now, "prompt_tokens_total"), _delta(before, now, "prompt_seconds_total")
        if p_tokens > 0 and p_seconds > 0:
            self._prompt_tokens += p_tokens
            self._prompt_seconds += p_seconds
        tokens, seconds = _delta(before, now, "tokens_predicted_total"), _delta(before, now, "tokens_predicted_seconds_total")
        if tokens <= 0 or seconds <= 0:
            return None
        drafted = _delta(before, now, "spec_decode_num_draft_tokens_total")
        accepted = _delta(before, now, "spec_decode_num_accepted_tokens_total")
        prompt_n, prompt_s = self._prompt_tokens, self._prompt_seconds
        self._prompt_tokens = self._prompt_seconds = 0.0
        return Speed(decode_tps=tokens / seconds,
                     prompt_tps=prompt_n / prompt_s if prompt_n > 0 and prompt_s > 0 else None,
                     predicted_n=int(tokens), prompt_n=int(prompt_n) if prompt_n > 0 else None,
                     draft_n=int(drafted) if drafted > 0 else None, draft_accepted=int(accepted) if drafted > 0 else None,
                     source="metrics", predicted_ms=seconds * 1000)


@dataclass
class Reply:
    source: str  # TRY_IT or OTHERS
    at: float  # when it ended (or, while it streams, its latest token), time.time()
    speed: Speed
    streaming: bool = False

    def row(self) -> list[str]:
        """Time, client, prompt and reply (tokens · t/s), drafts: the activity table's columns (COLUMNS)."""
        s = self.speed
        prompt = "–" if s.prompt_n is None else f"{s.prompt_n:,}" + (
            f" · {s.prompt_tps:,.1f} t/s" if s.prompt_tps is not None else "")
        reply = "–" if s.predicted_n is None else f"{s.predicted_n:,}" + (
            f" · {s.decode_tps:,.1f} t/s" if s.decode_tps is not None else "")
        if self.streaming:
            reply += " (streaming)"
        acc = s.acceptance
        drafts = "none drafted" if acc is None else f"{acc * 100:.0f}% of {s.draft_n:,}"
        return [time.strftime("%H:%M:%S", time.localtime(self.at)), self.source, prompt, reply, drafts]


def _ago(seconds: float) -> str:
    if seconds < 5:
        return "just now"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def _span(seconds: float) -> str:
    return f"{max(seconds, 1):.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 \
        else f"{seconds / 3600:.1f} h"


class Activity:
    """The latest replies, newest last; Try it's streaming reply grows in place until it ends."""

    def __init__(self, keep: int = KEEP_REPLIES) -> None:
        self.replies: collections.deque[Reply] = collections.deque(maxlen=keep)

    def clear(self) -> None:
        self.replies.clear()

    def add(self, source: str, speed: Speed, at: float | None = None, streaming: bool = False) -> Reply:
        last = self.replies[-1] if self.replies else None
        at = time.time() if at is None else at
        if last is not None and last.streaming and last.source == source:  # the streaming reply, grown or done
            last.speed, last.at, last.streaming = speed, at, streaming
            return last
        reply = Reply(source, at, speed, streaming)
        self.replies.append(reply)
        return reply

    def end_streaming(self) -> None:
        """A streamed reply ended without final numbers (an error): its row keeps what it had."""
        if self.replies and self.replies[-1].streaming:
            self.replies[-1].streaming = False

    def bars(self) -> list[tuple[str, float]]:
        """(source, decode t/s) per reply with a decode speed, oldest first: the chart's bars."""
        return [(r.source, r.speed.decode_tps) for r in self.replies if r.speed.decode_tps is not None]

    def caption(self, now: float | None = None) -> str:
        """What the chart shows, in words that are true: how many replies, over what time."""
        now = time.time() if now is None else now
        shown = [r for r in self.replies if r.speed.decode_tps is not None]
        if not shown:
            return "no replies yet"
        if len(shown) == 1:
            r = shown[0]
            return "1 reply, streaming now" if r.streaming else f"1 reply, {_ago(now - r.at)}"
        return f"the last {len(shown)} replies, over {_span(shown[-1].at - shown[0].at)}" + \
            ("" if shown[-1].streaming else f" (the latest {_ago(now - shown[-1].at)})")

    def rows(self) -> list[list[str]]:
        """The activity table, newest first."""
        return [r.row() for r in reversed(self.replies)]
