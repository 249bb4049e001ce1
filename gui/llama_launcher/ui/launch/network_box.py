"""Network and extra arguments: the port (fixed or Auto), LAN access with its key and addresses, and
the user's own llama-server arguments."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from llama_launcher.core.settings.launch import AUTO_PORT
from llama_launcher.ui.launch.common import copy_with_feedback, tip_label
from llama_launcher.ui.resources import icon

PORT_TIP = ("The port llama-server listens on. A fixed port keeps the address your editor, Open WebUI or scripts use "
            "the same at every launch; Auto keeps the port it used last time while it is free, and says so when "
            "another program holds it and it has to move.")


def _row(*widgets: QWidget, stretch_first: bool = True) -> QWidget:
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    for i, w in enumerate(widgets):
        row.addWidget(w, 1 if i == 0 and stretch_first else 0)
    holder = QWidget()
    holder.setLayout(row)
    return holder


class NetworkBox(QGroupBox):
    port_changed = Signal(int)  # the port setting (AUTO_PORT for Auto)
    lan_toggled = Signal(bool)
    regenerate_key = Signal()
    use_free_port = Signal()
    extra_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Network and extra arguments", parent)
        self._loading = False
        self._build_port()
        self._build_lan()
        self.extra = QLineEdit()
        self.extra.setPlaceholderText("extra llama-server arguments, e.g. --temp 0.7 --top-k 40")
        self.extra.setToolTip("Passed last, so they win. Flags the launcher owns (model, host, port, API key, "
                              "projector, downloads) are refused with the reason.")
        self.extra.setAccessibleName("Extra arguments")
        self.form = QFormLayout(self)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.addRow(tip_label("Port", PORT_TIP), self._port_row)
        self.form.addRow(self.port_problem)
        self.form.addRow(self.auto_note)
        self.form.addRow(self.lan)
        self.form.addRow("API key", self.key_widget)
        self.form.addRow("Other devices use", self.lan_widget)
        self.form.addRow("Extra arguments", self.extra)
        self._show_lan_rows(False)
        self.extra.textChanged.connect(lambda _t: None if self._loading else self.extra_changed.emit())

    def _build_port(self) -> None:
        self.port_auto = QCheckBox("Auto")
        self.port_auto.setToolTip("Keep the port used last time while it is free; move to a free neighbour "
                                  "(and say so) when another program holds it")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(8080)
        self.port.setAccessibleName("Port")
        self.port.setToolTip(PORT_TIP)
        self.port_free_btn = QPushButton("Use a free port")
        self.port_free_btn.setVisible(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.port)
        row.addWidget(self.port_auto)
        row.addWidget(self.port_free_btn)
        row.addStretch(1)
        self._port_row = QWidget()
        self._port_row.setLayout(row)
        self.port_problem = QLabel("")
        self.port_problem.setObjectName("failureReason")
        self.port_problem.setWordWrap(True)
        self.port_problem.setVisible(False)
        self.auto_note = QLabel("")
        self.auto_note.setObjectName("warnings")
        self.auto_note.setWordWrap(True)
        self.auto_note.setVisible(False)
        self.port.valueChanged.connect(self._port_edited)
        self.port_auto.toggled.connect(self._port_edited)
        self.port_free_btn.clicked.connect(self.use_free_port)

    def _build_lan(self) -> None:
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
        self.key_widget = _row(self.api_key, self.copy_key, self.new_key)
        self.lan_urls = QLabel("")
        self.lan_urls.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lan_urls.setWordWrap(True)
        self.lan_urls.setAccessibleName("Addresses for other devices")
        self.copy_lan = QPushButton(icon("copy"), "Copy")
        self.copy_lan.setToolTip("Copy the first address")
        self.lan_widget = _row(self.lan_urls, self.copy_lan)
        self.lan.toggled.connect(self._lan_edited)
        self.copy_key.clicked.connect(lambda: copy_with_feedback(self.copy_key, self.api_key.text()))
        self.copy_lan.clicked.connect(lambda: copy_with_feedback(self.copy_lan, self.lan_urls.property("first") or ""))
        self.new_key.clicked.connect(self.regenerate_key)

    def _show_lan_rows(self, on: bool) -> None:
        self.form.setRowVisible(self.key_widget, on)
        self.form.setRowVisible(self.lan_widget, on)

    def _lan_edited(self, on: bool) -> None:
        self._show_lan_rows(on)
        if not self._loading:
            self.lan_toggled.emit(on)

    def _port_edited(self) -> None:
        self.port.setEnabled(not self.port_auto.isChecked())
        if not self._loading:
            self.port_changed.emit(self.port_setting())

    def port_setting(self) -> int:
        return AUTO_PORT if self.port_auto.isChecked() else self.port.value()

    def show_network(self, port_setting: int, port: int, lan: bool, key: str, urls: list[str]) -> None:
        """What the settings say: the port (with Auto, the greyed number is the one the next launch uses),
        LAN, its key and the addresses other devices use."""
        self._loading = True
        try:
            self.port_auto.setChecked(port_setting == AUTO_PORT)
            self.port.setEnabled(port_setting != AUTO_PORT)
            self.port.setValue(port)
            self.lan.setChecked(lan)
            self._show_lan_rows(lan)
            self.api_key.setText(key if lan else "")
        finally:
            self._loading = False
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

    def show_auto_note(self, text: str) -> None:
        """Auto had to move from the port it used last time ('' when it did not)."""
        self.auto_note.setText(text)
        self.auto_note.setVisible(bool(text))

    def load_extra(self, text: str) -> None:
        self._loading = True
        try:
            self.extra.setText(text)
        finally:
            self._loading = False
