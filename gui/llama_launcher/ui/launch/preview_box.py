"""The command preview: every flag of the plan with the reason it is there, the warnings, Copy command.

It sits under the settings, always in view (the Launch setup tab splits between them), so a change
is seen where it lands. A flag too long for its column is cut in the middle, keeping its end (a
model's file name) in view, and its tooltip holds the whole flag and its reason.

A plan that cannot be made (bad extra arguments, say) keeps the last valid one on screen, greyed,
under the error, so the user sees what changes rather than an empty box.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.plan.planner import Plan
from llama_launcher.core.state.command_line import command_line, shown_command_line
from llama_launcher.ui.launch.common import copy_with_feedback
from llama_launcher.ui.resources import icon


class WrappingDelegate(QStyledItemDelegate):
    """Rows as tall as their wrapped text at the column's width (QTreeView's own word wrap sizes rows by one
    line, and then elides)."""

    def __init__(self, view: QTreeWidget) -> None:
        super().__init__(view)
        self._view = view

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        hint = super().sizeHint(option, index)
        width = max(self._view.columnWidth(index.column()) - 10, 20)
        text = str(index.data() or "")
        rect = option.fontMetrics.boundingRect(QRect(0, 0, width, 1 << 20), Qt.TextFlag.TextWordWrap, text)
        return QSize(hint.width(), max(hint.height(), rect.height() + 4))


class WholeRowsTree(QTreeWidget):
    """A tree that never shows half a row: it scrolls a row at a time and its rows end at the last one that
    fits whole, the strip left under it blank (a row cut through the middle reads as a different reason)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._blank = 0  # the strip under the last whole row
        self._fitting = False
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        self.verticalScrollBar().valueChanged.connect(lambda _v: self.fit_whole_rows())

    def updateGeometries(self) -> None:
        super().updateGeometries()  # QTreeView sets the viewport's margins here (the header's): add the strip
        self._set_blank(self._blank)
        self.fit_whole_rows()

    def _set_blank(self, blank: int) -> None:
        m = self.viewportMargins()
        if m.bottom() != blank:
            self.setViewportMargins(m.left(), m.top(), m.right(), blank)
        self._blank = blank

    def row_heights(self, first: int) -> list[int]:
        model = self.model()
        return [self.rowHeight(model.index(i, 0)) for i in range(first, self.topLevelItemCount())]

    def fit_whole_rows(self) -> None:
        if self._fitting:
            return
        self._fitting = True
        try:
            room = self.viewport().height() + self._blank
            top = self.indexAt(QPoint(1, 1))
            used, cut = 0, False
            for h in self.row_heights(top.row() if top.isValid() else 0):
                if used + h > room:
                    cut = True
                    break
                used += h
            # a row that would be cut is left for the scroll; one taller than the room shows from its top
            self._set_blank(room - used if cut and used > 0 else 0)
        finally:
            self._fitting = False


class PreviewBox(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Command preview", parent)
        self._plan: Plan | None = None
        self.stale = False
        self.error = QLabel("")
        self.error.setObjectName("failureReason")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        self.tree = WholeRowsTree()
        self.tree.setObjectName("commandPreviewTree")
        self.tree.setHeaderLabels(["Flag", "Why"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setMinimumHeight(90)
        self.tree.setColumnWidth(0, 260)
        self.tree.setWordWrap(True)  # the reasons wrap, and so do flags with spaces: nothing is cut
        self.tree.setUniformRowHeights(False)
        self.tree.setItemDelegate(WrappingDelegate(self.tree))
        self.tree.header().sectionResized.connect(lambda *_: self.tree.doItemsLayout())
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # one long path: "-m /tmp/…/gemma-3-270m-q4_k_m.gguf"
        self.copy_cmd = QPushButton(icon("copy"), "Copy command")
        self.copy_cmd.setToolTip("Copy the exact command (the API key is never part of it)")
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setObjectName("warnings")
        lay = QVBoxLayout(self)
        lay.addWidget(self.error)
        lay.addWidget(self.tree)
        row = QHBoxLayout()
        row.addWidget(self.warnings, 1)
        row.addWidget(self.copy_cmd, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(row)
        self.copy_cmd.clicked.connect(lambda: copy_with_feedback(self.copy_cmd, self.command_text()))

    def show_plan(self, plan: Plan | None, error: str) -> bool:
        """Show a plan, or the error over the last valid one (greyed); returns whether it is stale."""
        self.error.setText(error)
        self.error.setVisible(bool(error))
        self.stale = plan is None and bool(error) and self._plan is not None
        self.tree.setEnabled(not self.stale)
        if plan is None:
            if not self.stale:
                self._plan = None
                self.tree.clear()
                self.warnings.setText("")
            self.copy_cmd.setEnabled(False)
            return self.stale
        self._plan = plan
        self.copy_cmd.setEnabled(True)
        self.tree.clear()
        for f in plan.shown_flags():
            flag = shown_command_line(f.args) or "(environment)"
            item = QTreeWidgetItem([flag, f.reason])
            item.setToolTip(0, f"{flag}\n\n{f.reason}")  # the whole flag, then why: nothing only Copy reveals
            item.setToolTip(1, f"{flag}\n\n{f.reason}")
            item.setData(0, Qt.ItemDataRole.UserRole, f.args)
            self.tree.addTopLevelItem(item)
        self._fit_flag_column()
        others = [w for w in plan.warnings if w not in plan.context_warnings]
        self.warnings.setText("\n".join(f"⚠ {w}" for w in others))
        return False

    def _fit_flag_column(self) -> None:
        """Flags get the width they need, up to half the tree (the reasons need room too)."""
        self.tree.resizeColumnToContents(0)
        cap = max(self.tree.viewport().width() // 2, 200)
        if self.tree.columnWidth(0) > cap:
            self.tree.setColumnWidth(0, cap)
        self.tree.doItemsLayout()  # rows take the height their wrapped text needs at these widths

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._plan is not None:
            self._fit_flag_column()

    def preview_args(self) -> list[list[str]]:
        """The preview's rows as argv pieces (tests read this, not pixels)."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None:
                out.append(list(item.data(0, Qt.ItemDataRole.UserRole)))
        return out

    def command_text(self) -> str:
        """The exact command to paste into this platform's shell (the API key never part of it)."""
        return command_line(self._plan.redacted_argv()) if self._plan and not self.stale else ""
