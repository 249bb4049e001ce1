"""Tooltips that wrap: a long explanation is a paragraph of bounded width, shown inside the window.

Qt shows a plain-text tooltip on one line however long it is: the method explanations and the
plan's reasons made tooltips up to ~1,100 px wide, pushed left by the screen's edge until they
started outside the window. One event filter on the application handles every tooltip (a widget's
own, an item view's item, a toolbar action's): text wider than ``MAX_WIDTH`` becomes a paragraph of
that width, and the tip is kept within the window it belongs to.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QAbstractItemView, QApplication, QToolTip, QWidget

MAX_WIDTH = 420  # px: about 60 characters of the usual UI font, a comfortable line to read


def tip_widget() -> QWidget | None:
    """The tooltip on screen (Qt's QTipLabel), if one is."""
    return next((w for w in QApplication.topLevelWidgets()
                 if w.metaObject().className() == "QTipLabel" and w.isVisible()), None)


def wrapped(text: str, too_wide: bool) -> str:
    """The tooltip's text as Qt shows it: a paragraph ``MAX_WIDTH`` wide when it would be wider than that."""
    if not too_wide or text.lstrip().startswith("<"):  # rich text already: Qt wraps it itself
        return text
    body = "<br>".join(html.escape(line) for line in text.split("\n"))
    return f"<table width={MAX_WIDTH}><tr><td>{body}</td></tr></table>"


class WrappedToolTips(QObject):
    """Installed once on the application (:func:`install`)."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.ToolTip or not isinstance(obj, QWidget) or not isinstance(event, QHelpEvent):
            return False
        text = self._text(obj, event.pos())
        if not text:
            return False
        fm = obj.fontMetrics()
        too_wide = max(fm.horizontalAdvance(line) for line in text.split("\n")) > MAX_WIDTH
        QToolTip.showText(event.globalPos(), wrapped(text, too_wide), obj, QRect(), -1)
        self._keep_inside(obj)
        return True

    @staticmethod
    def _text(obj: QWidget, pos: QPoint) -> str:
        view = obj.parent()
        if isinstance(view, QAbstractItemView) and obj is view.viewport():  # an item's tooltip
            index = view.indexAt(pos)
            tip = index.data(Qt.ItemDataRole.ToolTipRole) if index.isValid() else None
            return tip if isinstance(tip, str) else ""
        return obj.toolTip()

    @staticmethod
    def _keep_inside(obj: QWidget) -> None:
        tip, window = tip_widget(), obj.window()
        if tip is None or window is None:
            return
        frame = window.frameGeometry()
        g = tip.geometry()
        x = min(max(g.x(), frame.left()), max(frame.right() - g.width(), frame.left()))
        if x != g.x():
            tip.move(x, g.y())


_installed: WrappedToolTips | None = None


def install() -> None:
    """Wrap every tooltip of this application (idempotent: each window may call it)."""
    global _installed
    app = QApplication.instance()
    if _installed is None and app is not None:
        _installed = WrappedToolTips(app)
        app.installEventFilter(_installed)
