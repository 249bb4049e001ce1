"""The in-app log: live server output with filters, search, copy, save, bounded memory.

Lines arrive in batches (``core/server/log_batches.py``; the worker flushes every 100 ms), so a
server that floods its log costs one append per batch, not one per line, and every line the server
printed is either shown or counted as not shown, in words in the status line. The same line over and
over (``all slots are idle`` once a second) is folded into one line with its count
(``core/server/log_repeats.py``), which still counts every line it stands for. The view keeps a bounded
history and only follows new output while the user is at the bottom (as Frescobaldi's log does); it
replays the history when a filter changes. The full log is always in the per-run log file.
"""

from __future__ import annotations

import collections
import re

from PySide6.QtCore import Qt, QTimer, QUrl
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

from llama_launcher.core.server.log_batches import LogBatch
from llama_launcher.core.server.log_repeats import RepeatFolder
from llama_launcher.core.state import paths

HISTORY_LINES = 20_000
VIEW_LINES = 5_000
MAX_LINES_PER_BATCH = 1_000

_LEVEL = re.compile(r"^\s*\d+\.\d+\.\d+\.\d+\s+([EWID])\s")
_ERROR = re.compile(r"\berror\b|\bfailed\b|\bfatal\b|exiting due to", re.I)
_WARNING = re.compile(r"\bwarn(ing)?\b", re.I)
_SPEC = re.compile(r"spec|draft|mtp|ngram", re.I)
FILTERS = ["All lines", "Errors", "Warnings and errors", "Speculative decoding"]


def plural_lines(n: int) -> str:
    return "line" if n == 1 else "lines"


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
        self.run = 0  # the launch whose batches this view shows (LogBatch.run)
        self.received = 0
        self.not_shown = 0
        self.folder = RepeatFolder()
        self._last_in_view = False  # the history's last entry is the view's last block (its count can grow there)
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
        self.search.setPlaceholderText("Show lines containing…")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(180)
        self.search.setAccessibleName("Search the log")
        self._search_timer = QTimer(self)  # filter as you type, without replaying on every key of a fast typist
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(120)
        self.follow = QCheckBox("Follow new output")
        self.follow.setChecked(True)
        self.follow.setToolTip("Scroll to new lines while the view is at the bottom; scroll up to read quietly")
        self.copy_btn = QPushButton("Copy")
        self.copy_btn.setToolTip("Copy the selection, or the whole visible log")
        self.save_btn = QPushButton("Save…")
        self.folder_btn = QPushButton("Open log folder")
        self.status = QLabel("")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)  # the log file's path is long: all of it stays readable
        bar = QHBoxLayout()
        bar.addWidget(self.filter)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.follow)
        buttons = QHBoxLayout()  # a row of their own: the search box keeps a readable width on small screens
        buttons.addStretch(1)
        buttons.addWidget(self.copy_btn)
        buttons.addWidget(self.save_btn)
        buttons.addWidget(self.folder_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(buttons)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status)
        self.filter.currentIndexChanged.connect(self.replay)
        self.search.textChanged.connect(self._search_timer.start)
        self._search_timer.timeout.connect(self.replay)
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
        self.received = 0
        self.not_shown = 0
        self.folder.reset()
        self._last_in_view = False
        self.status.setText("")

    @property
    def total_lines(self) -> int:
        """Lines the server printed that this view accounts for: shown, or counted as not shown."""
        return self.received

    def begin_run(self, run: int, log_path: str | None = None) -> None:
        """A new launch: an empty view that takes only this run's batches."""
        self.clear()
        self.run = run
        self.log_path = log_path

    def set_log_path(self, run: int, log_path: str | None) -> None:
        if run == self.run:
            self.log_path = log_path
            self._show_count()

    def _shown(self, line: str, idx: int, needle: str) -> bool:
        return matches(line, idx) and (not needle or needle in line.lower())

    def append_batch(self, batch: LogBatch) -> None:
        """The server's lines: each one shown or counted, in the order the server printed them."""
        if batch.run != self.run:
            return  # a late batch of an earlier launch
        self.received += batch.count
        if batch.skipped:
            self.folder.break_run()  # lines were dropped before these: what follows is not "in a row"
        self._append(list(batch.lines), batch.skipped)

    def append_own(self, lines: list[str]) -> None:
        """The launcher's own lines ("[launcher] …"): shown like the server's, not counted as its."""
        self._append(lines, 0)

    def _append(self, lines: list[str], skipped: int) -> None:
        previous = self.folder.last
        folded = self.folder.add(lines)
        if folded.more and previous is not None and self.history:
            self.history[-1] = previous.shown()  # the same line again: its count grows, no new line
            if self._last_in_view:
                self._replace_last_block(previous.shown())
        idx, needle = self.filter.currentIndex(), self.search.text().strip().lower()
        entries = [(e.shown(), e.times) for e in folded.entries]
        self.history.extend(text for text, _ in entries)
        shown = [(text, n) for text, n in entries if self._shown(text, idx, needle)]
        if entries:
            self._last_in_view = bool(shown) and shown[-1][0] == entries[-1][0]
        if len(shown) > MAX_LINES_PER_BATCH:  # one paint per batch stays cheap whatever arrives
            skipped += sum(n for _, n in shown[:-MAX_LINES_PER_BATCH])
            shown = shown[-MAX_LINES_PER_BATCH:]
        shown_lines = [text for text, _ in shown]
        self._show_lines(shown_lines, skipped)
        if not needle:
            self._show_count()

    def _replace_last_block(self, text: str) -> None:
        cursor = QTextCursor(self.view.document().lastBlock())
        cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(text)

    def _show_lines(self, shown: list[str], skipped: int) -> None:
        self.not_shown += skipped
        if skipped:
            shown.insert(0, f"… {skipped:,} {plural_lines(skipped)} not shown here to keep the window responsive "
                            f"(the log file has them) …")
        if shown:
            follow = self.follow.isChecked() and self.at_bottom()
            bar = self.view.verticalScrollBar()
            keep = bar.value()
            self.view.appendPlainText("\n".join(shown))
            if follow:
                bar.setValue(bar.maximum())
                self.view.horizontalScrollBar().setValue(0)  # a long line must not leave the view scrolled sideways
            else:
                bar.setValue(keep)

    def _show_count(self) -> None:
        parts = [f"{self.received:,} {plural_lines(self.received)} from llama-server"]
        if self.folder.folded:
            parts.append(f"{self.folder.folded:,} repeats folded into the line before them")
        if self.not_shown:
            parts.append(f"{self.not_shown:,} not shown to keep the window responsive")
        if self.log_path:
            parts.append(f"log file: {self.log_path}")
        self.status.setText(" · ".join(parts))

    def replay(self) -> None:
        """Show the history through the filter and the search text (matches from their line's start)."""
        idx, needle = self.filter.currentIndex(), self.search.text().strip().lower()
        shown = [ln for ln in self.history if self._shown(ln, idx, needle)][-VIEW_LINES:]
        self._last_in_view = bool(shown) and bool(self.history) and self._shown(self.history[-1], idx, needle)
        self.view.setPlainText("\n".join(shown))
        self.view.moveCursor(QTextCursor.MoveOperation.End)
        self.view.horizontalScrollBar().setValue(0)
        if needle:
            self.status.setText(f"{len(shown):,} of {len(self.history):,} lines contain {self.search.text().strip()!r}")
        else:
            self._show_count()  # the search was cleared: back to the plain count

    def find_next(self) -> None:
        needle = self.search.text()
        if needle and not self.view.find(needle):
            self.view.moveCursor(QTextCursor.MoveOperation.Start)
            self.view.find(needle)
        self.view.horizontalScrollBar().setValue(0)

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
