"""What the launch boxes share: mode combos, the muted 'why' line under a control, copy-with-feedback."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton

from llama_launcher.core.plan.speculative import SpeculativeDecision
from llama_launcher.core.speculative.methods import SpecMode


def mode_combo(tip: str, name: str) -> QComboBox:
    c = QComboBox()
    for mode in SpecMode:
        c.addItem(mode.label, mode.value)  # plain text: Qt keeps it as it is
    c.setToolTip(tip)
    c.setAccessibleName(name)
    # the Auto item says why it is on or off; long reasons must not widen the form
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(14)
    return c


def set_data(combo: QComboBox, value: object) -> None:
    i = combo.findData(value)
    combo.setCurrentIndex(i if i >= 0 else 0)


def why_label() -> QLabel:
    lbl = QLabel("")
    lbl.setObjectName("why")
    lbl.setWordWrap(True)
    lbl.setVisible(False)
    return lbl


def tip_label(text: str, tip: str) -> QLabel:
    lbl = QLabel(text)
    lbl.setToolTip(tip)
    return lbl


def copy_with_feedback(button: QPushButton, text: str) -> None:
    """Copy and say so on the button for a moment: a silent copy leaves people unsure."""
    QGuiApplication.clipboard().setText(text)
    old = button.text()
    if old == "Copied":
        return
    button.setText("Copied")
    QTimer.singleShot(1500, button, lambda: button.setText(old))


def show_auto(combos: dict[str, QComboBox], spec: SpeculativeDecision) -> None:
    """Each Auto item says what Auto does right now: on, or off and why (from the planner)."""
    for mid, combo in combos.items():
        if mid in spec.methods:
            text = "Auto (on)"
        elif mid in spec.auto_off:
            text = f"Auto (off: {spec.auto_off[mid]})"
        else:
            text = "Auto"
        combo.setItemText(0, text)
        combo.setItemData(0, text, Qt.ItemDataRole.ToolTipRole)
