"""Speculative decoding: one Auto/On/Off row per method of the table, the draft model, the draft length.

The rows come from the method table (core/speculative/methods.py), so a new method needs no new
widget code. Each Auto item says what Auto does right now and, when a method is off, why
(the planner's ``auto_off``); a method that cannot run here is disabled with the reason beside it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGraphicsOpacityEffect,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.models.sidecar import head_line
from llama_launcher.core.plan.controls import DraftLength
from llama_launcher.core.plan.speculative import Availability, SpeculativeDecision
from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.core.speculative.methods import (
    BY_ID,
    DRAFT_N_DEFAULT,
    KNOBS,
    METHODS,
    SpecMode,
    SpecSource,
)
from llama_launcher.core.speculative.pairing import DraftOption
from llama_launcher.ui.launch.common import (
    auto_reason_label,
    mode_combo,
    set_data,
    show_auto,
    show_auto_reason,
    tip_label,
    why_label,
)

# rows with an Auto/On/Off control: the table's methods that have a mode of their own (the newer ngram
# types have theirs in the Advanced box)
MODE_METHODS = [m for m in METHODS if m.cli_flag and not m.advanced]
HEAD_METHODS = {m.id for m in METHODS if m.needs == "head"}


class SpeculativeBox(QGroupBox):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Speculative decoding", parent)
        self._loading = False
        self._draft_choice = "auto"
        self._auto_pick: DraftOption | None = None
        self.form = QFormLayout(self)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.mode: dict[str, QComboBox] = {}
        self.why: dict[str, QLabel] = {}
        self.auto_why: dict[str, QLabel] = {}  # why Auto leaves a method off, under its combo
        self._rows: dict[str, QWidget] = {}
        for m in MODE_METHODS:
            combo, why = mode_combo(m.tip, m.label), why_label()
            auto_why = auto_reason_label(combo)
            extra = [self._head_label()] if m.id == "mtp" else []
            self.form.addRow(tip_label(m.label, m.tip), self._stack(combo, why, auto_why, *extra))
            self.mode[m.id], self.why[m.id], self._rows[m.id] = combo, why, self._last_field()
            self.auto_why[m.id] = auto_why
            combo.currentIndexChanged.connect(self._emit)
        self._build_draft_model()
        self._build_draft_length()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.form.addRow("In effect", self.summary)

    def _head_label(self) -> QLabel:
        """Under MTP: the MTP head in its own file (an mtp- file, a Gemma 4 assistant) that MTP runs from."""
        self.mtp_head = QLabel("")
        self.mtp_head.setObjectName("muted")
        self.mtp_head.setWordWrap(True)
        self.mtp_head.setAccessibleName("MTP head")
        self.mtp_head.setVisible(False)
        return self.mtp_head

    def _last_field(self) -> QWidget:
        item = self.form.itemAt(self.form.rowCount() - 1, QFormLayout.ItemRole.FieldRole)
        w = item.widget() if item is not None else None
        assert w is not None
        return w

    @staticmethod
    def _stack(*widgets: QWidget) -> QWidget:
        col = QVBoxLayout()
        col.setSpacing(2)
        col.setContentsMargins(0, 0, 0, 0)
        for w in widgets:
            col.addWidget(w)
        holder = QWidget()
        holder.setLayout(col)
        return holder

    def _build_draft_model(self) -> None:
        """The draft model: Auto, Off, or one of the catalog's compatible models."""
        self.draft_model = QComboBox()
        self.draft_model.setAccessibleName("Draft model")
        self.draft_model.setToolTip(BY_ID["draft"].tip)
        self.draft_model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.draft_model.setMinimumContentsLength(14)
        self.draft_why = why_label()
        self.draft_auto_why = auto_reason_label(self.draft_model)  # what Auto does with the draft model, and why
        self.draft_others = QLabel("")
        self.draft_others.setObjectName("muted")
        self.draft_others.setWordWrap(True)
        self.form.addRow(tip_label("Draft model", BY_ID["draft"].tip),
                         self._stack(self.draft_model, self.draft_why, self.draft_auto_why,
                                     self.draft_others))
        self.why["draft"] = self.draft_why
        self.draft_model.currentIndexChanged.connect(self._emit)

    def _build_draft_length(self) -> None:
        knob = KNOBS["draft_n_max"]
        self.draft_default = QCheckBox("Default")
        self.draft_default.setChecked(True)
        self.draft_default.setToolTip("Use the planner's draft length (2 on a GPU, 3 on the CPU or a Mac, or the measured best)")
        self.draft = QSlider(Qt.Orientation.Horizontal)
        self.draft.setRange(int(knob.lo or 1), int(knob.hi or 16))
        self.draft.setValue(DRAFT_N_DEFAULT)
        self.draft.setPageStep(1)
        self.draft.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.draft.setToolTip(knob.tip)
        self.draft.setAccessibleName("Draft length")
        self.draft.setMinimumWidth(80)
        self.draft_number = QLabel(str(DRAFT_N_DEFAULT))  # the slider shows its number
        self.draft_number.setMinimumWidth(self.draft_number.fontMetrics().horizontalAdvance("16") + 4)
        self.draft_number.setAccessibleName("Draft length in tokens")
        self.draft_value = why_label()  # the length in effect, or why it does not apply (core/plan/controls.py)
        self.draft_value.setVisible(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.draft_default)
        row.addWidget(self.draft, 1)
        row.addWidget(self.draft_number)
        self.draft_row = self._holder(row)  # the checkbox, the slider and its number: greyed together
        self._draft_dim = QGraphicsOpacityEffect(self.draft)  # a disabled slider looks active in most styles
        self._draft_dim.setOpacity(0.4)
        self._draft_dim.setEnabled(False)
        self.draft.setGraphicsEffect(self._draft_dim)
        self.form.addRow(tip_label(knob.label, knob.tip), self._stack(self.draft_row, self.draft_value))
        self.draft.valueChanged.connect(self._draft_moved)
        self.draft_default.toggled.connect(self._emit)

    @staticmethod
    def _holder(layout: QHBoxLayout) -> QWidget:
        holder = QWidget()
        holder.setLayout(layout)
        return holder

    def _draft_moved(self) -> None:
        self.draft_number.setText(str(self.draft.value()))
        if not self._loading:
            self.draft_default.setChecked(False)
        self._emit()

    def _draft_length_enabled(self, on: bool) -> None:
        """The Default checkbox, the slider and its number agree: all usable, or all greyed."""
        self.draft_row.setEnabled(on)
        for w in (self.draft_default, self.draft, self.draft_number):
            w.setEnabled(on)
        self._draft_dim.setEnabled(not on)

    def show_draft_length(self, dl: DraftLength) -> None:
        """The row says what is in effect or why it does not apply, and the slider shows the length used."""
        self._draft_length_enabled(dl.applies)
        self.draft_value.setText(dl.words)
        self.draft_value.setVisible(bool(dl.words))
        if dl.value is not None and self.draft_default.isChecked() and self.draft.value() != dl.value:
            self._loading = True  # the default's number, shown: not a choice of the user's
            try:
                self.draft.setValue(dl.value)
            finally:
                self._loading = False

    def _emit(self) -> None:
        if not self._loading:
            self.changed.emit()

    # --- settings in and out -------------------------------------------------------------------
    def load(self, s: ModelSettings) -> None:
        self._loading = True
        try:
            for mid, combo in self.mode.items():
                set_data(combo, s.mode(mid).value)
            self._draft_choice = "off" if s.mode("draft") is SpecMode.OFF else (s.draft_model or "auto")
            set_data(self.draft_model, self._draft_choice)
            self.draft_default.setChecked(s.draft_n_max is None)
            if s.draft_n_max is not None:
                self.draft.setValue(s.draft_n_max)
        finally:
            self._loading = False

    def modes(self) -> tuple[dict[str, SpecMode], str | None, int | None]:
        """(the modes that are not Auto, the chosen draft model or None, the draft length or None)."""
        modes = {mid: SpecMode(combo.currentData()) for mid, combo in self.mode.items()
                 if SpecMode(combo.currentData()) is not SpecMode.AUTO}
        choice = self.draft_model.currentData() or "auto"
        if choice == "off":
            modes["draft"] = SpecMode.OFF
        elif choice != "auto":
            modes["draft"] = SpecMode.ON
        return (modes, choice if choice not in ("auto", "off") else None,
                None if self.draft_default.isChecked() else self.draft.value())

    # --- the plan out --------------------------------------------------------------------------
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
            set_data(self.draft_model, current)
        finally:
            self._loading = False
        others = [o for o in options if not o.ok and o.method == "draft"]
        shown = "; ".join(f"{o.name}: {o.reason}" for o in others[:3])
        more = f" (and {len(others) - 3} more)" if len(others) > 3 else ""
        self.draft_others.setText(f"Not offered: {shown}{more}" if others else "")
        self.draft_others.setVisible(bool(others))
        heads = {o.method for o in options if o.ok and o.method in HEAD_METHODS}
        for mid in HEAD_METHODS:  # a head row appears only when a head trained for this model exists
            self.form.setRowVisible(self._rows[mid], mid in heads)
        mtp = next((o for o in options if o.ok and o.method == "mtp"), None)
        self.mtp_head.setText(f"{head_line(mtp.model)} (in its own file; MTP runs from it with -md)" if mtp else "")
        self.mtp_head.setToolTip(f"{mtp.path}: {mtp.reason}" if mtp else "")
        self.mtp_head.setVisible(mtp is not None)

    def set_availability(self, available: dict[str, Availability]) -> None:
        """Disable what cannot work for this binary/model, and say why in words next to the control."""
        for mid, combo in self.mode.items():
            ok, why = available.get(mid, Availability(False, "unknown"))
            combo.setEnabled(ok)
            combo.setToolTip(BY_ID[mid].tip if ok else f"Unavailable: {why}")
            self.why[mid].setText(f"Off: {why}")
            self.why[mid].setVisible(not ok)
            show_auto_reason(combo, self.auto_why[mid])
        ok, why = available.get("draft", Availability(False, "unknown"))
        self.draft_why.setText(f"Off: {why}")
        self.draft_why.setVisible(not ok and self.draft_model.currentData() != "off")
        show_auto_reason(self.draft_model, self.draft_auto_why)
        model_ok = any(a.ok for mid, a in available.items() if BY_ID[mid].kind == "model")
        self._draft_length_enabled(model_ok)

    def show_decision(self, spec: SpeculativeDecision | None) -> None:
        if spec is None:
            self.summary.setText("–")
            return
        self._show_auto(spec)
        source = f"  ·  {spec.source}" if spec.source not in (SpecSource.RULES, SpecSource.MEASURED) else ""
        self.summary.setText(spec.summary + source)

    def _show_auto(self, spec: SpeculativeDecision) -> None:
        """Each Auto item says what Auto does right now, short (on, off); why goes on the line under it."""
        show_auto(self.mode, spec, self.auto_why)
        i = self.draft_model.findData("auto")
        if i < 0:
            return
        name = self._auto_pick.name if self._auto_pick else None
        why = ""
        if "draft" in spec.methods and spec.draft is not None:
            text = f"Auto ({spec.draft.name})"
        elif name and "draft" in spec.auto_off:
            text, why = "Auto (off)", f"Off: {spec.auto_off['draft']}; Auto would use {name}"
        elif name:
            text, why = "Auto (not used now)", f"Auto would use {name}; it does not run now"
        else:
            text = "Auto (none suitable)"
        self.draft_model.setItemText(i, text)
        self.draft_model.setItemData(i, f"{text}: {why}" if why else text, Qt.ItemDataRole.ToolTipRole)
        self.draft_auto_why.setText(why)
        show_auto_reason(self.draft_model, self.draft_auto_why)
