"""A server's lines on their way to a window: in batches, in order, bounded, and every line accounted for.

llama-server can print 100,000 lines in a second (``-lv 4`` at load, or a flood of warnings); no
window can paint that. Lines are gathered as the reader thread delivers them and handed over in
batches; between two batches at most ``max_chars`` of text wait, and the oldest lines beyond that
are dropped *and counted*. The rule a user can rely on: every line the server printed reaches the
window either as a line or as part of a batch's ``skipped`` count, never silently; the full text
is in the run's log file.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_PENDING_CHARS = 2_000_000  # between two batches: 20 MB/s of log text is more than any window can show


@dataclass(frozen=True)
class LogBatch:
    """Lines of one run, in the order the server printed them.

    ``skipped`` lines came before ``lines`` and were dropped on the way (too many, too fast);
    ``run`` says which launch they belong to, so a late batch of an earlier run is never shown
    as this one's.
    """

    run: int
    lines: tuple[str, ...]
    skipped: int = 0

    @property
    def count(self) -> int:
        """How many lines the server printed that this batch accounts for."""
        return len(self.lines) + self.skipped


class LogBatcher:
    """Collects lines from any thread; :meth:`flush` hands them to ``deliver`` in order.

    ``flush`` may be called from several threads (a timer, and the runner's threads before a
    state change so that the lines before it arrive first); taking the pending lines and
    delivering them happen under one lock, so batches are delivered in the order they were taken.
    """

    def __init__(self, deliver: Callable[[LogBatch], None], run: int = 0,
                 max_chars: int = MAX_PENDING_CHARS) -> None:
        self._deliver = deliver
        self._max_chars = max_chars
        self._pending: collections.deque[str] = collections.deque()
        self._chars = 0
        self._skipped = 0
        self._run = run
        self._lock = threading.Lock()  # guards the pending lines
        self._flush_lock = threading.Lock()  # one flush at a time: take + deliver stay in order
        self.last_flush = time.monotonic()

    def start_run(self, run: int) -> None:
        """A new launch: what is still pending belongs to the previous one and is delivered first."""
        self.flush()
        with self._lock:
            self._run = run

    def add(self, line: str) -> None:
        with self._lock:
            self._pending.append(line)
            self._chars += len(line)
            while self._chars > self._max_chars and len(self._pending) > 1:
                self._chars -= len(self._pending.popleft())
                self._skipped += 1

    def _take(self) -> LogBatch | None:
        with self._lock:
            if not self._pending and not self._skipped:
                return None
            batch = LogBatch(self._run, tuple(self._pending), self._skipped)
            self._pending, self._chars, self._skipped = collections.deque(), 0, 0
            return batch

    def flush(self) -> None:
        with self._flush_lock:
            self.last_flush = time.monotonic()
            batch = self._take()
            if batch is not None:
                self._deliver(batch)

    def flush_if_due(self, interval_s: float) -> None:
        """For a thread with no timer of its own (tune's): deliver when ``interval_s`` has passed."""
        if time.monotonic() - self.last_flush >= interval_s:
            self.flush()
