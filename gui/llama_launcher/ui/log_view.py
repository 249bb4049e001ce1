"""The in-app log: live server output with filters, search, copy, save, bounded memory.

Lines arrive in batches (the worker flushes every 100 ms), so a server that floods its log costs
one append per batch, not one per line. The view keeps a bounded history and only follows new
output while the user is at the bottom (as Frescobaldi's log does); it replays the history when a
filter changes. The full log is always in the per-run log file.
"""

from __future__ import annotations

import collections
import re

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core import paths

HISTORY_LINES = 20_000
VIEW_LINES = 5_000
MAX_LINES_PER_BATCH = 1_000

_LEVEL = re.compile(r"^\s*\d+\.\d+\.\d+\.\d+\s+([EWID])\s")
_ERROR = re.compile(r"\berror\b|\bfailed\b|\bfatal\b|exiting due to", re.I)
_WARNING = re.compile(r"\bwarn(ing)?\b", re.I)
_SPEC = re.compile(r"spec|draft|mtp|ngram", re.I)
FILTERS = ["All lines", "Errors", "Warnings and errors", "Speculative decoding"]


def classify(line: str) -> str:
    m = _LEVEL.match(line)
    if m:
        return {"E": "error", "W": "warning"}.get(m.group(1), "info")
    if _ERROR.search(line):
        return "error"
    if _WARNING.search(line):
        return "warning"
    return "info"


def matches(line: str, filter_index: int) -> bool:
    if filter_index == 0:
        return True
    kind = classify(line)
    if filter_index == 1:
        return kind == "error"
    if filter_index == 2:
        return kind in ("error", "warning")
    return bool(_SPEC.search(line))


class LogView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history: collections.deque[str] = collections.deque(maxlen=HISTORY_LINES)
        self.log_path: str | None = None
        self.total_lines = 0
        self.view = QPlainTextEdit()
        self.view.setObjectName("logView")
        self.view.setReadOnly(True)
        self.view.setMaximumBlockCount(VIEW_LINES)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.view.setUndoRedoEnabled(False)
        self.filter = QComboBox()
        self.filter.addItems(FILTERS)
        self.filter.setToolTip("Show all lines, only errors, warnings and errors, or speculative-decoding lines")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the log (Enter: next match)")
        self.search.setClearButtonEnabled(True)
        self.follow = QCheckBox("Follow new output")
        self.follow.setChecked(True)
        self.follow.setToolTip("Scroll to new lines while the view is at the bottom; scroll up to read quietly")
        self.copy_btn = QPushButton("Copy")
        self.copy_btn.setToolTip("Copy the selection, or the whole visible log")
        self.save_btn = QPushButton("Save…")
        self.folder_btn = QPushButton("Open log folder")
        self.status = QLabel("")
        self.status.setObjectName("muted")
        bar = QHBoxLayout()
        bar.addWidget(self.filter)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.follow)
        bar.addWidget(self.copy_btn)
        bar.addWidget(self.save_btn)
        bar.addWidget(self.folder_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status)
        self.filter.currentIndexChanged.connect(self.replay)
        self.search.returnPressed.connect(self.find_next)
        self.copy_btn.clicked.connect(self.copy)
        self.save_btn.clicked.connect(self.save)
        self.folder_btn.clicked.connect(self.open_folder)
        find = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self)
        find.activated.connect(self.search.setFocus)

    def at_bottom(self) -> bool:
        bar = self.view.verticalScrollBar()
        return bar.value() >= bar.maximum() - 2

    def clear(self) -> None:
        self.history.clear()
        self.view.clear()
        self.total_lines = 0

    def append_lines(self, lines: list[str]) -> None:
        self.history.extend(lines)
        self.total_lines += len(lines)
        idx = self.filter.currentIndex()
        shown = [ln for ln in lines if matches(ln, idx)]
        if not shown:
            return
        skipped = 0
        if len(shown) > MAX_LINES_PER_BATCH:
            skipped = len(shown) - MAX_LINES_PER_BATCH
            shown = shown[-MAX_LINES_PER_BATCH:]
        follow = self.follow.isChecked() and self.at_bottom()
        bar = self.view.verticalScrollBar()
        keep = bar.value()
        text = "\n".join(shown)
        if skipped:
            text = f"… {skipped} lines not shown here (they are in the log file) …\n" + text
        self.view.appendPlainText(text)
        if follow:
            bar.setValue(bar.maximum())
        else:
            bar.setValue(keep)
        self.status.setText(f"{self.total_lines:,} lines received" + (f" · full log: {self.log_path}" if self.log_path else ""))

    def replay(self) -> None:
        idx = self.filter.currentIndex()
        self.view.setPlainText("\n".join(ln for ln in list(self.history)[-VIEW_LINES:] if matches(ln, idx)))
        self.view.moveCursor(QTextCursor.MoveOperation.End)

    def find_next(self) -> None:
        needle = self.search.text()
        if needle and not self.view.find(needle):
            self.view.moveCursor(QTextCursor.MoveOperation.Start)
            self.view.find(needle)

    def copy(self) -> None:
        cursor = self.view.textCursor()
        text = cursor.selectedText().replace("\u2029", "\n") if cursor.hasSelection() else self.view.toPlainText()
        QGuiApplication.clipboard().setText(text)

    def save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save log", "llama-server.log", "Log files (*.log *.txt)")
        if path:
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write("\n".join(self.history) + "\n")
            except OSError as exc:
                self.status.setText(f"could not save: {exc.strerror or exc}")

    def open_folder(self) -> None:
        folder = paths.ensure(paths.log_dir())
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.search.clear()
        super().keyPressEvent(event)
