"""Launch setup: the boxes composed, and the model's settings read from and written to them.

The panel only collects choices and shows what the planner decided; it never decides. ``changed``
fires on any per-model edit; the network box says its own changes. Each box has typed methods;
nothing outside reaches into a box's widgets except to read what a user would see.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from llama_launcher.core.plan.controls import LaunchControls
from llama_launcher.core.plan.planner import Plan
from llama_launcher.core.plan.speculative import Availability
from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.ui.launch.advanced_box import AdvancedBox
from llama_launcher.ui.launch.common import set_data
from llama_launcher.ui.launch.memory_box import MemoryBox
from llama_launcher.ui.launch.network_box import NetworkBox
from llama_launcher.ui.launch.preview_box import PreviewBox
from llama_launcher.ui.launch.speculative_box import SpeculativeBox
from llama_launcher.ui.launch.tune_box import TuneBox
from llama_launcher.ui.wheel_guard import WheelGuard


class LaunchPanel(QWidget):
    changed = Signal()  # a per-model setting was edited

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._loading = False
        self.speculative = SpeculativeBox()
        self.tune = TuneBox()
        self.speculative.form.addRow("Measured", self.tune)
        self.memory = MemoryBox()
        self.advanced = AdvancedBox()
        self.network = NetworkBox()
        self.preview = PreviewBox()
        self.unusable = QLabel("")  # instead of the boxes, when the selection cannot be set up (a broken file)
        self.unusable.setObjectName("muted")  # what to do; a broken file's reason stands out under its name
        self.unusable.setWordWrap(True)
        self.unusable.setVisible(False)
        inner = QWidget()
        inner.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        lay = QVBoxLayout(inner)
        lay.addWidget(self.unusable)
        for box in (self.speculative, self.memory, self.advanced, self.network):
            lay.addWidget(box)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setWidget(inner)
        # the command preview is always in view under the settings, not at the end of a page to scroll
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(scroll)
        self.split.addWidget(self.preview)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        self.preview.setMinimumHeight(140)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.split)
        WheelGuard(scroll).guard(inner)
        for signal in (self.speculative.changed, self.memory.changed, self.advanced.changed,
                       self.network.extra_changed):
            signal.connect(self._emit)

    def _emit(self) -> None:
        if not self._loading:
            self.changed.emit()

    def load(self, s: ModelSettings) -> None:
        """Show a model's stored settings (no ``changed`` while loading)."""
        self._loading = True
        try:
            self.speculative.load(s)
            adv = self.advanced
            adv.load_speculative(s)
            set_data(adv.cache_type, s.cache_type)
            self.memory.ctx.setValue(s.ctx or 0)
            adv.threads.setValue(s.threads or 0)
            adv.gpu_layers.setValue(s.gpu_layers if s.gpu_layers is not None else -1)
            adv.vision.setChecked(s.vision)
            self.network.load_extra(s.extra_args)
        finally:
            self._loading = False

    def model_settings(self) -> ModelSettings:
        modes, draft_model, draft_n_max = self.speculative.modes()
        adv = self.advanced
        return ModelSettings(
            modes={**modes, **adv.modes()}, draft_model=draft_model, draft_n_max=draft_n_max,
            **adv.speculative_values(), ctx=self.memory.ctx.value() or None,
            cache_type=adv.cache_type.currentData(), threads=adv.threads.value() or None,
            gpu_layers=None if adv.gpu_layers.value() < 0 else adv.gpu_layers.value(),
            extra_args=self.network.extra.text(), vision=adv.vision.isChecked())

    def set_availability(self, available: dict[str, Availability]) -> None:
        self.speculative.set_availability(available)
        self.advanced.set_availability(available)

    def set_controls(self, controls: LaunchControls) -> None:
        """What applies to this model, binary and machine (core/plan/controls.py): the rest greyed, with why;
        a file that is not a model gets its reason instead of the boxes."""
        ok = controls.setup.ok
        self.unusable.setText(controls.setup.why if not ok and controls.setup.why else "")
        self.unusable.setVisible(not ok and bool(controls.setup.why))
        for box in (self.speculative, self.memory, self.advanced, self.network, self.preview):
            box.setVisible(ok)
        self.advanced.set_applies(controls.ngram_knobs, controls.gpu_layers, controls.method_knobs,
                                  controls.drafter_knobs)
        self.speculative.show_draft_length(controls.draft_length)

    def show_plan(self, plan: Plan | None, error: str = "") -> None:
        extra = self.network.extra
        extra.setProperty("invalid", bool(error))
        extra.style().unpolish(extra)
        extra.style().polish(extra)
        stale = self.preview.show_plan(plan, error)
        self.memory.show_plan(plan, stale)
        self.speculative.summary.setEnabled(not stale)
        if plan is not None:
            self.speculative.show_decision(plan.speculative)
            self.advanced.show_decision(plan.speculative)
        elif not stale:
            self.speculative.show_decision(None)
