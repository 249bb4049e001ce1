"""Launch setup: speculative decoding, context and memory, network, extra arguments, command preview.

The panel only collects choices and shows what the planner decided; it never decides itself.
``changed`` fires on any per-model edit and ``network_changed`` on a port or LAN edit; the window
re-plans and calls :meth:`show_plan`. The speculative rows come from the method table
(``core.spec_methods``), so a new method needs no new widget code here.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
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
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.memory.estimate import memory_line, memory_tooltip
from llama_launcher.core.plan.planner import Plan
from llama_launcher.core.plan.speculative import Availability
from llama_launcher.core.settings.launch import AUTO_PORT, CACHE_TYPES, ModelSettings
from llama_launcher.core.speculative.measured import MeasuredRow
from llama_launcher.core.speculative.methods import BY_ID, DRAFT_N_DEFAULT, KNOBS, METHODS, SpecSource
from llama_launcher.core.speculative.pairing import DraftOption
from llama_launcher.core.state.command_line import command_line, shown_command_line
from llama_launcher.core.tuning.tune import TuneProgress
from llama_launcher.ui.resources import icon
from llama_launcher.ui.wheel_guard import WheelGuard

MODES = [("Auto", "auto"), ("On", "on"), ("Off", "off")]
TUNE_TIP = ("Measure the speculative settings this model and llama-server support, on this machine, and use "
            "the fastest from then on (a few minutes; the server must be stopped)")
CTX_TIP = "Context size in tokens. Auto picks the largest that fits the memory budget, up to the model's native context."
PORT_TIP = ("The port llama-server listens on. A fixed port keeps the address your editor, Open WebUI or scripts use "
            "the same at every launch; Auto picks a free one each time.")
# rows with an Auto/On/Off control: the table's methods that have a mode of their own
MODE_METHODS = [m for m in METHODS if m.cli_flag]
HEAD_METHODS = {m.id for m in METHODS if m.needs == "head"}


def _mode_combo(tip: str, name: str) -> QComboBox:
    c = QComboBox()
    for label, value in MODES:
        c.addItem(label, value)
    c.setToolTip(tip)
    c.setAccessibleName(name)
    # the Auto item says why it is on or off; long reasons must not widen the form
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(14)
    return c


def _set_data(combo: QComboBox, value: object) -> None:
    i = combo.findData(value)
    combo.setCurrentIndex(i if i >= 0 else 0)


def _why_label() -> QLabel:
    lbl = QLabel("")
    lbl.setObjectName("why")
    lbl.setWordWrap(True)
    lbl.setVisible(False)
    return lbl


class LaunchPanel(QWidget):
    changed = Signal()
    network_changed = Signal()
    tune_requested = Signal()
    tune_cancel = Signal()
    lan_toggled = Signal(bool)
    regenerate_key = Signal()
    use_free_port = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._loading = False
        self._plan: Plan | None = None
        self._plan_is_stale = False

        # --- speculative decoding: one row per method of the table with a mode of its own
        spec_box = QGroupBox("Speculative decoding")
        spec_form = QFormLayout(spec_box)
        spec_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.mode: dict[str, QComboBox] = {}
        self.why: dict[str, QLabel] = {}
        self._rows: dict[str, QWidget] = {}
        self._draft_choice = "auto"
        self._auto_pick: DraftOption | None = None
        self._spec_form = spec_form
        for m in MODE_METHODS:
            combo = _mode_combo(m.tip, m.label)
            why = _why_label()
            row = QVBoxLayout()
            row.setSpacing(2)
            row.addWidget(combo)
            row.addWidget(why)
            holder = QWidget()
            holder.setLayout(row)
            row.setContentsMargins(0, 0, 0, 0)
            spec_form.addRow(self._label(m.label, m.tip), holder)
            self.mode[m.id], self.why[m.id], self._rows[m.id] = combo, why, holder
        self.mtp, self.ngram = self.mode["mtp"], self.mode["ngram-mod"]  # the two everyone looks for
        # the draft model: Auto, Off, or one of the catalog's compatible models
        self.draft_model = QComboBox()
        self.draft_model.setAccessibleName("Draft model")
        self.draft_model.setToolTip(BY_ID["draft"].tip)
        self.draft_model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.draft_model.setMinimumContentsLength(14)
        self.draft_why = _why_label()
        self.draft_others = QLabel("")
        self.draft_others.setObjectName("muted")
        self.draft_others.setWordWrap(True)
        draft_col = QVBoxLayout()
        draft_col.setSpacing(2)
        draft_col.setContentsMargins(0, 0, 0, 0)
        draft_col.addWidget(self.draft_model)
        draft_col.addWidget(self.draft_why)
        draft_col.addWidget(self.draft_others)
        draft_holder = QWidget()
        draft_holder.setLayout(draft_col)
        spec_form.addRow(self._label("Draft model", BY_ID["draft"].tip), draft_holder)
        self.why["draft"] = self.draft_why
        knob = KNOBS["draft_n_max"]
        self.draft_default = QCheckBox("Default")
        self.draft_default.setChecked(True)
        self.draft_default.setToolTip("Use the planner's draft length (2 on a GPU, 3 on CPU/Mac, or the measured best)")
        self.draft = QSlider(Qt.Orientation.Horizontal)
        self.draft.setRange(int(knob.lo or 0), int(knob.hi or 0))
        self.draft.setValue(DRAFT_N_DEFAULT)
        self.draft.setPageStep(1)
        self.draft.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.draft.setToolTip(knob.tip)
        self.draft.setAccessibleName("Draft length")
        self.draft.setMinimumWidth(80)
        self.draft_value = QLabel("")
        self.draft_value.setWordWrap(True)
        draft_row = QHBoxLayout()
        draft_row.addWidget(self.draft_default)
        draft_row.addWidget(self.draft, 1)
        draft_row.addWidget(self.draft_value)
        spec_form.addRow(self._label("Draft length", knob.tip), draft_row)
        self.spec_summary = QLabel("")
        self.spec_summary.setWordWrap(True)
        spec_form.addRow("In effect", self.spec_summary)
        # tune
        self.tune_label = QLabel("not measured on this machine yet")
        self.tune_label.setObjectName("measured")
        self.tune_label.setWordWrap(True)
        self.tune_btn = QPushButton(icon("tune"), "Tune…")
        self.tune_btn.setToolTip(TUNE_TIP)
        self.tune_cancel_btn = QPushButton("Cancel")
        self.tune_cancel_btn.setVisible(False)
        self.tune_progress = QProgressBar()
        self.tune_progress.setVisible(False)
        self.tune_stage = QLabel("")
        self.tune_stage.setWordWrap(True)
        self.tune_stage.setVisible(False)
        self.tune_table = QTreeWidget()
        self.tune_table.setHeaderLabels(["Setting", "Code t/s", "Prose t/s", "Accepted", "vs off"])
        self.tune_table.setRootIsDecorated(False)
        self.tune_table.setVisible(False)
        self.tune_table.setMaximumHeight(180)
        tune_row = QHBoxLayout()
        tune_row.addWidget(self.tune_label, 1)
        tune_row.addWidget(self.tune_btn)
        tune_row.addWidget(self.tune_cancel_btn)
        spec_form.addRow("Measured", tune_row)
        spec_form.addRow(self.tune_progress)
        spec_form.addRow(self.tune_stage)
        spec_form.addRow(self.tune_table)

        # --- context and memory
        self.ctx = QSpinBox()
        self.ctx.setRange(0, 4_194_304)
        self.ctx.setSingleStep(256)
        self.ctx.setSpecialValueText("Auto (largest that fits)")
        self.ctx.setToolTip(CTX_TIP)
        self.ctx.setAccessibleName("Context size")
        self.ctx_warnings = QLabel("")
        self.ctx_warnings.setObjectName("warnings")
        self.ctx_warnings.setWordWrap(True)
        self.ctx_warnings.setVisible(False)
        ctx_col = QVBoxLayout()
        ctx_col.setContentsMargins(0, 0, 0, 0)
        ctx_col.addWidget(self.ctx)
        ctx_col.addWidget(self.ctx_warnings)
        self.memory = QLabel("–")
        self.memory.setObjectName("memoryBadge")
        self.memory.setWordWrap(True)
        self.memory.setToolTip("Estimated memory use at the context the server really gets: weights + KV cache (+ the "
                               "MTP layer's KV, + a draft model) against the budget; llama-server's --fit adjusts the "
                               "rest to what it really finds")
        mem_box = QGroupBox("Context and memory")
        mem_form = QFormLayout(mem_box)
        mem_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        mem_form.addRow(self._label("Context", CTX_TIP), ctx_col)
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
        self.knob_spins: dict[str, QSpinBox] = {}
        for key in BY_ID["ngram-mod"].knobs:
            k = KNOBS[key]
            spin = QSpinBox()
            spin.setRange(int(k.lo or 0), int(k.hi or 0))
            spin.setValue(k.default)
            spin.setToolTip(k.tip)
            self.knob_spins[key] = spin
            adv_form.addRow(k.label, spin)
        self.n_match, self.n_min, self.n_max = (self.knob_spins[k] for k in ("ngram_n_match", "ngram_n_min", "ngram_n_max"))
        self.cache_type = QComboBox()
        self.cache_type.addItem("Default (f16)", None)
        for t in CACHE_TYPES:
            if t != "f16":
                self.cache_type.addItem(t, t)
        self.cache_type.setToolTip("KV cache type (--cache-type-k/-v): q8_0 halves the cache's memory with little loss")
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
        adv_form.addRow("KV cache type", self.cache_type)
        adv_form.addRow("Threads", self.threads)
        adv_form.addRow("GPU layers", self.gpu_layers)
        adv_form.addRow(self.vision)

        # --- network and extra arguments
        self.port_auto = QCheckBox("Auto")
        self.port_auto.setToolTip("Pick a free port at each launch")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(8080)
        self.port.setAccessibleName("Port")
        self.port.setToolTip(PORT_TIP)
        self.port_free_btn = QPushButton("Use a free port")
        self.port_free_btn.setVisible(False)
        port_row = QHBoxLayout()
        port_row.addWidget(self.port)
        port_row.addWidget(self.port_auto)
        port_row.addWidget(self.port_free_btn)
        port_row.addStretch(1)
        self.port_problem = QLabel("")
        self.port_problem.setObjectName("failureReason")
        self.port_problem.setWordWrap(True)
        self.port_problem.setVisible(False)
        self.lan = QCheckBox("Allow other devices on my network (LAN)")
        self.lan.setToolTip("Listen on all interfaces instead of 127.0.0.1. Requires an API key, which every client "
                            "must send as 'Authorization: Bearer <key>'. The key grants chat only: server-side tools, "
                            "folders and settings stay refused.")
        self.api_key = QLineEdit()
        self.api_key.setReadOnly(True)
        self.api_key.setPlaceholderText("generated when LAN access is turned on")
        self.api_key.setAccessibleName("API key")
        self.copy_key = QPushButton(icon("copy"), "Copy")
        self.copy_key.setToolTip("Copy the API key")
        self.new_key = QPushButton("New key")
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key, 1)
        key_row.addWidget(self.copy_key)
        key_row.addWidget(self.new_key)
        key_row.setContentsMargins(0, 0, 0, 0)
        self.key_widget = QWidget()
        self.key_widget.setLayout(key_row)
        self.lan_urls = QLabel("")
        self.lan_urls.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lan_urls.setWordWrap(True)
        self.lan_urls.setAccessibleName("Addresses for other devices")
        self.copy_lan = QPushButton(icon("copy"), "Copy")
        self.copy_lan.setToolTip("Copy the first address")
        lan_row = QHBoxLayout()
        lan_row.addWidget(self.lan_urls, 1)
        lan_row.addWidget(self.copy_lan, 0, Qt.AlignmentFlag.AlignTop)
        lan_row.setContentsMargins(0, 0, 0, 0)
        self.lan_widget = QWidget()
        self.lan_widget.setLayout(lan_row)
        self.extra = QLineEdit()
        self.extra.setPlaceholderText("extra llama-server arguments, e.g. --temp 0.7 --top-k 40")
        self.extra.setToolTip("Passed last, so they win. Flags the launcher owns (model, host, port, API key, "
                              "projector, downloads) are refused with the reason.")
        self.extra.setAccessibleName("Extra arguments")
        self.extra_error = QLabel("")
        self.extra_error.setObjectName("failureReason")
        self.extra_error.setWordWrap(True)
        self.extra_error.setVisible(False)
        net_box = QGroupBox("Network and extra arguments")
        net_form = QFormLayout(net_box)
        net_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        net_form.addRow(self._label("Port", PORT_TIP), port_row)
        net_form.addRow(self.port_problem)
        net_form.addRow(self.lan)
        net_form.addRow("API key", self.key_widget)
        net_form.addRow("Other devices use", self.lan_widget)
        self._net_form = net_form
        self._show_lan_rows(False)
        net_form.addRow("Extra arguments", self.extra)

        # --- command preview
        self.preview = QTreeWidget()
        self.preview.setObjectName("commandPreviewTree")
        self.preview.setHeaderLabels(["Flag", "Why"])
        self.preview.setRootIsDecorated(False)
        self.preview.setAlternatingRowColors(True)
        self.preview.setMinimumHeight(160)
        self.preview.setColumnWidth(0, 260)
        self.copy_cmd = QPushButton(icon("copy"), "Copy command")
        self.copy_cmd.setToolTip("Copy the exact command (the API key is never part of it)")
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setObjectName("warnings")
        prev_box = QGroupBox("Command preview")
        prev_lay = QVBoxLayout(prev_box)
        prev_lay.addWidget(self.extra_error)
        prev_lay.addWidget(self.preview)
        copy_row = QHBoxLayout()
        copy_row.addWidget(self.warnings, 1)
        copy_row.addWidget(self.copy_cmd, 0, Qt.AlignmentFlag.AlignTop)
        prev_lay.addLayout(copy_row)

        inner = QWidget()
        inner.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
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
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        WheelGuard(scroll).guard(inner)

        for combo in self.mode.values():
            combo.currentIndexChanged.connect(self._emit)
        self.draft_model.currentIndexChanged.connect(self._emit)
        self.cache_type.currentIndexChanged.connect(self._emit)
        for spin in (self.ctx, *self.knob_spins.values(), self.threads, self.gpu_layers):
            spin.valueChanged.connect(self._emit)
        self.draft.valueChanged.connect(self._draft_moved)
        self.draft_default.toggled.connect(self._emit)
        self.vision.toggled.connect(self._emit)
        self.extra.textChanged.connect(self._emit)
        self.lan.toggled.connect(self._lan)
        self.port.valueChanged.connect(self._network)
        self.port_auto.toggled.connect(self._port_auto_toggled)
        self.port_free_btn.clicked.connect(self.use_free_port)
        self.adv_toggle.toggled.connect(self._toggle_adv)
        self.copy_cmd.clicked.connect(self.copy_command)
        self.copy_key.clicked.connect(lambda: self._copy(self.copy_key, self.api_key.text()))
        self.copy_lan.clicked.connect(lambda: self._copy(self.copy_lan, self.lan_urls.property("first") or ""))
        self.new_key.clicked.connect(self.regenerate_key)
        self.tune_btn.clicked.connect(self.tune_requested)
        self.tune_cancel_btn.clicked.connect(self.tune_cancel)

    @staticmethod
    def _label(text: str, tip: str) -> QLabel:
        lbl = QLabel(text)
        lbl.setToolTip(tip)
        return lbl

    def _copy(self, button: QPushButton, text: str) -> None:
        """Copy and say so on the button for a moment: a silent copy leaves people unsure."""
        QGuiApplication.clipboard().setText(text)
        old = button.text()
        if old == "Copied":
            return
        button.setText("Copied")
        QTimer.singleShot(1500, button, lambda: button.setText(old))

    def _toggle_adv(self, on: bool) -> None:
        self.adv.setVisible(on)
        self.adv_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def _draft_moved(self) -> None:
        if not self._loading:
            self.draft_default.setChecked(False)
        self._emit()

    def _show_lan_rows(self, on: bool) -> None:
        self._net_form.setRowVisible(self.key_widget, on)
        self._net_form.setRowVisible(self.lan_widget, on)

    def _lan(self, on: bool) -> None:
        self._show_lan_rows(on)
        if not self._loading:
            self.lan_toggled.emit(on)
        self._network()

    def _port_auto_toggled(self, on: bool) -> None:
        self.port.setEnabled(not on)
        self._network()

    def _network(self) -> None:
        if not self._loading:
            self.network_changed.emit()

    def _emit(self) -> None:
        if not self._loading:
            self.changed.emit()

    # --- settings in/out -------------------------------------------------------------------------
    def set_projector(self, mmproj: list[str]) -> None:
        """Vision needs the model's mmproj file: without one next to the model the box is off and says why."""
        self.vision.setEnabled(bool(mmproj))
        if mmproj:
            name = mmproj[0].replace("\\", "/").rsplit("/", 1)[-1]
            self.vision.setText(f"Enable vision (pass the paired projector {name})")
            self.vision.setToolTip("Lets the model read images sent in chat (--mmproj)")
        else:
            self.vision.setText("Enable vision (no mmproj projector next to this model)")
            self.vision.setToolTip("Vision needs the model's mmproj .gguf in the same folder")

    def load(self, s: ModelSettings) -> None:
        self._loading = True
        try:
            for mid, combo in self.mode.items():
                _set_data(combo, s.mode(mid))
            self._draft_choice = "off" if s.mode("draft") == "off" else (s.draft_model or "auto")
            _set_data(self.draft_model, self._draft_choice)
            self.draft_default.setChecked(s.draft_n_max is None)
            if s.draft_n_max is not None:
                self.draft.setValue(s.draft_n_max)
            for key, spin in self.knob_spins.items():
                spin.setValue(getattr(s, key))
            _set_data(self.cache_type, s.cache_type)
            self.ctx.setValue(s.ctx or 0)
            self.threads.setValue(s.threads or 0)
            self.gpu_layers.setValue(s.gpu_layers if s.gpu_layers is not None else -1)
            self.extra.setText(s.extra_args)
            self.vision.setChecked(s.vision)
        finally:
            self._loading = False

    def load_network(self, port: int, lan: bool, api_key: str) -> None:
        self._loading = True
        try:
            self.port_auto.setChecked(port == AUTO_PORT)
            self.port.setEnabled(port != AUTO_PORT)
            if port != AUTO_PORT:
                self.port.setValue(port)
            self.lan.setChecked(lan)
            self._show_lan_rows(lan)
            self.api_key.setText(api_key if lan else "")
        finally:
            self._loading = False

    def show_auto_port(self, port: int) -> None:
        """With Auto, the greyed number is the port the next launch really uses (the preview's)."""
        if self.port_auto.isChecked():
            self._loading = True
            try:
                self.port.setValue(port)
            finally:
                self._loading = False

    def port_setting(self) -> int:
        return AUTO_PORT if self.port_auto.isChecked() else self.port.value()

    def model_settings(self) -> ModelSettings:
        modes = {mid: combo.currentData() for mid, combo in self.mode.items() if combo.currentData() != "auto"}
        choice = self.draft_model.currentData() or "auto"
        if choice == "off":
            modes["draft"] = "off"
        elif choice != "auto":
            modes["draft"] = "on"
        return ModelSettings(
            modes=modes, draft_model=choice if choice not in ("auto", "off") else None,
            draft_n_max=None if self.draft_default.isChecked() else self.draft.value(),
            ngram_n_match=self.n_match.value(), ngram_n_min=self.n_min.value(), ngram_n_max=self.n_max.value(),
            ctx=self.ctx.value() or None, cache_type=self.cache_type.currentData(),
            threads=self.threads.value() or None,
            gpu_layers=None if self.gpu_layers.value() < 0 else self.gpu_layers.value(),
            extra_args=self.extra.text(), vision=self.vision.isChecked())

    # --- plan out ------------------------------------------------------------------------------
    def set_drafts(self, options: list[DraftOption], auto_pick: DraftOption | None) -> None:
        """Offer the catalog's compatible draft models; say in a line why the others are not offered."""
        current = self.draft_model.currentData() or self._draft_choice
        self._auto_pick = auto_pick
        self._loading = True
        try:
            self.draft_model.clear()
            self.draft_model.addItem(f"Auto ({auto_pick.name})" if auto_pick else "Auto (none suitable)", "auto")
            self.draft_model.addItem("Off", "off")
            for o in options:
                if o.ok and o.method == "draft":
                    self.draft_model.addItem(o.name, o.path)
                    self.draft_model.setItemData(self.draft_model.count() - 1, o.reason, Qt.ItemDataRole.ToolTipRole)
            _set_data(self.draft_model, current)
        finally:
            self._loading = False
        others = [o for o in options if not o.ok and o.method == "draft"]
        if others:
            shown = "; ".join(f"{o.name}: {o.reason}" for o in others[:3])
            more = f" (and {len(others) - 3} more)" if len(others) > 3 else ""
            self.draft_others.setText(f"Not offered: {shown}{more}")
        else:
            self.draft_others.setText("")
        self.draft_others.setVisible(bool(others))
        heads = {o.method for o in options if o.ok and o.method in HEAD_METHODS}
        for mid in HEAD_METHODS:  # a head row appears only when a head trained for this model exists
            self._spec_form.setRowVisible(self._rows[mid], mid in heads)

    def set_availability(self, available: dict[str, Availability]) -> None:
        """Disable what cannot work for this binary/model, and say why in words next to the control."""
        for mid, combo in self.mode.items():
            ok, why = available.get(mid, Availability(False, "unknown"))
            combo.setEnabled(ok)
            combo.setToolTip(BY_ID[mid].tip if ok else f"Unavailable: {why}")
            self.why[mid].setText(f"Off: {why}")
            self.why[mid].setVisible(not ok)
        ok, why = available.get("draft", Availability(False, "unknown"))
        self.draft_why.setText(f"Off: {why}")
        self.draft_why.setVisible(not ok and self.draft_model.currentData() != "off")
        model_ok = any(a.ok for mid, a in available.items() if BY_ID[mid].kind == "model")
        self.draft.setEnabled(model_ok)
        self.draft_default.setEnabled(model_ok)
        ngram_ok = available.get("ngram-mod", Availability(False, "")).ok
        for w in self.knob_spins.values():
            w.setEnabled(ngram_ok)

    def show_plan(self, plan: Plan | None, error: str = "") -> None:
        """Show a plan; with an error, keep the last valid plan on screen, greyed, under the error."""
        self.extra.setProperty("invalid", bool(error))
        self.extra.style().unpolish(self.extra)
        self.extra.style().polish(self.extra)
        self.extra_error.setText(error)
        self.extra_error.setVisible(bool(error))
        stale = plan is None and bool(error) and self._plan is not None
        self._plan_is_stale = stale
        for w in (self.preview, self.memory, self.spec_summary):
            w.setEnabled(not stale)
        if plan is None:
            if not stale:
                self._plan = None
                self.preview.clear()
                self.spec_summary.setText("–")
                self.memory.setText("–")
                self.warnings.setText("")
                self.ctx_warnings.setVisible(False)
            self.copy_cmd.setEnabled(False)
            return
        self._plan = plan
        self.copy_cmd.setEnabled(True)
        self.preview.clear()
        for f in plan.shown_flags():
            item = QTreeWidgetItem([shown_command_line(f.args) or "(environment)", f.reason])
            item.setToolTip(0, f.reason)
            item.setToolTip(1, f.reason)
            item.setData(0, Qt.ItemDataRole.UserRole, f.args)
            self.preview.addTopLevelItem(item)
        spec = plan.speculative
        self._show_auto(spec)
        self.spec_summary.setText(spec.summary + (f"  ·  {spec.source}" if spec.source not in (SpecSource.RULES, SpecSource.MEASURED) else ""))
        d = spec.draft_n_max
        model_based = any(BY_ID[m].kind == "model" for m in spec.methods)
        self.draft_value.setText(f"in effect: {d}" if d is not None else
                                 "in effect: the head's own" if model_based else "in effect: n/a (no drafter)")
        if plan.memory is not None:
            self.memory.setText(memory_line(plan.memory))
            self.memory.setToolTip(memory_tooltip(plan.memory))
            self.memory.setProperty("status", plan.memory.status)
            self.memory.style().unpolish(self.memory)
            self.memory.style().polish(self.memory)
        self.ctx_warnings.setText("\n".join(f"⚠ {w}" for w in plan.context_warnings))
        self.ctx_warnings.setVisible(bool(plan.context_warnings))
        others = [w for w in plan.warnings if w not in plan.context_warnings]
        self.warnings.setText("\n".join(f"⚠ {w}" for w in others))

    def _show_auto(self, spec) -> None:
        """Each Auto item says what Auto does right now: on, or off and why (from the planner)."""
        for mid, combo in self.mode.items():
            if mid in spec.methods:
                text = "Auto (on)"
            elif mid in spec.auto_off:
                text = f"Auto (off: {spec.auto_off[mid]})"
            else:
                text = "Auto"
            combo.setItemText(0, text)
            combo.setItemData(0, text, Qt.ItemDataRole.ToolTipRole)
        i = self.draft_model.findData("auto")
        if i < 0:
            return
        name = self._auto_pick.name if self._auto_pick else None
        if "draft" in spec.methods and spec.draft is not None:
            text = f"Auto ({spec.draft.name})"
        elif name and "draft" in spec.auto_off:
            text = f"Auto (off: {spec.auto_off['draft']}; would use {name})"
        elif name:
            text = f"Auto ({name}, not used now)"
        else:
            text = "Auto (none suitable)"
        self.draft_model.setItemText(i, text)
        self.draft_model.setItemData(i, text, Qt.ItemDataRole.ToolTipRole)

    def show_lan_urls(self, urls: list[str], port: int) -> None:
        if urls:
            self.lan_urls.setText("\n".join(urls))
            self.lan_urls.setProperty("first", urls[0])
        else:
            self.lan_urls.setText(f"this computer has no network address other devices can reach (port {port})")
            self.lan_urls.setProperty("first", "")
        self.copy_lan.setEnabled(bool(urls))

    def show_port_problem(self, text: str) -> None:
        self.port_problem.setText(text)
        self.port_problem.setVisible(bool(text))
        self.port_free_btn.setVisible(bool(text))

    def preview_args(self) -> list[list[str]]:
        """The preview's rows as argv pieces (tests read this, not pixels)."""
        out = []
        for i in range(self.preview.topLevelItemCount()):
            item = self.preview.topLevelItem(i)
            if item is not None:
                out.append(list(item.data(0, Qt.ItemDataRole.UserRole)))
        return out

    def command_text(self) -> str:
        """The command Copy command copies: pasted into this platform's shell, it runs exactly the argv."""
        return command_line(self._plan.redacted_argv()) if self._plan and not self._plan_is_stale else ""

    def copy_command(self) -> None:
        self._copy(self.copy_cmd, self.command_text())

    # --- tuning ----------------------------------------------------------------------------------
    def show_tuned(self, description: str | None, table: list[MeasuredRow] | None = None, note: str = "") -> None:
        self.tune_label.setText((description or "not measured on this machine yet") + (f"\n{note}" if note else ""))
        self.tune_table.clear()
        if table:
            for r in table:
                acc = r.acceptance
                self.tune_table.addTopLevelItem(QTreeWidgetItem([
                    r.label, f"{r.decode_tps.get('code', 0):.1f}", f"{r.decode_tps.get('prose', 0):.1f}",
                    f"{acc * 100:.0f}%" if acc is not None else "–", f"{r.speedup:.2f}×"]))
            self.tune_table.setVisible(True)
        else:
            self.tune_table.setVisible(False)

    def tuning(self, running: bool) -> None:
        self.tune_btn.setEnabled(not running)
        self.tune_cancel_btn.setVisible(running)
        self.tune_cancel_btn.setEnabled(True)
        self.tune_progress.setVisible(running)
        self.tune_stage.setVisible(running)
        if running:
            self.tune_progress.setRange(0, 0)
            self.tune_stage.setText("starting…")

    def show_tune_progress(self, p: TuneProgress) -> None:
        self.tune_progress.setRange(0, 1000)
        self.tune_progress.setValue(round(p.fraction * 1000))  # moves within a step, as the time left does
        self.tune_stage.setText(p.text())
