"""Context and memory: the context size (Auto: the largest that fits) and the memory the launch will take."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QSpinBox, QVBoxLayout, QWidget

from llama_launcher.core.memory.estimate import memory_line, memory_tooltip
from llama_launcher.core.plan.planner import Plan
from llama_launcher.core.settings.launch import MODEL_SETTINGS
from llama_launcher.ui.launch.common import tip_label


class MemoryBox(QGroupBox):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Context and memory", parent)
        spec = MODEL_SETTINGS["ctx"]
        self.ctx = QSpinBox()
        self.ctx.setRange(0, 4_194_304)  # 0 is Auto; the spin box stops at 4M tokens, the file may say more
        self.ctx.setSingleStep(256)
        self.ctx.setSpecialValueText(spec.unset)
        self.ctx.setToolTip(spec.tip)
        self.ctx.setAccessibleName("Context size")
        self.warnings = QLabel("")
        self.warnings.setObjectName("warnings")
        self.warnings.setWordWrap(True)
        self.warnings.setVisible(False)
        col = QVBoxLayout()
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.ctx)
        col.addWidget(self.warnings)
        self.badge = QLabel("–")
        self.badge.setObjectName("memoryBadge")
        self.badge.setWordWrap(True)
        self.badge.setToolTip("Estimated memory use at the context the server really gets: weights + KV cache (+ the "
                               "MTP layer's KV, + a draft model) against the budget; llama-server's --fit adjusts the "
                               "rest to what it really finds")
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow(tip_label(spec.label, spec.tip), col)
        form.addRow("Memory", self.badge)
        self.ctx.valueChanged.connect(self.changed)

    def show_plan(self, plan: Plan | None, stale: bool) -> None:
        self.badge.setEnabled(not stale)
        if plan is None:
            if not stale:
                self.badge.setText("–")
                self.warnings.setVisible(False)
            return
        if plan.memory is not None:
            self.badge.setText(memory_line(plan.memory))
            self.badge.setToolTip(memory_tooltip(plan.memory))
            self.badge.setProperty("status", plan.memory.status.value)
            self.badge.style().unpolish(self.badge)
            self.badge.style().polish(self.badge)
        self.warnings.setText("\n".join(f"⚠ {w}" for w in plan.context_warnings))
        self.warnings.setVisible(bool(plan.context_warnings))
