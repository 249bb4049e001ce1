"""Advanced (collapsed): the methods' knobs, the newer ngram types, the drafters' knobs, KV cache, threads, GPU layers, vision.

Every control takes its range, words and "not set" text from the settings' declarations
(core/settings/launch.py, the method table's KNOBS), the same ones the settings file and the CLI are
checked against. The newer ngram types (ngram-simple, -map-k, -map-k4v, -cache) have their Auto/On/Off
here with their knobs: Auto runs one only when Tune measured it faster than ngram-mod.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QLabel,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.plan.controls import Applies
from llama_launcher.core.plan.speculative import Availability, SpeculativeDecision
from llama_launcher.core.settings.launch import CACHE_TYPES, MODEL_SETTINGS, ModelSettings
from llama_launcher.core.speculative.methods import BY_ID, KNOBS, METHODS, SpecMode
from llama_launcher.core.state.declared import Setting
from llama_launcher.ui.launch.common import (
    auto_reason_label,
    mode_combo,
    set_data,
    show_auto,
    show_auto_reason,
    tip_label,
    why_label,
)

ADVANCED_METHODS = [m for m in METHODS if m.cli_flag and m.advanced]
NGRAM_KNOBS = [k for m in METHODS if m.kind == "ngram" for k in m.knobs]
DRAFT_KNOBS = ("draft_n_min", "draft_p_min", "draft_sampling", "draft_cache_type")
P_UNSET = -0.01  # the confidence spin box's "not set" value (its special text says llama-server's default)


def _spin(s: Setting, unset_value: int | None = None) -> QSpinBox:
    """A spin box for a declared integer setting; with ``unset_value``, that value means 'not set'."""
    spin = QSpinBox()
    lo = int(s.lo if s.lo is not None else 0)
    spin.setRange(unset_value if unset_value is not None else lo, int(s.hi if s.hi is not None else 1 << 30))
    if unset_value is not None:
        spin.setSpecialValueText(s.unset)
    spin.setValue(s.default if s.default is not None else (unset_value if unset_value is not None else lo))
    spin.setToolTip(s.tip)
    spin.setAccessibleName(s.label)
    return spin


def _choices(s: Setting, values: tuple[str, ...]) -> QComboBox:
    """A combo box for a declared choice: 'not set' (its words), then the choices."""
    combo = QComboBox()
    combo.addItem(s.unset, None)
    for v in values:
        combo.addItem(v, v)
    combo.setToolTip(s.tip)
    combo.setAccessibleName(s.label)
    return combo


class AdvancedBox(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.toggle = QToolButton()
        self.toggle.setText("Advanced")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.body = QFrame()
        self.body.setVisible(False)
        self.form = QFormLayout(self.body)
        self.knobs: dict[str, QSpinBox] = {}
        self.mode: dict[str, QComboBox] = {}
        self.why: dict[str, QLabel] = {}
        self.auto_why: dict[str, QLabel] = {}  # why Auto leaves a newer type off, under its combo
        self.knob_why: dict[str, QLabel] = {}  # why a method's knobs do not apply now, under them (core/plan/controls.py)
        for key in BY_ID["ngram-mod"].knobs:
            self._knob_row(key)
        self.knobs_why = why_label()  # ngram-mod's: its switch is in the box above
        self.form.addRow(self.knobs_why)
        self.knob_why["ngram-mod"] = self.knobs_why
        for m in ADVANCED_METHODS:
            self._method_rows(m.id)
        self._drafter_rows()
        self._other_rows()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.toggle)
        lay.addWidget(self.body)
        self.toggle.toggled.connect(self._toggled)

    # --- rows ---------------------------------------------------------------------------------------
    def _knob_row(self, key: str) -> None:
        self.knobs[key] = _spin(KNOBS[key])
        self.form.addRow(KNOBS[key].label, self.knobs[key])
        self.knobs[key].valueChanged.connect(self.changed)

    def _method_rows(self, mid: str) -> None:
        m = BY_ID[mid]
        combo, why = mode_combo(m.tip, m.label), why_label()
        auto_why = auto_reason_label(combo)
        holder = QWidget()
        col = QVBoxLayout(holder)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(2)
        col.addWidget(combo)
        col.addWidget(why)
        col.addWidget(auto_why)
        self.form.addRow(tip_label(m.label, m.tip), holder)
        self.mode[mid], self.why[mid], self.auto_why[mid] = combo, why, auto_why
        combo.currentIndexChanged.connect(self.changed)
        for key in m.knobs:
            self._knob_row(key)
        if m.knobs:
            self.knob_why[mid] = why_label()
            self.form.addRow(self.knob_why[mid])

    def _drafter_rows(self) -> None:
        """The model-based drafters' knobs (MTP, a head, a draft model): each 'not set' unless chosen."""
        self.draft_n_min = _spin(MODEL_SETTINGS["draft_n_min"], unset_value=-1)
        p = MODEL_SETTINGS["draft_p_min"]
        self.draft_p_min = QDoubleSpinBox()
        self.draft_p_min.setRange(P_UNSET, float(p.hi if p.hi is not None else 1.0))
        self.draft_p_min.setSingleStep(0.05)
        self.draft_p_min.setDecimals(2)
        self.draft_p_min.setSpecialValueText(p.unset)
        self.draft_p_min.setValue(P_UNSET)
        self.draft_p_min.setToolTip(p.tip)
        self.draft_p_min.setAccessibleName(p.label)
        self.draft_sampling = _choices(MODEL_SETTINGS["draft_sampling"], MODEL_SETTINGS["draft_sampling"].choices)
        self.draft_cache_type = _choices(MODEL_SETTINGS["draft_cache_type"], CACHE_TYPES)
        for key, w in zip(DRAFT_KNOBS, (self.draft_n_min, self.draft_p_min, self.draft_sampling,
                                        self.draft_cache_type), strict=True):
            self.form.addRow(tip_label(MODEL_SETTINGS[key].label, MODEL_SETTINGS[key].tip), w)
        self.drafter_why = why_label()  # why the drafters' knobs do not apply now (core/plan/controls.py)
        self.form.addRow(self.drafter_why)
        self.draft_n_min.valueChanged.connect(self.changed)
        self.draft_p_min.valueChanged.connect(self.changed)
        self.draft_sampling.currentIndexChanged.connect(self.changed)
        self.draft_cache_type.currentIndexChanged.connect(self.changed)

    def _other_rows(self) -> None:
        self.cache_type = QComboBox()
        self.cache_type.addItem(MODEL_SETTINGS["cache_type"].unset, None)
        for t in CACHE_TYPES:
            if t != "f16":
                self.cache_type.addItem(t, t)
        self.cache_type.setToolTip(MODEL_SETTINGS["cache_type"].tip)
        self.threads = _spin(MODEL_SETTINGS["threads"], unset_value=0)
        self.gpu_layers = _spin(MODEL_SETTINGS["gpu_layers"], unset_value=-1)
        self.vision = QCheckBox("Enable vision (pass the paired vision projector)")
        self.form.addRow(MODEL_SETTINGS["cache_type"].label, self.cache_type)
        self.form.addRow(MODEL_SETTINGS["threads"].label, self.threads)
        self.form.addRow(MODEL_SETTINGS["gpu_layers"].label, self.gpu_layers)
        self.gpu_why = why_label()
        self.form.addRow(self.gpu_why)
        self.form.addRow(self.vision)
        for w in (self.threads, self.gpu_layers):
            w.valueChanged.connect(self.changed)
        self.cache_type.currentIndexChanged.connect(self.changed)
        self.vision.toggled.connect(self.changed)

    def _toggled(self, on: bool) -> None:
        self.body.setVisible(on)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    # --- settings in and out -----------------------------------------------------------------------
    def load_speculative(self, s: ModelSettings) -> None:
        """The knobs, the newer types' modes and the drafters' knobs of a model's stored settings."""
        for key, spin in self.knobs.items():
            spin.setValue(getattr(s, key))
        for mid, combo in self.mode.items():
            set_data(combo, s.mode(mid).value)
        self.draft_n_min.setValue(s.draft_n_min if s.draft_n_min is not None else -1)
        self.draft_p_min.setValue(s.draft_p_min if s.draft_p_min is not None else P_UNSET)
        set_data(self.draft_sampling, s.draft_sampling)
        set_data(self.draft_cache_type, s.draft_cache_type)

    def modes(self) -> dict[str, SpecMode]:
        return {mid: SpecMode(c.currentData()) for mid, c in self.mode.items()
                if SpecMode(c.currentData()) is not SpecMode.AUTO}

    def speculative_values(self) -> dict[str, Any]:
        """The ModelSettings fields these controls hold (knobs and drafters' knobs)."""
        n_min = self.draft_n_min.value()
        p_min = self.draft_p_min.value()
        return {**{key: spin.value() for key, spin in self.knobs.items()},
                "draft_n_min": None if n_min < 0 else n_min,
                "draft_p_min": None if p_min < 0 else round(p_min, 2),
                "draft_sampling": self.draft_sampling.currentData(),
                "draft_cache_type": self.draft_cache_type.currentData()}

    # --- the plan out -------------------------------------------------------------------------------
    def set_availability(self, available: dict[str, Availability]) -> None:
        """A method that cannot run here (or whose knobs this binary lacks) is disabled, with the reason."""
        for m in METHODS:
            ok, why = available.get(m.id, Availability(False, "unknown"))
            for key in m.knobs:
                if key in self.knobs:
                    self.knobs[key].setEnabled(ok)
            if m.id in self.mode:
                self.mode[m.id].setEnabled(ok)
                self.why[m.id].setText(f"Off: {why}")
                self.why[m.id].setVisible(not ok)
                show_auto_reason(self.mode[m.id], self.auto_why[m.id])
        drafter = any(a.ok for mid, a in available.items() if BY_ID[mid].kind == "model")
        for w in (self.draft_n_min, self.draft_p_min, self.draft_sampling, self.draft_cache_type):
            w.setEnabled(drafter)

    def show_decision(self, spec: SpeculativeDecision) -> None:
        show_auto(self.mode, spec, self.auto_why)

    def set_applies(self, knobs: Applies, gpu_layers: Applies, method_knobs: dict[str, Applies] | None = None,
                    drafter_knobs: Applies | None = None) -> None:
        """Grey what does not apply to this model, binary and machine, with the reason under it (each ngram
        method's knobs, the drafters' knobs, GPU layers). Called after set_availability, so it only ever greys more."""
        for mid, applies in (method_knobs or {"ngram-mod": knobs}).items():
            for key in BY_ID[mid].knobs:
                if key in self.knobs and not applies.ok:
                    self.knobs[key].setEnabled(False)
            if mid in self.knob_why:
                self._say(self.knob_why[mid], applies)
        if drafter_knobs is not None:
            for w in (self.draft_n_min, self.draft_p_min, self.draft_sampling, self.draft_cache_type):
                if not drafter_knobs.ok:
                    w.setEnabled(False)
            self._say(self.drafter_why, drafter_knobs)
        self.gpu_layers.setEnabled(gpu_layers.ok)
        self._say(self.gpu_why, gpu_layers)

    @staticmethod
    def _say(label: QLabel, applies: Applies) -> None:
        label.setText(applies.why if not applies.ok else "")
        label.setVisible(not applies.ok and bool(applies.why))

    def set_projector(self, mmproj: list[str]) -> None:
        """Vision needs the model's mmproj file: without one next to the model the box is off and says why."""
        self.vision.setEnabled(bool(mmproj))
        if mmproj:
            name = mmproj[0].replace("\\", "/").rsplit("/", 1)[-1]
            self.vision.setText(f"Enable vision (pass the paired projector {name})")
            self.vision.setToolTip("Lets the model read images sent in chat (--mmproj)")
        else:
            self.vision.setText("Enable vision (no vision projector file, mmproj-*.gguf, next to this model)")
            self.vision.setToolTip("Vision needs the model's vision projector (an mmproj-*.gguf file) in the same folder")
