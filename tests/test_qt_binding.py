"""Guard against a Qt binding that corrupts reference counts (PySide6 6.12.0 on Python < 3.12 did).

That release dropped a reference to None on every void call (``QLabel.setText``) and to
True/False elsewhere; the window crashed with "none_dealloc" a few seconds after a server started.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QLabel


def test_void_calls_keep_none_and_bools_alive(qtbot) -> None:
    label = QLabel()
    qtbot.addWidget(label)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(2000):
        label.setText("x")
        label.setVisible(False)
        label.isVisible()
    assert sys.getrefcount(None) >= none_before - 50
    assert sys.getrefcount(True) >= true_before - 50
