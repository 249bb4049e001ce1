"""The server toolbar: Launch, Stop, the state, the endpoint, Copy URL and Open web UI.

It shows state and forwards clicks; the window decides what is possible and says why not in the
tooltips (Launch while Tune runs, a web UI the build does not have).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QLabel, QLineEdit, QToolBar, QWidget

from llama_launcher.core.server.process import ServerState
from llama_launcher.ui.resources import icon

STATE_TEXT = {ServerState.IDLE: "Not running", ServerState.STARTING: "Starting…", ServerState.LOADING: "Loading model…",
              ServerState.READY: "Ready", ServerState.STOPPING: "Stopping…", ServerState.STOPPED: "Stopped",
              ServerState.FAILED: "Failed"}


def state_text(state: ServerState) -> str:
    """A status, not a button: a dot in the state's colour (app.qss) and its words."""
    return f"● {STATE_TEXT[state]}"


LAUNCH_TIP = "Start llama-server with the command shown in the preview (F5 or Ctrl+R)"


class ServerToolbar(QToolBar):
    launch = Signal()
    stop = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Server", parent)
        self.setObjectName("serverToolbar")
        self.setMovable(False)
        self.setIconSize(QSize(20, 20))
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.launch_action = QAction(icon("play"), "Launch", self)
        self.launch_action.setShortcuts([QKeySequence("F5"), QKeySequence("Ctrl+R")])
        self.launch_action.setToolTip(LAUNCH_TIP)
        self.stop_action = QAction(icon("stop"), "Stop", self)
        self.stop_action.setShortcuts([QKeySequence("Shift+F5"), QKeySequence("Ctrl+.")])
        self.stop_action.setToolTip("Stop llama-server (Shift+F5 or Ctrl+.)")
        self.stop_action.setEnabled(False)
        self.addAction(self.launch_action)
        self.addAction(self.stop_action)
        self.addSeparator()
        self.state_badge = QLabel(state_text(ServerState.IDLE))
        self.state_badge.setObjectName("stateBadge")
        self.state_badge.setProperty("state", "idle")
        self.state_badge.setAccessibleName("Server state")
        self.addWidget(self.state_badge)
        spacer = QWidget()
        spacer.setFixedWidth(12)
        self.addWidget(spacer)
        self.endpoint = QLineEdit()
        self.endpoint.setReadOnly(True)
        self.endpoint.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # selectable to copy, but not where the window's focus starts
        self.endpoint.setPlaceholderText("endpoint appears when the server runs")
        self.endpoint.setMinimumWidth(150)
        self.endpoint.setMaximumWidth(260)
        self.endpoint.setAccessibleName("Endpoint URL")
        self.addWidget(self.endpoint)
        self.copy_url_action = QAction(icon("copy"), "Copy URL", self)
        self.copy_url_action.setToolTip("Copy the OpenAI-compatible base URL (…/v1)")
        self.webui_action = QAction(icon("globe"), "Open web UI", self)
        self.webui_action.setToolTip("Open llama-server's built-in chat page in your browser")
        for a in (self.copy_url_action, self.webui_action):
            a.setEnabled(False)
            self.addAction(a)
        self.base_url = ""
        self.launch_action.triggered.connect(self.launch)
        self.stop_action.triggered.connect(self.stop)
        self.copy_url_action.triggered.connect(self._copy_url)
        self.webui_action.triggered.connect(lambda: QDesktopServices.openUrl(QUrl(self.base_url)))

    def _copy_url(self) -> None:
        QGuiApplication.clipboard().setText(self.endpoint.text())
        self.copy_url_action.setText("Copied")
        QTimer.singleShot(1500, self, lambda: self.copy_url_action.setText("Copy URL"))  # dies with the bar

    def show_state(self, state: ServerState, base_url: str, display_url: str) -> None:
        self.state_badge.setText(state_text(state))
        self.state_badge.setProperty("state", state.value)
        self.state_badge.style().unpolish(self.state_badge)
        self.state_badge.style().polish(self.state_badge)
        self.stop_action.setEnabled(state.running)
        ready = state is ServerState.READY
        self.base_url = base_url if ready else ""
        self.endpoint.setText(display_url if ready else "")
        self.copy_url_action.setEnabled(ready)
        if not ready:
            self.webui_action.setEnabled(False)
            self.webui_action.setToolTip("Open llama-server's built-in chat page (when the server is ready)")

    def set_web_ui(self, served: bool, why: str) -> None:
        self.webui_action.setEnabled(served)
        self.webui_action.setToolTip("Open llama-server's built-in chat page in your browser" if served else
                                     f"No web UI: {why}")

    def set_launch(self, enabled: bool, why: str) -> None:
        self.launch_action.setEnabled(enabled)
        self.launch_action.setToolTip(LAUNCH_TIP if enabled else f"Cannot launch: {why}")
