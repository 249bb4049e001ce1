"""The llama-server tab's list of installed builds: each with its source and what it can do, and
"Use this build" to switch (an update that regressed is undone in one click).

Self-contained: it shows what ``core/llama_server/installed.py`` lists and says which one the user
picked; the controller (``server_setup.py``) does the switching.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from llama_launcher.core.llama_server.installed import InstalledBuild


class InstalledBuildsBox(QGroupBox):
    use_build = Signal(str)  # the build's folder name ("b11433")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Installed builds", parent)
        self.setObjectName("installedBuilds")
        self._rows = QVBoxLayout(self)
        self.buttons: dict[str, QPushButton] = {}
        self.labels: dict[str, QLabel] = {}
        self.setVisible(False)

    def show_builds(self, builds: list[InstalledBuild], in_use: str | None) -> None:
        """One row per build; the one in use says so, each other one offers "Use this build". Shown only
        when there is a choice to make (two builds or more)."""
        while self._rows.count():
            item = self._rows.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.deleteLater()
        self.buttons.clear()
        self.labels.clear()
        for b in builds:
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            number = f"b{b.build}" if b.build is not None else b.folder
            label = QLabel(f"{number}{' (in use)' if b.in_use else ''} — {b.source}\n{b.abilities()}"
                           + (f" · installed {b.installed_at}" if b.installed_at else ""))
            label.setWordWrap(True)
            label.setToolTip(b.path)
            button = QPushButton("In use" if b.in_use else "Use this build")
            button.setEnabled(not b.in_use and b.problem is None)
            button.setToolTip(b.problem or f"Use {b.path}")
            button.clicked.connect(lambda _=False, name=b.folder: self.use_build.emit(name))
            h.addWidget(label, 1)
            h.addWidget(button)
            self._rows.addWidget(row)
            self.buttons[b.folder] = button
            self.labels[b.folder] = label
        self.setVisible(len(builds) > 1 or (len(builds) == 1 and not builds[0].in_use))

    def switching(self, name: str) -> None:
        button = self.buttons.get(name)
        if button is not None:
            button.setEnabled(False)
            button.setText("Switching…")
