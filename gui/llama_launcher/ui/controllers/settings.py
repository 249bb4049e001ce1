"""The user's settings in memory, and their saving: off the GUI thread, once a burst of changes pauses.

Typing in a field or dragging a slider changes a setting many times a second; each change marks the
settings dirty, and one save runs 400 ms after the last (a launch and closing the window save at
once). The save itself (an atomic write with fsync, core/state/state_files.py) runs in the saver's
own thread on a copy, so a slow or full disk never stalls the window; what could not be saved
becomes a notice like any state file's.
"""

from __future__ import annotations

import copy

from PySide6.QtCore import QObject, QTimer

from llama_launcher.core.settings import store as settings_store
from llama_launcher.core.settings.store import AppSettings
from llama_launcher.ui.jobs import JobContext, JobRunner

SAVE_DELAY_MS = 400


class SettingsController(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings: AppSettings = settings_store.load()  # a small bounded file, read once at start
        self._saver = JobRunner("settings-saver", "saving your settings", self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SAVE_DELAY_MS)
        self._timer.timeout.connect(self.save_now)

    def changed(self) -> None:
        """Something changed: save once the changes pause."""
        self._timer.start()

    def save_now(self) -> None:
        self._timer.stop()
        snapshot = copy.deepcopy(self.settings)  # the saver writes this copy, whatever changes meanwhile

        def save(_ctx: JobContext) -> bool:
            return settings_store.save(snapshot)  # False: a notice says why (state_files)

        self._saver.submit(save)

    def shutdown(self) -> None:
        """Save what is pending and wait for the saver (closing the window)."""
        if self._timer.isActive():
            self.save_now()
        self._saver.shutdown(cancel=False)
