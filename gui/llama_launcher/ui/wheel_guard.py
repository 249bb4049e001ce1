"""Scrolling a long form must not change the settings it scrolls past.

A combo box, spin box or slider under the pointer takes the mouse wheel by default, so scrolling the
launch setup quietly changed the context size or a method's mode. The guard gives the wheel to a
control only once the user has clicked or tabbed into it; otherwise the form scrolls.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QWidget,
)


class WheelGuard(QObject):
    def __init__(self, scroll: QAbstractScrollArea) -> None:
        super().__init__(scroll)
        self._scroll = scroll

    def guard(self, root: QWidget) -> None:
        """Guard every wheel-taking control under root (call once the form is built)."""
        for kind in (QComboBox, QAbstractSpinBox, QAbstractSlider):
            for w in root.findChildren(kind):
                w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # no focus by wheel, only by click or Tab
                w.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            QApplication.sendEvent(self._scroll.verticalScrollBar(), event)
            return True
        return False
