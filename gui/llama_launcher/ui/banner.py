"""The banner under the window's panes: the notices, one line per fact, errors first, with a way out.

Shows what ``controllers/notices.py`` holds. The newest notice with an action gets the button
("Launch on port 8081 instead"); Dismiss forgets them all. A notice whose fact a tab says in full
(no llama-server: the llama-server tab) is left to that tab while it is the one shown, so the same
news is never on screen twice. The banner sits below the panes, above the status bar: when it
appears or goes, the panes keep their place and only their bottom edge moves (at the top it pushed
everything down and back up again).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from llama_launcher.ui.controllers.notices import Notice, NoticeCenter


class Banner(QWidget):
    def __init__(self, notices: NoticeCenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self._notices = notices
        self._action: Callable[[], None] | None = None
        self._tab = ""
        self.label = QLabel("")
        self.label.setObjectName("bannerText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton("")
        self.close_btn = QPushButton("Dismiss")
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 4, 10, 4)
        row.addWidget(self.label, 1)
        row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.close_btn, 0, Qt.AlignmentFlag.AlignTop)
        self.button.clicked.connect(self._clicked)
        self.close_btn.clicked.connect(lambda: notices.clear())
        notices.changed.connect(self.refresh)
        self.refresh()

    def text(self) -> str:
        return self.label.text()

    def set_current_tab(self, tab: str) -> None:
        """The tab on screen: a notice that tab says in full is left out meanwhile."""
        self._tab = tab
        self.refresh()

    def shown(self) -> list[Notice]:
        return [n for n in self._notices.notices if not (n.tab and n.tab == self._tab)]

    def refresh(self) -> None:
        items = self.shown()
        self.label.setText("\n".join(("⚠ " if n.error else "ℹ ") + n.text for n in items))
        error = any(n.error for n in items)
        self.label.setProperty("kind", "error" if error else "notice")
        self.label.style().unpolish(self.label)
        self.label.style().polish(self.label)
        acting = next((n for n in items if n.action is not None), None)
        self._action = acting.action[1] if acting is not None and acting.action is not None else None
        self.button.setText(acting.action[0] if acting is not None and acting.action is not None else "")
        self.button.setVisible(acting is not None)
        self.setVisible(bool(items))

    def _clicked(self) -> None:
        act = self._action
        if act is not None:
            act()  # the action forgets its own notice when its fact is gone (a launch clears the port's)
