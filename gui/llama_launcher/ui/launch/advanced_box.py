"""Advanced (collapsed): the methods' knobs, KV cache type, threads, GPU layers and vision.

Every control takes its range, words and "not set" text from the settings' declarations
(core/settings/launch.py), the same ones the settings file and the CLI are checked against.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.plan.controls import Applies
from llama_launcher.core.settings.launch import CACHE_TYPES, MODEL_SETTINGS
from llama_launcher.core.speculative.methods import BY_ID, KNOBS
from llama_launcher.core.state.declared import Setting
from llama_launcher.ui.launch.common import why_label


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
        form = QFormLayout(self.body)
        self.knobs: dict[str, QSpinBox] = {}
        for key in BY_ID["ngram-mod"].knobs:
            self.knobs[key] = _spin(KNOBS[key])
            form.addRow(KNOBS[key].label, self.knobs[key])
        self.knobs_why = why_label()  # why the knobs do not apply now (core/plan/controls.py)
        form.addRow(self.knobs_why)
        self.cache_type = QComboBox()
        self.cache_type.addItem(MODEL_SETTINGS["cache_type"].unset, None)
        for t in CACHE_TYPES:
            if t != "f16":
                self.cache_type.addItem(t, t)
        self.cache_type.setToolTip(MODEL_SETTINGS["cache_type"].tip)
        self.threads = _spin(MODEL_SETTINGS["threads"], unset_value=0)
        self.gpu_layers = _spin(MODEL_SETTINGS["gpu_layers"], unset_value=-1)
        self.vision = QCheckBox("Enable vision (pass the paired mmproj projector)")
        form.addRow(MODEL_SETTINGS["cache_type"].label, self.cache_type)
        form.addRow(MODEL_SETTINGS["threads"].label, self.threads)
        form.addRow(MODEL_SETTINGS["gpu_layers"].label, self.gpu_layers)
        self.gpu_why = why_label()
        form.addRow(self.gpu_why)
        form.addRow(self.vision)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.toggle)
        lay.addWidget(self.body)
        self.toggle.toggled.connect(self._toggled)
        for w in (*self.knobs.values(), self.threads, self.gpu_layers):
            w.valueChanged.connect(self.changed)
        self.cache_type.currentIndexChanged.connect(self.changed)
        self.vision.toggled.connect(self.changed)

    def _toggled(self, on: bool) -> None:
        self.body.setVisible(on)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def set_knobs_enabled(self, ok: bool) -> None:
        for w in self.knobs.values():
            w.setEnabled(ok)

    def set_applies(self, knobs: Applies, gpu_layers: Applies) -> None:
        """Grey what does not apply to this model, binary and machine, with the reason under it."""
        for w in self.knobs.values():
            w.setEnabled(knobs.ok)
        self.knobs_why.setText(knobs.why)
        self.knobs_why.setVisible(not knobs.ok and bool(knobs.why))
        self.gpu_layers.setEnabled(gpu_layers.ok)
        self.gpu_why.setText(gpu_layers.why)
        self.gpu_why.setVisible(not gpu_layers.ok and bool(gpu_layers.why))

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
