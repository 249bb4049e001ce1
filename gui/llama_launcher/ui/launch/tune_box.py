"""Tune's row in Launch setup: what was measured on this machine, the button, its progress and Cancel."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.tuning.tune import TuneProgress
from llama_launcher.ui.resources import icon

TUNE_TIP = ("Measure the speculative settings this model and llama-server support, on this machine, and use "
            "the fastest from then on (a few minutes; a running server is stopped first)")
NOT_MEASURED = "not measured on this machine yet"


class TuneBox(QWidget):
    requested = Signal()
    cancel = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(NOT_MEASURED)
        self.label.setObjectName("measured")
        self.label.setWordWrap(True)
        self.button = QPushButton(icon("tune"), "Tune…")
        self.button.setToolTip(TUNE_TIP)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.stage = QLabel("")
        self.stage.setWordWrap(True)
        self.stage.setVisible(False)
        self.table = QTreeWidget()
        self.table.setHeaderLabels(["Setting", "Code t/s", "Prose t/s", "Accepted", "vs off"])
        self.table.setRootIsDecorated(False)
        self.table.setVisible(False)
        self.table.setMaximumHeight(180)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.button)
        row.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.bar)
        lay.addWidget(self.stage)
        lay.addWidget(self.table)
        self.button.clicked.connect(self.requested)
        self.cancel_button.clicked.connect(self._cancel_clicked)

    def set_enabled(self, ok: bool, why: str) -> None:
        self.button.setEnabled(ok)
        self.button.setToolTip(TUNE_TIP + (f"\n{why}" if ok and why else "") if ok else why)

    def show_tuned(self, tuned: TunedChoice | None, extra: str = "") -> None:
        text = tuned.describe() if tuned is not None else NOT_MEASURED
        note = tuned.note if tuned is not None else ""
        self.label.setText(text + (f"\n{note}" if note else "") + (f"\n{extra}" if extra else ""))
        self.table.clear()
        for r in tuned.table if tuned is not None else []:
            acc = r.acceptance
            self.table.addTopLevelItem(QTreeWidgetItem([
                r.label, f"{r.decode_tps.get('code', 0):.1f}", f"{r.decode_tps.get('prose', 0):.1f}",
                f"{acc * 100:.0f}%" if acc is not None else "–", f"{r.speedup:.2f}×"]))
        self.table.setVisible(bool(tuned is not None and tuned.table))

    def set_running(self, running: bool) -> None:
        self.button.setEnabled(not running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(True)
        self.bar.setVisible(running)
        self.stage.setVisible(running)
        if running:
            self.bar.setRange(0, 0)
            self.stage.setText("starting…")

    def show_progress(self, p: TuneProgress) -> None:
        self.bar.setRange(0, 1000)
        self.bar.setValue(round(p.fraction * 1000))  # moves within a step, as the time left does
        self.stage.setText(p.text())

    def _cancel_clicked(self) -> None:
        self.cancel_button.setEnabled(False)
        self.stage.setText("cancelling…")
        self.cancel.emit()
