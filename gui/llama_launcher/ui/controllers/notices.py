"""What the window's banner says: one notice per fact, each replaced when its fact changes.

A failure, a taken port, a refused binary, a state file that could not be read: each has a key, and
a new notice with the same key replaces the old one instead of piling up beside it ("the same news
three times" was a complaint). State-file notices (core/state/state_files.py collects them from any
thread) are drained here twice a second and added as facts of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from llama_launcher.core.state.state_files import drain_notices
from llama_launcher.core.state.words import sentence

POLL_MS = 500


@dataclass(frozen=True)
class Notice:
    key: str  # the fact it is about: "server", "port", "binary", "tune", "lan", "file:<text>", ...
    text: str
    error: bool = False
    action: tuple[str, Callable[[], None]] | None = None  # a one-click way out: (label, what it does)
    tab: str = ""  # the tab that says this fact in full: while it is shown, the banner leaves the fact to it


class NoticeCenter(QObject):
    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._notices: dict[str, Notice] = {}  # in the order they came (a replaced one moves last)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll_files)
        self._timer.start()

    @property
    def notices(self) -> list[Notice]:
        """Errors first, then the rest; the newest of each first."""
        items = list(reversed(self._notices.values()))
        return [n for n in items if n.error] + [n for n in items if not n.error]

    def show(self, key: str, text: str, error: bool = False,
             action: tuple[str, Callable[[], None]] | None = None, tab: str = "") -> None:
        self._notices.pop(key, None)
        self._notices[key] = Notice(key, sentence(text), error, action, tab)
        self.changed.emit()

    def clear(self, *keys: str) -> None:
        """Forget these facts (none given: all of them, the banner's Dismiss)."""
        before = len(self._notices)
        if keys:
            for k in keys:
                self._notices.pop(k, None)
        else:
            self._notices.clear()
        if len(self._notices) != before:
            self.changed.emit()

    def poll_files(self) -> list[str]:
        """Show what the state files had to say since the last poll (each note its own fact)."""
        notes = drain_notices()
        for text in notes:
            self._notices.pop("file:" + text, None)
            self._notices["file:" + text] = Notice("file:" + text, sentence(text))
        if notes:
            self.changed.emit()
        return notes
