"""Launch setup: speculative decoding, context and memory, network, extra arguments, command preview.

The panel only collects choices and shows what the planner decided; it never decides itself.
``changed`` fires on any edit; the window re-plans and calls :meth:`show_plan`.
"""

from __future__ import annotations

import shlex

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.launch_planner import Plan
from llama_launcher.core.memory_estimate import memory_line, memory_tooltip
from llama_launcher.core.settings_store import ModelSettings
from llama_launcher.ui.resources import icon

MODES = [("Auto", "auto"), ("On", "on"), ("Off", "off")]
MTP_TIP = ("MTP (multi-token prediction): the model's own extra head drafts the next tokens, and the model checks "
           "them in one step. Faster on bigger models; slower on small ones (below 3B parameters) and on some Macs.")
NGRAM_TIP = ("ngram-mod: drafts tokens by finding the recent text again in the context — no extra model needed. "
             "Big wins on repetitive output (code edits, quoting), harmless elsewhere.")
DRAFT_TIP = ("Draft length: how many tokens MTP proposes per step (--spec-draft-n-max). Longer drafts pay off only "
             "when most of them are accepted; 2 is best on GPUs in published tests, 3 is llama.cpp's default.")
TUNE_TIP = ("Measure every speculative setting this model and llama-server support, on this machine, and use "
            "the fastest from then on (takes a few minutes)")
CTX_TIP = "Context size in tokens. Auto picks the largest that fits the memory budget, up to the model's native context."


def _mode_combo(tip: str) -> QComboBox:
    c = QComboBox()
    for label, value in MODES:
        c.addItem(label, value)
    c.setToolTip(tip)
    return c


def _set_mode(combo: QComboBox, value: str) -> None:
    i = combo.findData(value)
    combo.setCurrentIndex(i if i >= 0 else 0)


class LaunchPanel(QWidget):
    changed = Signal()
    tune_requested = Signal()
    tune_cancel = Signal()
    lan_toggled = Signal(bool)
    regenerate_key = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._loading = False
        self._plan: Plan | None = None

        # --- speculative decoding
        self.mtp = _mode_combo(MTP_TIP)
        self.mtp.setAccessibleName("MTP")
        self.ngram = _mode_combo(NGRAM_TIP)
        self.ngram.setAccessibleName("ngram-mod")
        self.draft_default = QCheckBox("Default")
        self.draft_default.setChecked(True)
        self.draft_default.setToolTip("Use the planner's draft length (2 on a GPU, 3 on CPU/Mac, or the measured best)")
        self.draft = QSlider(Qt.Orientation.Horizontal)
        self.draft.setRange(1, 16)
        self.draft.setValue(3)
        self.draft.setPageStep(1)
        self.draft.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.draft.setToolTip(DRAFT_TIP)
        self.draft.setAccessibleName("Draft length")
        self.draft_value = QLabel("3")
        self.draft_value.setMinimumWidth(140)
        self.tune_label = QLabel("not measured on this machine yet")
        self.tune_label.setObjectName("muted")
        self.tune_label.setWordWrap(True)
        self.tune_btn = QPushButton(icon("tune"), "Tune…")
        self.tune_btn.setToolTip(TUNE_TIP)
        self.tune_cancel_btn = QPushButton("Cancel")
        self.tune_cancel_btn.setVisible(False)
        self.tune_progress = QProgressBar()
        self.tune_progress.setVisible(False)
        self.tune_table = QTreeWidget()
        self.tune_table.setHeaderLabels(["Setting", "Code t/s", "Prose t/s", "vs off"])
        self.tune_table.setRootIsDecorated(False)
        self.tune_table.setVisible(False)
        self.tune_table.setMaximumHeight(180)
        self.spec_summary = QLabel("")
        self.spec_summary.setWordWrap(True)

        draft_row = QHBoxLayout()
        draft_row.addWidget(self.draft_default)
        draft_row.addWidget(self.draft, 1)
        draft_row.addWidget(self.draft_value)
        tune_row = QHBoxLayout()
        tune_row.addWidget(self.tune_label, 1)
        tune_row.addWidget(self.tune_btn)
        tune_row.addWidget(self.tune_cancel_btn)
        spec_box = QGroupBox("Speculative decoding")
        spec_form = QFormLayout(spec_box)
        spec_form.addRow(self._label("MTP", MTP_TIP), self.mtp)
        spec_form.addRow(self._label("ngram-mod", NGRAM_TIP), self.ngram)
        spec_form.addRow(self._label("Draft length", DRAFT_TIP), draft_row)
        spec_form.addRow("In effect", self.spec_summary)
        spec_form.addRow("Measured", tune_row)
        spec_form.addRow(self.tune_progress)
        spec_form.addRow(self.tune_table)

        # --- context and memory
        self.ctx = QSpinBox()
        self.ctx.setRange(0, 4_194_304)
        self.ctx.setSingleStep(256)
        self.ctx.setSpecialValueText("Auto (largest that fits)")
        self.ctx.setToolTip(CTX_TIP)
        self.ctx.setAccessibleName("Context size")
        self.memory = QLabel("–")
        self.memory.setObjectName("memoryBadge")
        self.memory.setWordWrap(True)
        self.memory.setToolTip("Estimated memory use: weights + KV cache (+ the MTP draft context when MTP is on) against "
                               "the budget; llama-server's --fit adjusts the rest to what it really finds")
        mem_box = QGroupBox("Context and memory")
        mem_form = QFormLayout(mem_box)
        mem_form.addRow(self._label("Context", CTX_TIP), self.ctx)
        mem_form.addRow("Memory", self.memory)

        # --- advanced (collapsed)
        self.adv_toggle = QToolButton()
        self.adv_toggle.setText("Advanced")
        self.adv_toggle.setCheckable(True)
        self.adv_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.adv_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.adv = QFrame()
        self.adv.setVisible(False)
        adv_form = QFormLayout(self.adv)
        self.n_match = QSpinBox()
        self.n_match.setRange(1, 1024)
        self.n_match.setValue(24)
        self.n_min = QSpinBox()
        self.n_min.setRange(0, 1024)
        self.n_min.setValue(48)
        self.n_max = QSpinBox()
        self.n_max.setRange(1, 1024)
        self.n_max.setValue(64)
        for w, tip in ((self.n_match, "ngram-mod lookup length (--spec-ngram-mod-n-match, default 24)"),
                       (self.n_min, "fewest tokens ngram-mod drafts (--spec-ngram-mod-n-min, default 48)"),
                       (self.n_max, "most tokens ngram-mod drafts (--spec-ngram-mod-n-max, default 64)")):
            w.setToolTip(tip)
        self.threads = QSpinBox()
        self.threads.setRange(0, 512)
        self.threads.setSpecialValueText("llama-server default")
        self.threads.setToolTip("CPU threads for generation (-t)")
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(-1, 999)
        self.gpu_layers.setValue(-1)
        self.gpu_layers.setSpecialValueText("Auto (--fit)")
        self.gpu_layers.setToolTip("Layers offloaded to the GPU (-ngl); Auto lets llama-server fit them to memory")
        self.vision = QCheckBox("Enable vision (pass the paired mmproj projector)")
        adv_form.addRow("ngram-mod n-match", self.n_match)
        adv_form.addRow("ngram-mod n-min", self.n_min)
        adv_form.addRow("ngram-mod n-max", self.n_max)
        adv_form.addRow("Threads", self.threads)
        adv_form.addRow("GPU layers", self.gpu_layers)
        adv_form.addRow(self.vision)

        # --- network and extra arguments
        self.lan = QCheckBox("Allow other devices on my network (LAN)")
        self.lan.setToolTip("Listen on all interfaces instead of 127.0.0.1. Requires an API key, which every client "
                            "must send as 'Authorization: Bearer <key>'.")
        self.api_key = QLineEdit()
        self.api_key.setReadOnly(True)
        self.api_key.setPlaceholderText("generated when LAN access is turned on")
        self.copy_key = QPushButton(icon("copy"), "")
        self.copy_key.setToolTip("Copy the API key")
        self.new_key = QPushButton("New key")
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key, 1)
        key_row.addWidget(self.copy_key)
        key_row.addWidget(self.new_key)
        self.key_widget = QWidget()
        self.key_widget.setLayout(key_row)
        key_row.setContentsMargins(0, 0, 0, 0)
        self.extra = QLineEdit()
        self.extra.setPlaceholderText("extra llama-server arguments, e.g. --temp 0.7 --top-k 40")
        self.extra.setToolTip("Passed last, so they win. Flags the launcher owns (model, host, port, API key, "
                              "projector, downloads) are refused with the reason.")
        self.extra.setAccessibleName("Extra arguments")
        self.extra_error = QLabel("")
        self.extra_error.setObjectName("failureReason")
        self.extra_error.setWordWrap(True)
        net_box = QGroupBox("Network and extra arguments")
        net_form = QFormLayout(net_box)
        net_form.addRow(self.lan)
        net_form.addRow("API key", self.key_widget)
        self._net_form = net_form
        self._show_key_row(False)
        net_form.addRow("Extra arguments", self.extra)
        net_form.addRow(self.extra_error)

        # --- command preview
        self.preview = QTreeWidget()
        self.preview.setObjectName("commandPreviewTree")
        self.preview.setHeaderLabels(["Flag", "Why"])
        self.preview.setRootIsDecorated(False)
        self.preview.setAlternatingRowColors(True)
        self.preview.setMinimumHeight(160)
        self.preview.setColumnWidth(0, 300)
        self.copy_cmd = QPushButton(icon("copy"), "Copy command")
        self.copy_cmd.setToolTip("Copy the exact command (the API key is redacted)")
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setObjectName("warnings")
        prev_box = QGroupBox("Command preview")
        prev_lay = QVBoxLayout(prev_box)
        prev_lay.addWidget(self.preview)
        row = QHBoxLayout()
        row.addWidget(self.warnings, 1)
        row.addWidget(self.copy_cmd, 0, Qt.AlignmentFlag.AlignTop)
        prev_lay.addLayout(row)

        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.addWidget(spec_box)
        lay.addWidget(mem_box)
        lay.addWidget(self.adv_toggle)
        lay.addWidget(self.adv)
        lay.addWidget(net_box)
        lay.addWidget(prev_box, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        for combo in (self.mtp, self.ngram):
            combo.currentIndexChanged.connect(self._emit)
        for spin in (self.ctx, self.n_match, self.n_min, self.n_max, self.threads, self.gpu_layers):
            spin.valueChanged.connect(self._emit)
        self.draft.valueChanged.connect(self._draft_moved)
        self.draft_default.toggled.connect(self._emit)
        self.vision.toggled.connect(self._emit)
        self.extra.textChanged.connect(self._emit)
        self.lan.toggled.connect(self._lan)
        self.adv_toggle.toggled.connect(self._toggle_adv)
        self.copy_cmd.clicked.connect(self.copy_command)
        self.copy_key.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.api_key.text()))
        self.new_key.clicked.connect(self.regenerate_key)
        self.tune_btn.clicked.connect(self.tune_requested)
        self.tune_cancel_btn.clicked.connect(self.tune_cancel)

    @staticmethod
    def _label(text: str, tip: str) -> QLabel:
        lbl = QLabel(text)
        lbl.setToolTip(tip)
        return lbl

    def _toggle_adv(self, on: bool) -> None:
        self.adv.setVisible(on)
        self.adv_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def _draft_moved(self) -> None:
        if not self._loading:
            self.draft_default.setChecked(False)
        self._emit()

    def _show_key_row(self, on: bool) -> None:
        self._net_form.setRowVisible(self.key_widget, on)

    def _lan(self, on: bool) -> None:
        self._show_key_row(on)
        if not self._loading:
            self.lan_toggled.emit(on)
        self._emit()

    def _emit(self) -> None:
        if not self._loading:
            self.changed.emit()

    # --- settings in/out -------------------------------------------------------------------------
    def load(self, s: ModelSettings, lan: bool, api_key: str) -> None:
        self._loading = True
        try:
            _set_mode(self.mtp, s.mtp)
            _set_mode(self.ngram, s.ngram_mod)
            self.draft_default.setChecked(s.draft_n_max is None)
            if s.draft_n_max is not None:
                self.draft.setValue(s.draft_n_max)
            self.n_match.setValue(s.ngram_n_match)
            self.n_min.setValue(s.ngram_n_min)
            self.n_max.setValue(s.ngram_n_max)
            self.ctx.setValue(s.ctx or 0)
            self.threads.setValue(s.threads or 0)
            self.gpu_layers.setValue(s.gpu_layers if s.gpu_layers is not None else -1)
            self.extra.setText(s.extra_args)
            self.vision.setChecked(s.vision)
            self.lan.setChecked(lan)
            self._show_key_row(lan)
            self.api_key.setText(api_key if lan else "")
        finally:
            self._loading = False

    def model_settings(self) -> ModelSettings:
        return ModelSettings(
            mtp=self.mtp.currentData(), ngram_mod=self.ngram.currentData(),
            draft_n_max=None if self.draft_default.isChecked() else self.draft.value(),
            ngram_n_match=self.n_match.value(), ngram_n_min=self.n_min.value(), ngram_n_max=self.n_max.value(),
            ctx=self.ctx.value() or None, threads=self.threads.value() or None,
            gpu_layers=None if self.gpu_layers.value() < 0 else self.gpu_layers.value(),
            extra_args=self.extra.text(), vision=self.vision.isChecked())

    # --- plan out ------------------------------------------------------------------------------
    def set_availability(self, mtp: tuple[bool, str], ngram: tuple[bool, str]) -> None:
        """Disable what cannot work for this binary/model, with the reason as tooltip."""
        for combo, (ok, why), tip in ((self.mtp, mtp, MTP_TIP), (self.ngram, ngram, NGRAM_TIP)):
            combo.setEnabled(ok)
            combo.setToolTip(tip if ok else f"Unavailable: {why}")
        self.draft.setEnabled(mtp[0])
        self.draft_default.setEnabled(mtp[0])
        self.draft.setToolTip(DRAFT_TIP if mtp[0] else f"Unavailable: {mtp[1]}")
        for w in (self.n_match, self.n_min, self.n_max):
            w.setEnabled(ngram[0])

    def show_plan(self, plan: Plan | None, error: str = "") -> None:
        self._plan = plan
        self.preview.clear()
        self.extra.setProperty("invalid", bool(error))
        self.extra.style().unpolish(self.extra)
        self.extra.style().polish(self.extra)
        self.extra_error.setText(error)
        if plan is None:
            self.spec_summary.setText("–")
            self.memory.setText("–")
            self.warnings.setText("")
            return
        for f in plan.to_dict()["reasons"]:
            item = QTreeWidgetItem([" ".join(f["args"]), f["reason"]])
            item.setToolTip(0, f["reason"])
            item.setToolTip(1, f["reason"])
            item.setData(0, Qt.ItemDataRole.UserRole, f["args"])
            self.preview.addTopLevelItem(item)
        spec = plan.speculative
        self.spec_summary.setText(f"{spec.summary}" + (f"  ·  {spec.source}" if spec.source not in ("table", "measured") else ""))
        d = spec.draft_n_max
        self.draft_value.setText(f"in effect: {d}" if d is not None else "in effect: n/a (no MTP)")
        if plan.memory is not None:
            self.memory.setText(memory_line(plan.memory))
            self.memory.setToolTip(memory_tooltip(plan.memory))
            self.memory.setProperty("status", plan.memory.status)
            self.memory.style().unpolish(self.memory)
            self.memory.style().polish(self.memory)
        self.warnings.setText("\n".join(f"⚠ {w}" for w in plan.warnings))

    def preview_args(self) -> list[list[str]]:
        """The preview's rows as argv pieces (tests read this, not pixels)."""
        out = []
        for i in range(self.preview.topLevelItemCount()):
            item = self.preview.topLevelItem(i)
            if item is not None:
                out.append(list(item.data(0, Qt.ItemDataRole.UserRole)))
        return out

    def command_text(self) -> str:
        return shlex.join(self._plan.redacted_argv()) if self._plan else ""

    def copy_command(self) -> None:
        QGuiApplication.clipboard().setText(self.command_text())

    # --- tuning ----------------------------------------------------------------------------------
    def show_tuned(self, description: str | None, table: list[dict] | None = None) -> None:
        self.tune_label.setText(description or "not measured on this machine yet")
        self.tune_table.clear()
        if table:
            for r in table:
                tps = r.get("decode_tps", {})
                self.tune_table.addTopLevelItem(QTreeWidgetItem([
                    r.get("label", r.get("setting", "")), f"{tps.get('code', 0):.1f}", f"{tps.get('prose', 0):.1f}",
                    f"{r.get('speedup', 1):.2f}×"]))
            self.tune_table.setVisible(True)
        else:
            self.tune_table.setVisible(False)

    def tuning(self, running: bool) -> None:
        self.tune_btn.setEnabled(not running)
        self.tune_cancel_btn.setVisible(running)
        self.tune_progress.setVisible(running)
        if running:
            self.tune_progress.setRange(0, 0)
