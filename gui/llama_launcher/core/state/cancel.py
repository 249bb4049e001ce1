"""Cancelling work from any thread, at once.

A queued "please stop" to a busy worker thread waits behind the very job it should stop, so a
cancel is a flag set directly from the caller's thread, plus whatever must be stopped right away
(the llama-server a tune is measuring, cmake and its compilers) registered by the work itself.
The token quacks like a ``threading.Event`` (``is_set``) for code that only polls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Cancellable(Protocol):
    """What polling code needs of a cancel: a ``threading.Event`` or a :class:`CancelToken`."""

    def is_set(self) -> bool: ...


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._stoppers: list[Callable[[], object]] = []

    def cancel(self) -> None:
        """Set the flag and stop what is registered, without waiting for it (this returns at once)."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            stoppers = list(self._stoppers)
        for stop in stoppers:
            threading.Thread(target=stop, name="cancel", daemon=True).start()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def register(self, stop: Callable[[], object]) -> Callable[[], None]:
        """A cancel from now on also calls ``stop`` (at once if it was cancelled already); returns the
        call that takes it back (harmless twice)."""
        with self._lock:
            self._stoppers.append(stop)
            already = self._event.is_set()
        if already:
            stop()

        def unregister() -> None:
            with self._lock:
                if stop in self._stoppers:
                    self._stoppers.remove(stop)

        return unregister

    @contextmanager
    def stopping(self, stop: Callable[[], object]) -> Iterator[None]:
        """While the block runs, a cancel also calls ``stop``."""
        unregister = self.register(stop)
        try:
            yield
        finally:
            unregister()
