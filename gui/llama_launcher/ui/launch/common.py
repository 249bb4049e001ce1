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


def show_auto(combos: dict[str, QComboBox], spec: SpeculativeDecision, reasons: dict[str, QLabel]) -> None:
    """Each Auto item says what Auto does right now, in a word or two (on, off); why it is off goes on the
    wrapped line under the combo (``reasons``), shown while Auto is chosen: a long reason in the item
    itself was cut off mid-word at the combo's width."""
    for mid, combo in combos.items():
        why = spec.auto_off.get(mid, "") if mid not in spec.methods else ""
        text = "Auto (on)" if mid in spec.methods else "Auto (off)" if mid in spec.auto_off else "Auto"
        combo.setItemText(0, text)
        combo.setItemData(0, f"{text}: {why}" if why else text, Qt.ItemDataRole.ToolTipRole)
        label = reasons[mid]
        label.setText(f"Off: {why}" if why else "")
        show_auto_reason(combo, label)


def show_auto_reason(combo: QComboBox, label: QLabel) -> None:
    """The Auto reason is shown while Auto is chosen and the method can run (else the row's other line says why)."""
    label.setVisible(bool(label.text()) and combo.currentIndex() == 0 and combo.isEnabled())


def auto_reason_label(combo: QComboBox) -> QLabel:
    """The wrapped line under a mode combo that says why Auto leaves the method off."""
    label = why_label()
    label.setAccessibleName(f"Why {combo.accessibleName()} is off")
    combo.currentIndexChanged.connect(lambda _i: show_auto_reason(combo, label))
    return label
