"""Tune's row in Launch setup: what was measured on this machine, per workload, whether it is in effect and
"Use this" when it is not; the button, its progress and Cancel.

The words come from core: ``TunedChoice.result_lines`` (each workload's speed against off, not one
average), ``adopt.Adoption.words`` (what stands between the measurement and "In effect").
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.plan.adopt import Adoption
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.tuning.tune import TuneProgress
from llama_launcher.ui.resources import icon

TUNE_TIP = ("Measure the speculative settings this model and llama-server support, on this machine, and use "
            "the fastest from then on (a few minutes; a running server is stopped first)")
NOT_MEASURED = "not measured on this machine yet"
# the table's columns: short headers so that both workloads fit beside the setting, what they mean in tooltips
COLUMNS = [("Setting", "What was measured (the full label is in each row's tooltip)"),
           ("Code t/s", "Decode speed on the code prompt, and in brackets how many times as fast as off"),
           ("Prose t/s", "Decode speed on the prose prompt, and in brackets how many times as fast as off"),
           ("Accepted", "The share of drafted tokens the model accepted, of how many were drafted")]
MAX_ROWS = 8  # taller tables scroll, by whole rows


class TuneBox(QWidget):
    requested = Signal()
    cancel = Signal()
    use_this = Signal()  # set the model's settings so that Auto uses the measurement

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
        self.table.setHeaderLabels([name for name, _tip in COLUMNS])
        for col, (_name, tip) in enumerate(COLUMNS):
            self.table.headerItem().setToolTip(col, tip)
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)  # a long setting elides; its tooltip holds it whole
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # every column fits instead
        header = self.table.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setVisible(False)
        self.adopt_label = QLabel("")
        self.adopt_label.setWordWrap(True)
        self.use_btn = QPushButton("Use this")
        self.use_btn.setToolTip("Set this model's speculative settings to Auto, so that the measured setting runs")
        adopt_row = QHBoxLayout()
        adopt_row.setContentsMargins(0, 0, 0, 0)
        adopt_row.addWidget(self.adopt_label, 1)
        adopt_row.addWidget(self.use_btn, 0, Qt.AlignmentFlag.AlignTop)
        self.adopt_box = QWidget()
        self.adopt_box.setLayout(adopt_row)
        self.adopt_box.setVisible(False)
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
        lay.addWidget(self.adopt_box)
        self.button.clicked.connect(self.requested)
        self.use_btn.clicked.connect(self.use_this)
        self.cancel_button.clicked.connect(self._cancel_clicked)

    def set_enabled(self, ok: bool, why: str) -> None:
        self.button.setEnabled(ok)
        self.button.setToolTip(TUNE_TIP + (f"\n{why}" if ok and why else "") if ok else why)

    def show_tuned(self, tuned: TunedChoice | None, extra: str = "") -> None:
        lines = tuned.result_lines() if tuned is not None else [NOT_MEASURED]
        self.label.setText("\n".join(lines) + (f"\n{extra}" if extra else ""))
        self.table.clear()
        for r in tuned.table if tuned is not None else []:
            acc = r.acceptance
            base = tuned.off_row(r.tokens) if tuned is not None else None  # off at the same reply length

            def cell(w: str, r=r, base=base) -> str:
                tps = r.decode_tps.get(w, 0.0)
                ref = base.decode_tps.get(w) if base is not None and r.setting != "off" else None
                return f"{tps:.1f} ({tps / ref:.2f}×)" if ref else f"{tps:.1f}"

            item = QTreeWidgetItem([r.short_label(), cell("code"), cell("prose"),
                                    f"{acc * 100:.0f}% of {r.drafted:,}" if acc is not None else "none drafted"])
            how = r.how_measured()
            item.setToolTip(0, f"{r.short_label()}: {how}" if how else r.short_label())
            self.table.addTopLevelItem(item)
        self.table.setVisible(bool(tuned is not None and tuned.table))
        self._fit_height()

    def _fit_height(self) -> None:
        """As tall as its rows (no empty box under two rows), at most MAX_ROWS, and never a row cut in half."""
        rows = self.table.topLevelItemCount()
        row_h = max(self.table.sizeHintForRow(0) if rows else 0, self.table.fontMetrics().height() + 4)
        header_h = self.table.header().sizeHint().height()
        self.table.setFixedHeight(header_h + min(rows, MAX_ROWS) * row_h + 2 * self.table.frameWidth())

    def show_adoption(self, adoption: Adoption | None) -> None:
        """Whether the measurement is in effect, and "Use this" when the model's settings keep it out."""
        self.adopt_box.setVisible(adoption is not None)
        if adoption is None:
            return
        self.adopt_label.setText(adoption.words())
        self.use_btn.setVisible(not adoption.in_effect)

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
