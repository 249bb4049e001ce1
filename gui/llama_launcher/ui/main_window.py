"""The main window: composes the panels and wires them to the workers and the core.

Decisions live in core (planner, catalog, probe, runner, tune); this class keeps the current
selection, asks the planner for a plan whenever a control changes, and forwards user actions to
workers through queued signals. Cancels are the exception: Stop reply and Tune's Cancel call the
worker directly, because a queued call would wait behind the very job it should stop. Nothing
here blocks the GUI thread for more than a file stat.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from llama_launcher import __version__
from llama_launcher.core.host import network
from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.host.hardware import detect as detect_hardware
from llama_launcher.core.llama_server.discovery import Candidate, find_server
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.memory.estimate import MemoryEvidence
from llama_launcher.core.models.catalog import CatalogResult
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.flags import PlanError
from llama_launcher.core.plan.planner import Plan, plan_launch
from llama_launcher.core.plan.speculative import availability
from llama_launcher.core.plan.templates import chat_template_given, fallback_template
from llama_launcher.core.server.checks import ServerChecks
from llama_launcher.core.server.failure_reasons import PORT_WAY_OUT
from llama_launcher.core.server.log_batches import LogBatch
from llama_launcher.core.server.process import ServerEvent, ServerState
from llama_launcher.core.settings import store as settings_store
from llama_launcher.core.settings.launch import AUTO_PORT, ModelSettings, PlanSettings
from llama_launcher.core.speculative.health import SpeculationWatch
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.methods import METHODS, combo_label
from llama_launcher.core.speculative.pairing import DraftOption, auto_draft, draft_options
from llama_launcher.core.state import api_key_store
from llama_launcher.core.state.api_key_store import ApiKey, ApiKeyError
from llama_launcher.core.tuning import store as tuning_store
from llama_launcher.ui.launch_panel import TUNE_TIP, LaunchPanel
from llama_launcher.ui.live_panel import LivePanel
from llama_launcher.ui.log_view import LogView
from llama_launcher.ui.metrics_poller import MetricsPoller
from llama_launcher.ui.models_pane import ModelsPane
from llama_launcher.ui.notices import attach_state_notices, show_state_notices
from llama_launcher.ui.resources import icon
from llama_launcher.ui.server_setup import ServerSetup
from llama_launcher.ui.server_toolbar import ServerToolbar
from llama_launcher.ui.side_panels import HardwarePanel, ServerPanel
from llama_launcher.ui.workers import (
    BuildWorker,
    ChatWorker,
    MemoryWorker,
    ScanWorker,
    ServerWorker,
    TuneWorker,
    start_in_thread,
    stop_thread,
)

if TYPE_CHECKING:  # the dialog (and huggingface_hub) load when it is first opened
    from llama_launcher.ui.get_models_dialog import GetModelsDialog

READY_TIMEOUT_S = 300.0
# the smallest window still shows the whole models table (its minimum, see models_pane) beside the setup
SETUP_MIN_WIDTH = 410
WINDOW_MIN_WIDTH = 960
TUNE_LOG_PREFIX = "[tune] "
STATUS_TEXT = {ServerState.STARTING: "starting llama-server…", ServerState.LOADING: "llama-server is loading the model…",
               ServerState.STOPPING: "stopping llama-server…", ServerState.STOPPED: "llama-server stopped",
               ServerState.IDLE: "llama-server is not running"}


@dataclasses.dataclass(frozen=True)
class _Served:
    """The network side of the launch that is running: LAN on or off, its key, its port."""

    lan: bool = False
    key: str = ""
    port: int = 0


def _scrolled(widget: QWidget) -> QScrollArea:
    """Tabs scroll instead of clipping on small screens (1024×640 must work)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(widget)
    return area


class MainWindow(QMainWindow):
    # requests to workers (queued: they run in the workers' threads)
    request_probe = Signal(str)
    request_probe_candidate = Signal(str)
    request_start = Signal(int, list, float, dict, str)
    request_stop = Signal()
    request_scan = Signal(list)
    request_tune = Signal(int, str, object, object, object, object, object)
    request_chat = Signal(str, str, str, int, bool)
    request_build = Signal()
    request_projection = Signal(object, object, str, object, object, int)
    request_learn = Signal(object, object, object, str)

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Llama Launcher")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.settings = settings_store.load()
        self.catalog: CatalogResult | None = None
        self.model: ModelInfo | None = None
        self.binary: Candidate | None = None
        self.caps: Capabilities | None = None
        self.hw: Hardware | None = None
        self.plan: Plan | None = None
        self.tuned: TunedChoice | None = None  # measured result for this model + binary + machine
        self.memory_evidence: MemoryEvidence | None = None  # past launches and llama.cpp's projection
        self._projection_key: object = None
        self.launched: tuple[Plan, ModelInfo, int | None] | None = None  # what really ran (the selection may change)
        self.drafts: list[DraftOption] = []
        self.plan_error = ""
        self.auto_port = network.free_port()  # Auto: shown in the preview, re-chosen at launch if taken
        self.state = ServerState.IDLE
        self.tuning = False
        self.base_url = ""
        self.checks: ServerChecks | None = None
        self.watch: SpeculationWatch | None = None
        self.last_chat = None  # the last 'Try it' result (ChatResult)
        self.api_key: ApiKey | None = None
        # what the running server was started with: Try it, metrics and the URL keep using these
        # when the LAN switch, the key or the port change under it (those apply at the next launch)
        self.served = _Served()
        self.run = 0  # the launch (or tune) whose events and log lines the window shows
        self.log_path = ""  # the log file of that launch, once its process started
        self._quitting = False
        self._get_models: GetModelsDialog | None = None  # made when first opened
        self._select_after_scan: str | None = None  # a model just downloaded
        self._banner_action: object = None

        self._build_ui()
        self._start_workers()
        self._restore_geometry()
        if self.settings.lan:
            self._load_key()
        self._discover_binary()
        self.rescan()
        self._notices_timer = attach_state_notices(self)  # what could not be read or saved, said once

    # --- construction ----------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.toolbar = ServerToolbar(self)
        self.addToolBar(self.toolbar)
        # kept as attributes: tests and shortcuts reach the actions through the window
        self.launch_action, self.stop_action = self.toolbar.launch_action, self.toolbar.stop_action
        self.copy_url_action, self.webui_action = self.toolbar.copy_url_action, self.toolbar.webui_action
        self.endpoint = self.toolbar.endpoint

        # failure / notice banner, with an optional one-click way out
        self.banner = QLabel("")
        self.banner.setObjectName("failureReason")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner_button = QPushButton("")
        self.banner_button.setVisible(False)
        self.banner_close = QPushButton("Dismiss")
        self.banner_close.setVisible(False)

        self.models_pane = ModelsPane()
        self.table_model, self.proxy, self.table = (self.models_pane.table_model, self.models_pane.proxy,
                                                    self.models_pane.table)
        self.search = self.models_pane.search

        self.launch_panel = LaunchPanel()
        self.live = LivePanel()
        self.logs = LogView()
        self.hardware_panel = HardwarePanel()
        self.server_panel = ServerPanel()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.launch_panel, "Launch setup")
        self.tabs.addTab(_scrolled(self.live), "Live")
        self.tabs.addTab(self.logs, "Logs")
        self.tabs.addTab(_scrolled(self.hardware_panel), "Hardware")
        self.tabs.addTab(_scrolled(self.server_panel), "llama-server")
        self.model_title = QLabel("Select a model")
        self.model_title.setObjectName("sectionTitle")
        self.model_title.setWordWrap(True)
        self.model_note = QLabel("")
        self.model_note.setObjectName("muted")
        self.model_note.setWordWrap(True)
        self.model_note.setVisible(False)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(4, 8, 8, 8)
        rl.addWidget(self.model_title)
        rl.addWidget(self.model_note)
        rl.addWidget(self.tabs, 1)
        right.setMinimumWidth(SETUP_MIN_WIDTH)

        splitter = QSplitter()
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.models_pane)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([620, 660])
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        brow = QHBoxLayout()
        brow.setContentsMargins(10, 6, 10, 0)
        brow.addWidget(self.banner, 1)
        brow.addWidget(self.banner_button, 0, Qt.AlignmentFlag.AlignTop)
        brow.addWidget(self.banner_close, 0, Qt.AlignmentFlag.AlignTop)
        cl.addLayout(brow)
        cl.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage(f"Llama Launcher {__version__}")
        self.setMinimumSize(WINDOW_MIN_WIDTH, 560)
        self.resize(1280, 820)

        # wiring (signals up, calls down)
        self.toolbar.launch.connect(self.launch)
        self.toolbar.stop.connect(self.stop_server)
        self.models_pane.model_selected.connect(lambda m: self._set_model(m or None))
        self.models_pane.add_folder.connect(self.add_folder)
        self.models_pane.remove_folder.connect(self.remove_folder)
        self.models_pane.rescan.connect(self.rescan)
        self.models_pane.get_models.connect(self.open_get_models)
        self.models_pane.message.connect(self.statusBar().showMessage)
        self.banner_close.clicked.connect(self.hide_banner)
        self.banner_button.clicked.connect(self._banner_clicked)
        self.launch_panel.changed.connect(self.replan)
        self.launch_panel.network_changed.connect(self._network_changed)
        self.launch_panel.lan_toggled.connect(self._lan_toggled)
        self.launch_panel.regenerate_key.connect(self._new_key)
        self.launch_panel.use_free_port.connect(self.use_free_port)
        self.launch_panel.tune_requested.connect(self.tune)
        self.server_panel.choose.connect(self.choose_binary)
        self.server_panel.use_detected.connect(self.use_detected_binary)
        self.server_panel.build.connect(self.build_binary)
        self.live.send_prompt.connect(self._send_prompt)
        self.live.tune_requested.connect(self.tune)
        self.metrics = MetricsPoller(self)
        self.metrics.speed.connect(self._metrics_speed)
        self.launch_panel.load_network(self.settings.port, self.settings.lan, "")

    def _run_in_thread(self, worker, name: str) -> None:
        self._worker_threads.append((start_in_thread(worker, name), worker))

    def _start_workers(self) -> None:
        self._worker_threads: list[tuple] = []
        self.server_worker = ServerWorker()
        self._run_in_thread(self.server_worker, "server-worker")
        QTimer.singleShot(0, self.server_worker, self.server_worker.setup)
        self.request_probe.connect(self.server_worker.probe)
        self.request_probe_candidate.connect(self.server_worker.probe_candidate)
        self.request_start.connect(self.server_worker.start)
        self.request_stop.connect(self.server_worker.stop)
        self.server_worker.probed.connect(self._probed)
        self.server_worker.probe_failed.connect(self._probe_failed)
        self.server_worker.candidate_probed.connect(self._candidate_probed)
        self.server_worker.state_changed.connect(self._state_changed)
        self.server_worker.lines.connect(self.logs.append_batch)
        self.server_worker.started_run.connect(self._run_started)
        self.server_worker.checked.connect(self._server_checked)

        self.scan_worker = ScanWorker()
        self._run_in_thread(self.scan_worker, "scan-worker")
        self.request_scan.connect(self.scan_worker.scan)
        self.scan_worker.progress.connect(self.models_pane.scan_progress)
        self.scan_worker.finished.connect(self._scanned)

        self.tune_worker = TuneWorker()
        self._run_in_thread(self.tune_worker, "tune-worker")
        self.request_tune.connect(self.tune_worker.tune)
        self.tune_worker.progress.connect(self.launch_panel.show_tune_progress)
        # bound methods, never lambdas: a lambda would run in the tune thread and touch the log widget there
        self.tune_worker.log.connect(self._tune_log)
        self.tune_worker.server_lines.connect(self._tune_server_lines)
        self.tune_worker.finished.connect(self._tuned)
        self.tune_worker.failed.connect(self._tune_failed)
        self.tune_worker.cancelled.connect(self._tune_cancelled)
        # direct, from the GUI thread: the tune worker's own thread is busy with the tune
        self.launch_panel.tune_cancel.connect(self.cancel_tune)

        self.chat_worker = ChatWorker()
        self._run_in_thread(self.chat_worker, "chat-worker")
        self.request_chat.connect(self.chat_worker.send)
        self.chat_worker.delta.connect(self._chat_delta)
        self.chat_worker.finished.connect(self._chat_finished)
        self.chat_worker.failed.connect(self._chat_failed)
        self.live.cancel_prompt.connect(self.stop_reply)

        self.memory_worker = MemoryWorker()
        self._run_in_thread(self.memory_worker, "memory-worker")
        self.request_projection.connect(self.memory_worker.project)
        self.request_learn.connect(self.memory_worker.learn)
        self.memory_worker.projected.connect(self._projected)
        self.memory_worker.learned.connect(self._learned)
        self._projection_timer = QTimer(self)  # llama-fit-params runs once the controls have been still a moment
        self._projection_timer.setSingleShot(True)
        self._projection_timer.setInterval(600)
        self._projection_timer.timeout.connect(self._ask_projection)
        self._save_timer = QTimer(self)  # settings reach the disk once typing or a slider has paused
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self._save_now)

        self.build_worker = BuildWorker()
        self._run_in_thread(self.build_worker, "build-worker")
        self.request_build.connect(self.build_worker.build)
        self.build_worker.progress.connect(self.server_panel.build_progress)
        self.build_worker.finished.connect(self._built)

        self.server_setup = ServerSetup(self.server_panel, self)  # llama.cpp release check and download
        self.server_setup.installed.connect(self.use_binary)
        self.server_panel.use_binary.connect(self.use_binary)

    def _restore_geometry(self) -> None:
        try:
            if self.settings.window_geometry:
                self.restoreGeometry(QByteArray(base64.b64decode(self.settings.window_geometry)))
            if self.settings.window_state:
                self.restoreState(QByteArray(base64.b64decode(self.settings.window_state)))
        except (ValueError, TypeError):
            pass

    # --- notices -------------------------------------------------------------------------------
    def show_notice(self, text: str, error: bool = False, action: tuple[str, object] | None = None) -> None:
        """One banner line (errors in red); ``action`` adds a one-click way out: (label, callable)."""
        self.banner.setText(("⚠ " if error else "ℹ ") + text)
        self.banner.setProperty("kind", "error" if error else "notice")
        self.banner.setVisible(True)
        self.banner_close.setVisible(True)
        self._banner_action = action[1] if action else None
        self.banner_button.setText(action[0] if action else "")
        self.banner_button.setVisible(action is not None)

    def hide_banner(self) -> None:
        self.banner.setVisible(False)
        self.banner_close.setVisible(False)
        self.banner_button.setVisible(False)
        self._banner_action = None

    def _banner_clicked(self) -> None:
        act = self._banner_action
        self.hide_banner()
        if callable(act):
            act()

    def _show_notices(self) -> None:
        """What the state files had to say (a corrupt file set aside, a folder that cannot be written), now."""
        show_state_notices(self)

    # --- binary ----------------------------------------------------------------------------------
    def _discover_binary(self) -> None:
        self.binary = find_server(self.settings.binary, "setting")
        detected = find_server()
        overridden = bool(self.settings.binary) and detected is not None and detected.path != self.settings.binary
        self.server_panel.offer_detected(detected.path if overridden and detected else None)
        if self.binary is None:
            self.server_panel.show_binary(None, "", None, "No llama-server was found on this computer.")
            self.hardware_panel.show_hardware(None)
            self.show_notice("No llama-server found. Open the llama-server tab to install or build one.")
            self.tabs.setCurrentIndex(4)
            self.request_probe.emit("")  # still detect the hardware
            self.replan()
            return
        self.server_panel.show_binary(self.binary.path, self.binary.source, None, "probing…")
        self.request_probe.emit(self.binary.path)

    def _probed(self, caps: Capabilities, hw: Hardware) -> None:
        self.caps, self.hw = caps, hw
        self.hardware_panel.show_hardware(hw)
        if self.binary is not None:
            self.server_panel.show_binary(self.binary.path, self.binary.source, caps, "")
        self.server_setup.refresh(self.binary, caps, hw, self.settings.binary)
        self._load_tuned()
        self.replan()

    def _probe_failed(self, error: str, hw: Hardware) -> None:
        self.caps, self.hw = None, hw
        self._load_tuned()
        self.hardware_panel.show_hardware(hw)
        self.server_setup.refresh(self.binary, None, hw, self.settings.binary)
        if self.binary is not None:
            self.server_panel.show_binary(self.binary.path, self.binary.source, None, error)
            self.show_notice(f"llama-server at {self.binary.path} cannot be used: {error}", error=True)
            self.tabs.setCurrentIndex(4)
        self.replan()

    def choose_binary(self, path: str | None = None) -> None:
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Choose llama-server", str(Path.home()))
        if path:
            self.use_binary(path)

    def use_binary(self, path: str) -> None:
        """Use the llama-server at ``path`` (chosen, found, downloaded or built) once it proves to be one."""
        self.server_panel.show_checking(path)
        self.request_probe_candidate.emit(path)

    def _candidate_probed(self, path: str, caps: object, error: str) -> None:
        """A chosen binary replaces the one in use only when it really is a llama-server."""
        if error or not isinstance(caps, Capabilities):
            keep = f"; still using {self.binary.path}" if self.binary is not None and self.caps is not None else ""
            self.server_panel.show_refused(path, error)
            self.show_notice(f"{Path(path).name} was not used: {error}{keep}", error=True)
            return
        self.settings.binary = path
        self._save_settings()
        self.hide_banner()
        self._discover_binary()

    def use_detected_binary(self) -> None:
        self.settings.binary = None
        self._save_settings()
        self.hide_banner()
        self._discover_binary()

    def build_binary(self) -> None:
        self.server_panel.building(True)
        self.request_build.emit()

    def _built(self, path: str, error: str) -> None:
        self.server_panel.building(False)
        if error:
            self.server_panel.problem.setText(error)
            return
        self.use_binary(path)  # the build just made becomes the one in use, as a download does

    # --- models ----------------------------------------------------------------------------------
    def rescan(self) -> None:
        self.models_pane.scanning()
        self.request_scan.emit(list(self.settings.folders))

    def _scanned(self, result: CatalogResult) -> None:
        self.catalog = result
        keep = self._select_after_scan or (self.model.path if self.model else self.settings.last_model)
        if any(m.path == self._select_after_scan for m in result.models):
            self._select_after_scan = None  # a scan begun before the download ended may come first
        self.models_pane.show_catalog(result)
        if not result.models:
            self.model_title.setText("No models found: add a folder, or drop a .gguf file onto this window")
        self._show_notices()
        self.models_pane.select(keep)

    def open_get_models(self) -> None:
        """The "Get models…" dialog; a finished download is scanned and selected, ready to launch."""
        if self._get_models is None:
            from llama_launcher.ui.get_models_dialog import (
                GetModelsDialog,  # huggingface_hub loads when first used
            )

            self._get_models = GetModelsDialog(self.hw or detect_hardware(), self.caps,
                                               list(self.settings.folders), self)
            self._get_models.model_ready.connect(self._model_downloaded)
        self._get_models.show()

    def _model_downloaded(self, path: str, folder: str) -> None:
        self._select_after_scan = path
        if folder and folder not in self.settings.folders:
            self.add_folder(folder)  # rescans
        else:
            self.rescan()

    def select_model(self, path: str | None) -> None:
        self.models_pane.select(path)

    def _set_model(self, m: ModelInfo | None) -> None:
        if not self.state.running and m is not None and (self.model is None or self.model.path != m.path):
            self.live.reset()  # the last model's reply and numbers are not this one's (a running server's stay)
        self.model = m
        if m is None:
            self.drafts = []
            self.replan()
            return
        self.settings.last_model = m.path
        if m.error:
            self.model_title.setText(f"{m.file_name} — cannot be launched: {m.error}")
        else:
            badge = "  ·  MTP" if m.is_mtp else ""
            self.model_title.setText(f"{m.name}  ·  {m.architecture or '?'}  ·  {m.quantization or '?'}{badge}")
        self._refresh_model_note()
        self.drafts = draft_options(m, self.catalog.models if self.catalog else []) if not m.error else []
        self.launch_panel.set_drafts(self.drafts, auto_draft(m, self.drafts))
        self.launch_panel.load(self.settings.model(m.path))
        self.launch_panel.set_projector(m.mmproj if not m.error else [])
        self._load_tuned()
        self.replan()

    def _refresh_model_note(self) -> None:
        m = self.model
        note = ""
        if m is not None and not m.error and not m.has_chat_template:
            if self.plan is not None:
                given = chat_template_given(self.plan.flags)
            elif self.caps is not None and (fallback := fallback_template(m, self.caps)):
                given = f"the launcher passes llama-server's built-in '{fallback}' template for chat clients"
            else:
                given = "chat clients get llama-server's generic template"
            note = (f"Base model: the file has no chat template, so it was most likely not trained to chat; "
                    f"Try it sends your text as a plain completion. {given[0].upper() + given[1:]}.")
        self.model_note.setText(note)
        self.model_note.setVisible(bool(note))
        self.live.set_completion_mode(bool(note))

    def add_folder(self, folder: str | None = None) -> None:
        if not folder:
            folder = QFileDialog.getExistingDirectory(self, "Add a folder with .gguf models", str(Path.home()))
        if folder and folder not in self.settings.folders:
            self.settings.folders.append(folder)
            self._save_settings()
            self.rescan()

    def remove_folder(self, anchor: QWidget | None = None) -> None:
        if not self.settings.folders:
            QMessageBox.information(self, "Remove folder", "You have not added any folders; the default places are "
                                    "always scanned when they exist.")
            return
        menu = QMenu(self)
        for f in self.settings.folders:
            menu.addAction(f, functools.partial(self._remove_folder, f))
        if isinstance(anchor, QWidget):
            menu.exec(anchor.mapToGlobal(anchor.rect().bottomLeft()))
        else:
            menu.exec(self.mapToGlobal(self.rect().center()))

    def _remove_folder(self, folder: str) -> None:
        self.settings.folders = [f for f in self.settings.folders if f != folder]
        self._save_settings()
        self.rescan()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if any(u.isLocalFile() and (u.toLocalFile().lower().endswith(".gguf") or os.path.isdir(u.toLocalFile()))
               for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.add_paths([u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()])
        event.acceptProposedAction()

    def add_paths(self, paths: list[str]) -> None:
        """Files add their folder (and get selected); folders are added as they are."""
        target = None
        for p in paths:
            folder = p if os.path.isdir(p) else os.path.dirname(p)
            if p.lower().endswith(".gguf"):
                target = p
            if folder and folder not in self.settings.folders:
                self.settings.folders.append(folder)
        if target:
            self.settings.last_model = target
            self.model = None
        self._save_settings()
        self.rescan()

    # --- network ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port the next launch uses (and the preview shows)."""
        return self.settings.port if self.settings.port != AUTO_PORT else self.auto_port

    def _applies_next_launch(self, what: str) -> None:
        if self.state.running:
            self.statusBar().showMessage(f"{what} applies at the next launch; the running server keeps its own")

    def _network_changed(self) -> None:
        port = self.launch_panel.port_setting()
        if port != self.settings.port:
            self.settings.port = port
            self._save_settings()
            self._applies_next_launch("the new port")
        self.launch_panel.show_port_problem("")
        self.replan()

    def use_free_port(self) -> None:
        """The one-click way out of a taken port: the next free port becomes the (still fixed) setting."""
        if self.settings.port == AUTO_PORT:
            self.auto_port = network.free_port()
        else:
            self.settings.port = network.next_free_port(self.settings.port)
            self._save_settings()
            self.launch_panel.load_network(self.settings.port, self.settings.lan, self.api_key.key if self.api_key else "")
        self.launch_panel.show_port_problem("")
        self.hide_banner()
        self.replan()

    def _launch_on_free_port(self) -> None:
        """The banner's way out after a taken port: one click moves to a free port and launches."""
        self.use_free_port()
        self.launch()

    def _load_key(self) -> bool:
        try:
            self.api_key = api_key_store.load_or_create()
        except ApiKeyError as exc:
            self.api_key = None
            self.show_notice(str(exc), error=True)
            return False
        self._show_notices()
        return True

    def _lan_toggled(self, on: bool) -> None:
        self.settings.lan = on
        if on and self.api_key is None and not self._load_key():
            self.settings.lan = False
            self.launch_panel.load_network(self.settings.port, False, "")
        self.launch_panel.api_key.setText(self.api_key.key if on and self.api_key else "")
        self._save_settings()
        self._applies_next_launch("LAN access" if on else "local-only access")
        # no replan here: the panel's network_changed follows this signal and replans once

    def _new_key(self) -> None:
        self.api_key = api_key_store.regenerate()
        self._show_notices()
        self.launch_panel.api_key.setText(self.api_key.key)
        self._applies_next_launch("the new API key")
        self.replan()

    # --- planning --------------------------------------------------------------------------------
    def current_plan_settings(self, model_settings: ModelSettings | None = None) -> PlanSettings:
        key = self.api_key if self.settings.lan else None
        if model_settings is None:
            model_settings = self.launch_panel.model_settings()
        return PlanSettings.of(model_settings, lan=self.settings.lan, port=self.port,
                               port_auto=self.settings.port == AUTO_PORT,
                               api_key=key.key if key else None,
                               api_key_file=str(key.file) if key and key.file else None)

    def replan(self) -> None:
        self.plan, self.plan_error = None, ""
        m, caps, hw = self.model, self.caps, self.hw
        ms = self.launch_panel.model_settings()
        if m is not None and not m.error:
            if self.settings.model(m.path) != ms:
                self.settings.set_model(m.path, ms)
                self._save_settings()
        if m is None:
            why = "select a model"
        elif m.error:
            why = f"this model cannot be launched: {m.error}"
        elif self.binary is None:
            why = "no llama-server: see the llama-server tab"
        elif caps is None or hw is None:
            why = "probing llama-server…"
        else:
            why = ""
            try:
                self.plan = plan_launch(self.binary.path, m, hw, caps, self.current_plan_settings(ms), self.tuned,
                                        self.drafts, memory_evidence=self.memory_evidence)
            except PlanError as exc:
                self.plan_error = str(exc)
                why = str(exc)
            self.launch_panel.set_availability(
                self.plan.speculative.available if self.plan is not None
                else {mt.id: availability(mt, m, caps, self.drafts, ms) for mt in METHODS})
        self._refresh_model_note()  # the template chat clients get follows the plan (and the extra arguments)
        self.launch_panel.show_auto_port(self.auto_port)
        self.launch_panel.show_plan(self.plan, self.plan_error)
        if self.plan is not None and self.plan.memory is not None and self._projection_wanted() != self._projection_key:
            self._projection_timer.start()
        if self.settings.lan:
            self.launch_panel.show_lan_urls(network.lan_urls(self.port), self.port)
        self._update_actions(why)

    def _update_actions(self, why: str = "") -> None:
        running = self.state.running or self.state is ServerState.STOPPING
        if self.tuning:
            self.toolbar.set_launch(False, "Tune is measuring on its own servers; wait for it or cancel it")
        elif running:
            self.toolbar.set_launch(False, "llama-server is already running; stop it first")
        else:
            self.toolbar.set_launch(self.plan is not None, why or self.plan_error or "select a model")
        tune_ok = self.plan is not None and not running and not self.tuning
        self.launch_panel.tune_btn.setEnabled(tune_ok)
        self.launch_panel.tune_btn.setToolTip(
            TUNE_TIP if tune_ok else
            "Tune is running" if self.tuning else
            "Stop the running server first: tuning starts its own servers" if running else
            f"Cannot tune: {why or self.plan_error}")

    # --- memory evidence ----------------------------------------------------------------------------
    def _projection_wanted(self) -> object:
        mem = self.plan.memory if self.plan is not None else None
        if mem is None or self.model is None or self.binary is None:
            return None
        return (self.binary.path, self.model.path, mem.launch.key(), mem.context)

    def _load_evidence(self) -> None:
        """Past launches of this model (a small file): read at once; the projection comes later."""
        self.memory_evidence = None
        self._projection_key = None
        if self.model is not None and self.caps is not None and self.binary is not None and not self.model.error:
            from llama_launcher.core.memory import evidence as memory_evidence

            self.memory_evidence = memory_evidence.gather(self.model, self.caps.build_number)

    def _ask_projection(self) -> None:
        key = self._projection_wanted()
        if key is None or key == self._projection_key or self.plan is None or self.plan.memory is None:
            return
        self._projection_key = key
        assert self.binary is not None and self.model is not None and self.caps is not None
        self.request_projection.emit(key, self.memory_evidence or MemoryEvidence(), self.binary.path, self.model,
                                     self.plan.memory.launch, self.plan.memory.context)

    def _projected(self, key: object, evidence: MemoryEvidence) -> None:
        if key != self._projection_wanted():
            return  # the model or the settings changed meanwhile: a newer request is on its way
        if self.memory_evidence is not None:  # a launch may have been learned meanwhile: keep the newest
            evidence = dataclasses.replace(evidence, measurements=self.memory_evidence.measurements)
        self.memory_evidence = evidence
        self.replan()

    def _learned(self, what: str) -> None:
        if what:
            self.logs.append_own([f"[launcher] memory learned from this launch: {what}"])
        self._load_evidence()
        self.replan()

    def _load_tuned(self) -> None:
        """Read the stored tuning result once per model/binary (and after a tune), not on every replan."""
        t = None
        if self.model is not None and self.caps is not None:
            t = tuning_store.lookup(self.model.path, self.caps.build_number)
            self._show_notices()
        self.tuned = t
        self._load_evidence()
        self.launch_panel.show_tuned(t.describe() if t else None, t.table if t else None, t.note if t else "")

    # --- server lifecycle ---------------------------------------------------------------------------
    def launch(self) -> None:
        if self.plan is None or self.state.running or self.tuning or self.binary is None or self.model is None:
            return
        self._save_now()  # what is launched is what the next start shows, whatever happens to this process
        if not network.port_is_free(self.port):
            if self.settings.port == AUTO_PORT:
                self.auto_port = network.free_port()  # Auto: just take another one
            else:
                msg = network.port_in_use_message(self.port)
                nxt = network.next_free_port(self.port)
                self.launch_panel.show_port_problem(f"{msg}; {PORT_WAY_OUT}")
                self.show_notice(f"cannot launch: {msg}", error=True,
                                 action=(f"Launch on port {nxt} instead", self._launch_on_free_port))
                return
        self.replan()
        if self.plan is None:
            return
        self.run += 1
        self.log_path = ""
        self.logs.begin_run(self.run)
        self.live.reset()
        self.hide_banner()
        self.checks = None
        self.watch = self._new_watch(self.plan)
        self.launched = (self.plan, self.model, self.caps.build_number if self.caps else None)
        key = self.api_key.key if self.settings.lan and self.api_key else ""
        self.served = _Served(lan=self.settings.lan, key=key, port=self.port)
        self._state_changed(ServerEvent(self.run, ServerState.STARTING))
        self.request_start.emit(self.run, list(self.plan.argv), READY_TIMEOUT_S, dict(self.plan.env), key)

    def _new_watch(self, plan: Plan) -> SpeculationWatch | None:
        spec = plan.speculative
        if not spec.methods:
            return None
        return SpeculationWatch(combo_label(spec.methods), self.tuned.off_tps if self.tuned is not None else None)

    def stop_server(self) -> None:
        if self.state.running:
            self._state_changed(ServerEvent(self.run, ServerState.STOPPING))
            self.stop_reply()
            self.request_stop.emit()

    def _run_started(self, run: int, base_url: str, log_path: str) -> None:
        if run != self.run:
            return
        self.base_url = base_url
        self.log_path = log_path
        self.logs.set_log_path(run, log_path or None)

    def _display_url(self) -> str:
        if self.served.lan:
            urls = network.lan_urls(self.served.port)
            if urls:
                return urls[0]
        return self.base_url + "/v1"

    def _state_changed(self, event: ServerEvent) -> None:
        if event.run != self.run:
            return  # a late event of an earlier launch
        state = self.state = event.state
        reason = event.reason.message if event.reason else ""
        evidence = list(event.reason.evidence) if event.reason else []
        code = event.reason.code if event.reason else ""
        self.toolbar.show_state(state, self.base_url, self._display_url())
        self.live.set_server_ready(state is ServerState.READY)
        if state is ServerState.READY:
            self.metrics.start(self.base_url, self.served.key)
            self.statusBar().showMessage(f"llama-server is ready at {self._display_url()}")
            self.tabs.setCurrentIndex(1)
        elif state is ServerState.FAILED:
            self.metrics.stop()
            text = reason or "llama-server failed"
            if evidence:
                text += "\n" + "\n".join(f"  │ {e}" for e in evidence[:3])
            action = None
            if code == "port_in_use":  # the port it was started on, which the setting may have left since
                port = self.served.port or self.port
                text = f"{network.port_in_use_message(port)}; {PORT_WAY_OUT}"
                action = (f"Launch on port {network.next_free_port(port)} instead", self._launch_on_free_port)
            self.show_notice(text, error=True, action=action)
            self.statusBar().showMessage(f"llama-server failed: {reason}")
        else:
            if state.ended or state is ServerState.IDLE:
                self.metrics.stop()
            self.statusBar().showMessage(STATUS_TEXT.get(state, state.value))
        if state.ended:
            self._learn_from_launch()
        self._update_actions()

    def _learn_from_launch(self) -> None:
        """What the server reported about its memory (at exit, -lv 4) teaches the next estimate."""
        launched, self.launched = self.launched, None
        if launched is None or launched[0].memory is None:
            return
        plan, model, build = launched
        self.request_learn.emit(model, build, plan.memory, self.log_path)  # this run's log, or none

    def _server_checked(self, checks: ServerChecks) -> None:
        if self.state is not ServerState.READY:
            return
        self.checks = checks
        self.toolbar.set_web_ui(checks.web_ui, checks.web_ui_reason)
        if checks.template.ok is False:
            self.show_notice(checks.template.message, error=True)
            self.live.show_warning(checks.template.message)
        self.logs.append_own([f"[launcher] chat template: {checks.template.message}",
                                "[launcher] web UI: " + ("served at /" if checks.web_ui else checks.web_ui_reason)])

    # --- try it ------------------------------------------------------------------------------------
    def _send_prompt(self, text: str, max_tokens: int) -> None:
        if self.state is ServerState.READY:
            self.chat_worker.arm()
            self.request_chat.emit(self.base_url, text, self.served.key, max_tokens, self.live.completion_mode)

    def stop_reply(self) -> None:
        self.chat_worker.cancel()  # direct: closes the reply's connection at once

    def _chat_delta(self, text: str, speed) -> None:
        self.live.append_reply(text)
        self.live.show_own(speed)

    def _chat_finished(self, result) -> None:
        self.last_chat = result
        self.live.reply_finished(result.speed, result.usage, "", stopped=result.stopped)
        if self.watch is not None and not result.stopped:
            self.watch.add(result.speed)
            self.live.show_verdict(self.watch.verdict())

    def _chat_failed(self, error: str) -> None:
        self.live.reply_finished(None, None, error)

    def _metrics_speed(self, speed) -> None:
        counted = self.live.show_clients(speed)
        if counted and self.watch is not None:
            self.watch.add(speed)
            self.live.show_verdict(self.watch.verdict())

    # --- tuning ------------------------------------------------------------------------------------
    def tune(self) -> None:
        if self.plan is None or self.binary is None or self.model is None or self.state.running or self.tuning:
            return
        self.tuning = True
        self.statusBar().showMessage("tuning: measuring the speculative settings on this machine… "
                                     "(Cancel is in Launch setup)")
        self.launch_panel.tuning(True)
        self.tabs.setCurrentIndex(0)
        self.run += 1
        self.logs.begin_run(self.run)
        self._update_actions()
        base = self.current_plan_settings()
        base = dataclasses.replace(base, modes={})  # Auto everywhere: tune decides
        self.tune_worker.arm()
        self.request_tune.emit(self.run, self.binary.path, self.model, self.hw, self.caps, base, list(self.drafts))

    def _tune_log(self, line: str) -> None:
        self.logs.append_own([TUNE_LOG_PREFIX + line])

    def _tune_server_lines(self, batch: LogBatch) -> None:
        self.logs.append_batch(dataclasses.replace(batch, lines=tuple(TUNE_LOG_PREFIX + ln for ln in batch.lines)))

    def cancel_tune(self) -> None:
        if self.tuning:
            self.launch_panel.tune_cancel_btn.setEnabled(False)
            self.launch_panel.tune_stage.setText("cancelling…")
            self.tune_worker.cancel()  # direct: stops the server in use at once

    def _tune_done(self) -> None:
        self.tuning = False
        self.launch_panel.tuning(False)
        self._load_tuned()
        self.replan()

    def _tuned(self, outcome) -> None:
        self._tune_done()
        self.statusBar().showMessage(f"tuning finished: {outcome.choice.describe()}")

    def _tune_cancelled(self) -> None:
        self._tune_done()
        self.statusBar().showMessage("tuning cancelled: nothing was stored")
        self.launch_panel.tune_label.setText((self.tuned.describe() if self.tuned else
                                              "not measured on this machine yet") + "\ntuning cancelled")

    def _tune_failed(self, error: str) -> None:
        self._tune_done()
        self.show_notice(f"tuning stopped: {error}", error=True)

    # --- settings and closing ----------------------------------------------------------------------
    def _save_settings(self) -> None:
        """Save soon: a burst of changes (typing, a slider, a spin box) is one write, off the keystroke."""
        self._save_timer.start()

    def _save_now(self) -> None:
        self._save_timer.stop()
        if not settings_store.save(self.settings):
            self._show_notices()

    def closeEvent(self, event) -> None:
        if (self.state.running or self.tuning) and not self._quitting:
            what = "Tune is still measuring" if self.tuning else "llama-server is still running"
            box = QMessageBox(QMessageBox.Icon.Question, "Stop llama-server?",
                              f"{what}. Closing the window stops it.", parent=self)
            stop = box.addButton("Stop server and close", QMessageBox.ButtonRole.AcceptRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(stop)
            box.exec()
            if box.clickedButton() is not stop:
                event.ignore()
                return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop the server (always), save settings, end the worker threads. Safe to call twice."""
        if self._quitting:
            return
        self._quitting = True
        self.metrics.stop()
        self.tune_worker.cancel()
        self.chat_worker.cancel()
        self.server_worker.stop_now()
        self.server_setup.shutdown()
        if self._get_models is not None:
            self._get_models.shutdown()  # a download in progress stops; what arrived is kept for a resume
        self.settings.window_geometry = base64.b64encode(bytes(self.saveGeometry().data())).decode()
        self.settings.window_state = base64.b64encode(bytes(self.saveState().data())).decode()
        self._save_now()
        for thread, worker in self._worker_threads:
            stop_thread(thread, worker)
