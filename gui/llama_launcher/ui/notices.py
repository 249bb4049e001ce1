"""State-file notices (a corrupt cache set aside, a read-only or full home) shown in the window's banner.

``core.state_files`` collects them from any thread; the window drains them on its own thread,
at start-up and then twice a second, so a notice from a scan or a server start shows up too.
A notice never hides a failure already in the banner: it is added below it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer

from llama_launcher.core.state.state_files import drain_notices

POLL_MS = 500


def show_state_notices(window: Any) -> list[str]:
    """Move pending notices into ``window``'s banner; returns what was shown."""
    notes = drain_notices()
    if not notes:
        return []
    text = "\n".join(notes)
    if window.banner.isVisible() and window.banner.text():
        window.banner.setText(window.banner.text() + "\nℹ " + text.replace("\n", "\nℹ "))
    else:
        window.show_notice(text.replace("\n", "\nℹ "))
    return notes


def attach_state_notices(window: Any) -> QTimer:
    """Show the notices queued so far, and keep showing new ones while the window lives."""
    show_state_notices(window)
    timer = QTimer(window)
    timer.setInterval(POLL_MS)
    timer.timeout.connect(lambda: show_state_notices(window))
    timer.start()
    return timer
