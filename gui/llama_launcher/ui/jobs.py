"""The one contract for background work in the window: a job runs in its runner's thread, can be
cancelled at once from the GUI thread, and ends in exactly one of finished, failed or cancelled.

Each :class:`JobRunner` owns one thread (a plain QObject worker moved to a QThread, never a QThread
subclass with sleep loops) and runs its jobs there one after another. A job is a function of a
:class:`JobContext`; it reports progress through ``ctx.report`` and checks ``ctx.cancel`` (a
:class:`~llama_launcher.core.state.cancel.CancelToken` armed on the GUI thread before the job is
queued, so a Cancel clicked before the thread starts the job still counts). Every signal carries
the job's run id, so a late answer of an earlier job is recognised by whoever listens.

Exceptions become the ``failed`` signal here and only here: a core error marked
:class:`~llama_launcher.core.state.errors.UserFacing` is shown as its own line; anything else is an
unexpected failure, said with its type. A job whose token was cancelled ends as ``cancelled``,
whatever the work raised on the way out.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from llama_launcher.core.state.cancel import CancelToken
from llama_launcher.core.state.errors import UserFacing

Done = Callable[[Any], None]
Failed = Callable[[str], None]
_runs = itertools.count(1)  # run ids are unique across all runners
_not_ended: list[QThread] = []  # a thread that would not end in time is kept, never destroyed while running


def new_run() -> int:
    """A fresh run id (a launch or a tune also numbers its events with one)."""
    return next(_runs)


@dataclass
class JobContext:
    run: int
    cancel: CancelToken
    report: Callable[[Any], None]  # progress to the GUI thread (the runner's ``progress`` signal)


def failure_text(what: str, exc: BaseException) -> str:
    """One line for a failed job: a core error's own message, or the unexpected one with its type."""
    if isinstance(exc, UserFacing):
        return str(exc)
    return f"{what} failed unexpectedly ({type(exc).__name__}: {exc})"


class _Worker(QObject):
    def __init__(self, runner: JobRunner) -> None:
        super().__init__()
        self._runner = runner

    @Slot(int, object, object)
    def run(self, run: int, work: Callable[[JobContext], Any], token: CancelToken) -> None:
        r = self._runner
        ctx = JobContext(run, token, lambda event: r.progress.emit(run, event))
        try:
            result = work(ctx)
        except Exception as exc:  # noqa: BLE001 - the one place a job's exception becomes a signal
            r._ended(run)
            if token.cancelled:
                r.cancelled.emit(run)
            else:
                r.failed.emit(run, failure_text(r.what, exc))
            return
        r._ended(run)
        if token.cancelled:
            r.cancelled.emit(run)
        else:
            r.finished.emit(run, result)


class JobRunner(QObject):
    progress = Signal(int, object)  # run, what the job reported
    finished = Signal(int, object)  # run, the job's result
    failed = Signal(int, str)  # run, one line
    cancelled = Signal(int)  # run
    _queue = Signal(int, object, object)  # to the worker thread

    def __init__(self, name: str, what: str, parent: QObject | None = None) -> None:
        """``name`` names the thread; ``what`` is the work in words ("the download") for failures."""
        super().__init__(parent)
        self.what = what
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _Worker(self)
        self._worker.moveToThread(self._thread)
        self._queue.connect(self._worker.run, Qt.ConnectionType.QueuedConnection)
        self._tokens: dict[int, CancelToken] = {}
        self._callbacks: dict[int, tuple[Done | None, Failed | None]] = {}
        self.finished.connect(self._call_done)
        self.failed.connect(self._call_failed)
        self.cancelled.connect(lambda run: self._callbacks.pop(run, None))
        self._started = False  # the thread starts with the first job: a start-up that needs no job pays nothing
        self._closed = False  # after shutdown nothing more runs (a late event must not start a thread)

    def submit(self, work: Callable[[JobContext], Any], done: Done | None = None, failed: Failed | None = None,
               run: int | None = None) -> int:
        """Queue ``work``; returns its run id. Its token is armed now, on the caller's thread.

        ``done(result)`` or ``failed(line)`` is called on the GUI thread when this job ends that way
        (the runner's signals say it too, for listeners of every job)."""
        run = new_run() if run is None else run
        if self._closed:
            return run  # the window is closing: nothing new starts
        token = CancelToken()
        self._tokens[run] = token
        if done is not None or failed is not None:
            self._callbacks[run] = (done, failed)
        if not self._started:
            self._started = True
            self._thread.start()
        self._queue.emit(run, work, token)
        return run

    def _call_done(self, run: int, result: object) -> None:
        done, _ = self._callbacks.pop(run, (None, None))
        if done is not None:
            done(result)

    def _call_failed(self, run: int, why: str) -> None:
        _, failed = self._callbacks.pop(run, (None, None))
        if failed is not None:
            failed(why)

    def cancel(self, run: int | None = None) -> None:
        """Cancel one job (or every queued and running one) at once, from the GUI thread."""
        for r, token in list(self._tokens.items()):
            if run is None or r == run:
                token.cancel()

    @property
    def busy(self) -> bool:
        """A job is queued or running."""
        return bool(self._tokens)

    def _ended(self, run: int) -> None:
        self._tokens.pop(run, None)

    def shutdown(self, wait_ms: int = 15_000, cancel: bool = True) -> bool:
        """Cancel what runs (unless ``cancel`` is off: a save finishes), end the thread; whether it
        ended within ``wait_ms``."""
        self._closed = True
        if cancel:
            self.cancel()
        if not self._started:
            return True
        deadline = time.monotonic() + wait_ms / 1000
        while self._tokens and time.monotonic() < deadline:  # what was queued runs first (a last save)
            time.sleep(0.01)
        self._thread.quit()
        ended = self._thread.wait(wait_ms)
        if not ended:
            _not_ended.append(self._thread)  # destroying a running QThread aborts the whole process
        return ended
