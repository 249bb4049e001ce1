"""What the window tests share: opening the real window on saved settings, reading its preview."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from llama_launcher.core.server.process import ServerState
from llama_launcher.core.settings import store as settings_store
from llama_launcher.core.settings.launch import AUTO_PORT, ModelSettings
from llama_launcher.ui.main_window import MainWindow

WAIT = 60_000


def flat(w: MainWindow) -> list[str]:
    """The command preview as one argv."""
    return [a for args in w.launch_panel.preview.preview_args() for a in args]


def value_after(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def open_window(qtbot, binary: Path | str, folder: Path, port: int = AUTO_PORT, lan: bool = False,
                models: dict[str, ModelSettings] | None = None, save: bool = True) -> MainWindow:
    """The window as a user opens it: settings saved first (unless `save` is off), shown, planned."""
    if save:
        s = settings_store.AppSettings(folders=[str(folder)], binary=str(binary), port=port, lan=lan)
        for path, ms in (models or {}).items():
            s.set_model(path, ms)
        settings_store.save(s)
    w = MainWindow()
    qtbot.addWidget(w, before_close_func=lambda w: w.shutdown())  # a failed test must not leave a dialog up
    w.show()
    qtbot.waitUntil(lambda: w.planner.plan is not None or (w.planner.model is not None and w.planner.plan_error != ""), timeout=WAIT)
    return w


def answer_next_dialog(button: str, timeout_s: float = 30.0) -> list[str]:
    """Click ``button`` in the next message box once it opens, as a user answering it; returns [its text]."""
    deadline = time.monotonic() + timeout_s
    said: list[str] = []

    def look() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            for b in box.buttons():
                if b.text() == button:
                    said.append(box.text())
                    b.click()
                    return
        if time.monotonic() < deadline:
            QTimer.singleShot(20, look)

    QTimer.singleShot(0, look)
    return said


def start_tune(w: MainWindow) -> list[str]:
    """Tune, as a user starts it: the button, then "Start tuning" in the question it asks (its text returned)."""
    said = answer_next_dialog("Start tuning")
    w.launch_panel.tune.button.click()
    return said


def wait_ready(qtbot, w: MainWindow, timeout: int = WAIT) -> None:
    qtbot.waitUntil(lambda: w.server.state in (ServerState.READY, ServerState.FAILED), timeout=timeout)
    assert w.server.state is ServerState.READY, w.banner.text()


def send_prompt(qtbot, w: MainWindow, text: str, max_tokens: int | None = None, timeout: int = 120_000):
    """Try it, as a user types and sends: the finished reply (`w.chat.last`) once the stream ended."""
    if max_tokens is not None:
        w.live.max_tokens.setValue(max_tokens)
    w.live.prompt.setPlainText(text)
    w.live.send_btn.click()
    qtbot.waitUntil(lambda: w.chat.last is not None and not w.live.stop_btn.isEnabled(), timeout=timeout)
    return w.chat.last
