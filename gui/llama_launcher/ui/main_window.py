"""The main window: composes the panels and wires them to the workers and the core.

Decisions live in core (planner, catalog, probe, runner); this class keeps the current selection,
asks the planner for a plan whenever a control changes, and forwards user actions to workers
through queued signals. Nothing here blocks the GUI thread for more than a file stat.
"""

from __future__ import annotations

import base64
import functools
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QModelIndex, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from llama_launcher import __version__
from llama_launcher.core import api_key_store, settings_store, tuning_store
from llama_launcher.core.binary_discovery import Candidate, find_server
from llama_launcher.core.binary_probe import Capabilities
from llama_launcher.core.hardware import Hardware
from llama_launcher.core.launch_planner import (
    Plan,
    PlanError,
    PlanSettings,
    mtp_availability,
    ngram_availability,
    plan_launch,
)
from llama_launcher.core.model_catalog import CatalogResult, platform_reveal_command
from llama_launcher.core.model_info import ModelInfo
from llama_launcher.core.server_process import FAILED, LOADING, READY, STARTING, STOPPED, STOPPING, free_port
from llama_launcher.core.tuning_store import TunedChoice
from llama_launcher.ui.launch_panel import TUNE_TIP, LaunchPanel
from llama_launcher.ui.live_panel import LivePanel
from llama_launcher.ui.log_view import LogView
from llama_launcher.ui.metrics_poller import MetricsPoller
from llama_launcher.ui.model_table import MODEL_ROLE, ModelFilterProxy, ModelTableModel
from llama_launcher.ui.resources import icon
from llama_launcher.ui.server_setup import ServerSetup
from llama_launcher.ui.side_panels import HardwarePanel, ServerPanel
from llama_launcher.ui.workers import (
    BuildWorker,
    ChatWorker,
    ScanWorker,
    ServerWorker,
    TuneWorker,
    start_in_thread,
    stop_thread,
)

READY_TIMEOUT_S = 300.0
RUNNING = (STARTING, LOADING, READY)
STATE_TEXT = {"idle": "Not running", STARTING: "Starting…", LOADING: "Loading model…", READY: "Ready",
              STOPPING: "Stopping…", STOPPED: "Stopped", FAILED: "Failed"}


class MainWindow(QMainWindow):
    # requests to workers (queued: they run in the workers' threads)
    request_probe = Signal(str)
    request_start = Signal(list, float)
    request_stop = Signal()
    request_scan = Signal(list)
    request_tune = Signal(str, object, object, object, object)
    request_chat = Signal(str, str, str, int)
    request_build = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Llama Launcher")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.settings, notice = settings_store.load()
        self.catalog: CatalogResult | None = None
        self.model: ModelInfo | None = None
        self.binary: Candidate | None = None
        self.caps: Capabilities | None = None
        self.hw: Hardware | None = None
        self.plan: Plan | None = None
        self.tuned: TunedChoice | None = None  # measured result for this model + binary + machine
        self.plan_error = ""
        self.port = free_port()
        self.state = "idle"
        self.base_url = ""
        self.last_chat = None  # the last 'Try it' result (ChatResult)
        self.api_key = api_key_store.load_or_create() if self.settings.lan else ""
        self._quitting = False

        self._build_ui()
        self._start_workers()
        self._restore_geometry()
        if notice:
            self.show_notice(notice)
        self._discover_binary()
        self.rescan()

    # --- construction ----------------------------------------------------------------------------
    def _build_ui(self) -> None:
        # toolbar: launch / stop / state / endpoint
        tb = QToolBar("Server")
        tb.setObjectName("serverToolbar")
        tb.setMovable(False)
        tb.setIconSize(QSize(20, 20))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        self.launch_action = QAction(icon("play"), "Launch", self)
        self.launch_action.setShortcuts([QKeySequence("F5"), QKeySequence("Ctrl+R")])
        self.launch_action.setToolTip("Start llama-server with the command shown in the preview (F5 or Ctrl+R)")
        self.stop_action = QAction(icon("stop"), "Stop", self)
        self.stop_action.setShortcuts([QKeySequence("Shift+F5"), QKeySequence("Ctrl+.")])
        self.stop_action.setToolTip("Stop llama-server (Shift+F5 or Ctrl+.)")
        self.stop_action.setEnabled(False)
        tb.addAction(self.launch_action)
        tb.addAction(self.stop_action)
        tb.addSeparator()
        self.state_badge = QLabel(STATE_TEXT["idle"])
        self.state_badge.setObjectName("stateBadge")
        self.state_badge.setProperty("state", "idle")
        self.state_badge.setAccessibleName("Server state")
        tb.addWidget(self.state_badge)
        spacer = QWidget()
        spacer.setFixedWidth(12)
        tb.addWidget(spacer)
        self.endpoint = QLineEdit()
        self.endpoint.setReadOnly(True)
        self.endpoint.setPlaceholderText("endpoint appears when the server runs")
        self.endpoint.setMaximumWidth(260)
        self.endpoint.setAccessibleName("Endpoint URL")
        tb.addWidget(self.endpoint)
        self.copy_url_action = QAction(icon("copy"), "Copy URL", self)
        self.copy_url_action.setToolTip("Copy the OpenAI-compatible base URL (…/v1)")
        self.webui_action = QAction(icon("globe"), "Open web UI", self)
        self.webui_action.setToolTip("Open llama-server's built-in chat page in your browser")
        for a in (self.copy_url_action, self.webui_action):
            a.setEnabled(False)
            tb.addAction(a)

        # failure / notice banner
        self.banner = QLabel("")
        self.banner.setObjectName("failureReason")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner_close = QPushButton("Dismiss")
        self.banner_close.setVisible(False)

        # models (left)
        self.table_model = ModelTableModel()
        self.proxy = ModelFilterProxy()
        self.proxy.setSourceModel(self.table_model)
        self.table = QTableView()
        self.table.setObjectName("modelsTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.setAccessibleName("Models")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, 8):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setColumnHidden(7, True)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search models (name, architecture, quantization, folder)")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search models")
        self.add_folder_btn = QPushButton(icon("add"), "Add folder…")
        self.add_folder_btn.setToolTip("Add a folder to scan for .gguf models (you can also drop files or folders here)")
        self.remove_folder_btn = QPushButton(icon("remove"), "Remove folder…")
        self.remove_folder_btn.setToolTip("Stop scanning one of the folders you added")
        self.rescan_btn = QPushButton(icon("refresh"), "Rescan")
        self.reveal_btn = QPushButton(icon("folder"), "Reveal")
        self.reveal_btn.setToolTip("Show the selected model in Finder / Explorer")
        self.scan_progress = QProgressBar()
        self.scan_progress.setMaximumHeight(6)
        self.scan_progress.setTextVisible(False)
        self.scan_progress.setVisible(False)
        self.scan_status = QLabel("")
        self.scan_status.setObjectName("muted")
        self.scan_status.setWordWrap(True)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(8, 8, 4, 8)
        title = QLabel("Models")
        title.setObjectName("sectionTitle")
        ll.addWidget(title)
        ll.addWidget(self.search)
        ll.addWidget(self.scan_progress)
        ll.addWidget(self.table, 1)
        row = QHBoxLayout()
        for b in (self.add_folder_btn, self.remove_folder_btn, self.rescan_btn, self.reveal_btn):
            row.addWidget(b)
        row.addStretch(1)
        ll.addLayout(row)
        ll.addWidget(self.scan_status)

        # tabs (right)
        self.launch_panel = LaunchPanel()
        self.live = LivePanel()
        self.logs = LogView()
        self.hardware_panel = HardwarePanel()
        self.server_panel = ServerPanel()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.launch_panel, "Launch setup")
        self.tabs.addTab(self.live, "Live")
        self.tabs.addTab(self.logs, "Logs")
        self.tabs.addTab(self.hardware_panel, "Hardware")
        self.tabs.addTab(self.server_panel, "llama-server")
        self.model_title = QLabel("Select a model")
        self.model_title.setObjectName("sectionTitle")
        self.model_title.setWordWrap(True)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(4, 8, 8, 8)
        rl.addWidget(self.model_title)
        rl.addWidget(self.tabs, 1)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([520, 700])
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        brow = QHBoxLayout()
        brow.setContentsMargins(10, 6, 10, 0)
        brow.addWidget(self.banner, 1)
        brow.addWidget(self.banner_close, 0, Qt.AlignmentFlag.AlignTop)
        cl.addLayout(brow)
        cl.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage(f"Llama Launcher {__version__}")
        self.resize(1280, 820)

        # wiring (signals up, calls down)
        self.launch_action.triggered.connect(self.launch)
        self.stop_action.triggered.connect(self.stop_server)
        self.copy_url_action.triggered.connect(lambda: QGuiApplication.clipboard().setText(self.base_url + "/v1"))
        self.webui_action.triggered.connect(lambda: QDesktopServices.openUrl(QUrl(self.base_url)))
        self.search.textChanged.connect(self.proxy.set_search)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.table.customContextMenuRequested.connect(self._table_menu)
        self.add_folder_btn.clicked.connect(self.add_folder)
        self.remove_folder_btn.clicked.connect(self.remove_folder)
        self.rescan_btn.clicked.connect(self.rescan)
        self.reveal_btn.clicked.connect(self.reveal_selected)
        self.banner_close.clicked.connect(self.hide_banner)
        self.launch_panel.changed.connect(self.replan)
        self.launch_panel.lan_toggled.connect(self._lan_toggled)
        self.launch_panel.regenerate_key.connect(self._new_key)
        self.launch_panel.tune_requested.connect(self.tune)
        self.server_panel.choose.connect(self.choose_binary)
        self.server_panel.build.connect(self.build_binary)
        self.live.send_prompt.connect(self._send_prompt)
        self.metrics = MetricsPoller(self)
        self.metrics.speed.connect(self.live.show_clients)

    def _run_in_thread(self, worker, name: str) -> None:
        self._worker_threads.append((start_in_thread(worker, name), worker))

    def _start_workers(self) -> None:
        self._worker_threads: list[tuple] = []
        self.server_worker = ServerWorker()
        self._run_in_thread(self.server_worker, "server-worker")
        QTimer.singleShot(0, self.server_worker, self.server_worker.setup)
        self.request_probe.connect(self.server_worker.probe)
        self.request_start.connect(self.server_worker.start)
        self.request_stop.connect(self.server_worker.stop)
        self.server_worker.probed.connect(self._probed)
        self.server_worker.probe_failed.connect(self._probe_failed)
        self.server_worker.state_changed.connect(self._state_changed)
        self.server_worker.lines.connect(self.logs.append_lines)
        self.server_worker.started_run.connect(self._run_started)

        self.scan_worker = ScanWorker()
        self._run_in_thread(self.scan_worker, "scan-worker")
        self.request_scan.connect(self.scan_worker.scan)
        self.scan_worker.progress.connect(self._scan_progress)
        self.scan_worker.finished.connect(self._scanned)

        self.tune_worker = TuneWorker()
        self._run_in_thread(self.tune_worker, "tune-worker")
        self.request_tune.connect(self.tune_worker.tune)
        self.tune_worker.progress.connect(self._tune_progress)
        self.tune_worker.log.connect(lambda s: self.statusBar().showMessage(s))
        self.tune_worker.finished.connect(self._tuned)
        self.tune_worker.failed.connect(self._tune_failed)
        # a lambda runs in the GUI thread at once; connecting the worker's method itself would queue the
        # call in the worker's thread, behind the tuning it is meant to stop
        self.launch_panel.tune_cancel.connect(lambda: self.tune_worker.cancel())

        self.chat_worker = ChatWorker()
        self._run_in_thread(self.chat_worker, "chat-worker")
        self.request_chat.connect(self.chat_worker.send)
        self.chat_worker.delta.connect(self._chat_delta)
        self.chat_worker.finished.connect(self._chat_finished)
        self.chat_worker.failed.connect(self._chat_failed)
        self.live.cancel_prompt.connect(lambda: self.chat_worker.cancel())  # at once, as for tuning

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
    def show_notice(self, text: str, error: bool = False) -> None:
        self.banner.setText(("⛔ " if error else "ℹ ") + text)
        self.banner.setProperty("kind", "error" if error else "notice")
        self.banner.setVisible(True)
        self.banner_close.setVisible(True)

    def hide_banner(self) -> None:
        self.banner.setVisible(False)
        self.banner_close.setVisible(False)

    # --- binary ----------------------------------------------------------------------------------
    def _discover_binary(self) -> None:
        self.binary = find_server(self.settings.binary, "setting")
        if self.binary is None:
            self.server_panel.show_binary(None, "", None, "No llama-server was found on this computer.")
            self.hardware_panel.show_hardware(None)
            self.show_notice("No llama-server found. Open the llama-server tab to install or build one.")
            self.tabs.setCurrentWidget(self.server_panel)
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
            self.tabs.setCurrentWidget(self.server_panel)
        self.replan()

    def choose_binary(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose llama-server", str(Path.home()))
        if path:
            self.use_binary(path)

    def use_binary(self, path: str) -> None:
        self.settings.binary = path
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
        self.scan_progress.setVisible(True)
        self.scan_progress.setRange(0, 0)
        self.scan_status.setText("scanning…")
        self.rescan_btn.setEnabled(False)
        self.request_scan.emit(list(self.settings.folders))

    def _scan_progress(self, i: int, n: int) -> None:
        self.scan_progress.setRange(0, max(n, 1))
        self.scan_progress.setValue(i)

    def _scanned(self, result: CatalogResult) -> None:
        self.catalog = result
        self.scan_progress.setVisible(False)
        self.rescan_btn.setEnabled(True)
        keep = self.model.path if self.model else self.settings.last_model
        self.table_model.set_models(result.models)
        ok = sum(1 for m in result.models if m.launchable)
        bad = sum(1 for m in result.models if m.error)
        folders = ", ".join(f"{f.source}: {f.path}" for f in result.folders) or "none"
        self.scan_status.setText(f"{ok} models" + (f", {bad} unreadable" if bad else "") + f" · scanned {folders}"
                                 + ("".join(f"\n{n}" for n in result.notes)))
        if not result.models:
            self.model_title.setText("No models found: add a folder, or drop a .gguf file onto this window")
        self.select_model(keep)

    def select_model(self, path: str | None) -> None:
        row = self.table_model.row_of(path) if path else -1
        if row < 0:
            row = next((i for i, m in enumerate(self.table_model.models) if m.launchable), -1)
        if row >= 0:
            idx = self.proxy.mapFromSource(self.table_model.index(row, 0))
            self.table.setCurrentIndex(idx)
            self.table.scrollTo(idx)
        else:
            self._set_model(None)

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        m = self.proxy.data(current, MODEL_ROLE) if current.isValid() else None
        self._set_model(m)

    def _set_model(self, m: ModelInfo | None) -> None:
        self.model = m
        if m is None:
            self.replan()
            return
        self.settings.last_model = m.path
        if m.error:
            self.model_title.setText(f"{m.file_name} — cannot be launched: {m.error}")
        else:
            badge = "  ·  MTP" if m.is_mtp else ""
            self.model_title.setText(f"{m.name}  ·  {m.architecture or '?'}  ·  {m.quantization or '?'}{badge}")
        self.launch_panel.load(self.settings.model(m.path), self.settings.lan, self.api_key)
        self._load_tuned()
        self.replan()

    def _table_menu(self, pos) -> None:
        menu = QMenu(self)
        menu.addAction("Reveal in " + ("Finder" if sys.platform == "darwin" else "Explorer" if sys.platform == "win32"
                                       else "file manager"), self.reveal_selected)
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(self.model.path if self.model else ""))
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def reveal_selected(self) -> None:
        if self.model is None:
            return
        if sys.platform.startswith("linux"):
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.model.folder))
            return
        try:
            subprocess.Popen(platform_reveal_command(self.model.path))  # noqa: S603 - argv list, no shell
        except OSError as exc:
            self.statusBar().showMessage(f"cannot reveal the file: {exc.strerror or exc}")

    def add_folder(self, folder: str | None = None) -> None:
        if not folder:
            folder = QFileDialog.getExistingDirectory(self, "Add a folder with .gguf models", str(Path.home()))
        if folder and folder not in self.settings.folders:
            self.settings.folders.append(folder)
            self._save_settings()
            self.rescan()

    def remove_folder(self) -> None:
        if not self.settings.folders:
            QMessageBox.information(self, "Remove folder", "You have not added any folders; the default places are "
                                    "always scanned when they exist.")
            return
        menu = QMenu(self)
        for f in self.settings.folders:
            menu.addAction(f, functools.partial(self._remove_folder, f))
        menu.exec(self.remove_folder_btn.mapToGlobal(self.remove_folder_btn.rect().bottomLeft()))

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

    # --- planning --------------------------------------------------------------------------------
    def current_plan_settings(self, port: int | None = None) -> PlanSettings:
        ms = self.launch_panel.model_settings()
        return PlanSettings(
            mtp=ms.mtp, ngram_mod=ms.ngram_mod, draft_n_max=ms.draft_n_max, ngram_n_match=ms.ngram_n_match,
            ngram_n_min=ms.ngram_n_min, ngram_n_max=ms.ngram_n_max, ctx=ms.ctx, threads=ms.threads,
            gpu_layers=ms.gpu_layers, extra_args=ms.extra_args, lan=self.settings.lan,
            api_key=self.api_key or None, port=port or self.port, vision=ms.vision)

    def replan(self) -> None:
        self.plan, self.plan_error = None, ""
        m, caps, hw = self.model, self.caps, self.hw
        if m is not None and not m.error:
            ms = self.launch_panel.model_settings()
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
            self.launch_panel.set_availability(mtp_availability(m, caps), ngram_availability(caps))
            try:
                self.plan = plan_launch(self.binary.path, m, hw, caps, self.current_plan_settings(), self.tuned)
            except PlanError as exc:
                self.plan_error = str(exc)
                why = str(exc)
        self.launch_panel.show_plan(self.plan, self.plan_error)
        can = self.plan is not None and self.state not in RUNNING and self.state != STOPPING
        self.launch_action.setEnabled(can)
        self.launch_action.setToolTip("Start llama-server (F5 or Ctrl+R)" if self.plan else f"Cannot launch: {why}")
        tune_ok = self.plan is not None and self.state not in RUNNING
        self.launch_panel.tune_btn.setEnabled(tune_ok)
        self.launch_panel.tune_btn.setToolTip(
            TUNE_TIP if tune_ok else
            ("Stop the running server first: tuning starts its own servers" if self.state in RUNNING else
             f"Cannot tune: {why}"))

    def _lan_toggled(self, on: bool) -> None:
        self.settings.lan = on
        if on and not self.api_key:
            self.api_key = api_key_store.load_or_create()
        self.launch_panel.api_key.setText(self.api_key if on else "")
        self._save_settings()

    def _new_key(self) -> None:
        self.api_key = api_key_store.regenerate()
        self.launch_panel.api_key.setText(self.api_key)
        self.replan()

    def _load_tuned(self) -> None:
        """Read the stored tuning result once per model/binary (and after a tune), not on every replan."""
        t = None
        if self.model is not None and self.caps is not None:
            t = tuning_store.lookup(self.model.path, self.caps.build_number)
        self.tuned = t
        self.launch_panel.show_tuned(t.describe() if t else None, t.table if t else None)

    # --- server lifecycle ---------------------------------------------------------------------------
    def launch(self) -> None:
        if self.plan is None or self.state in RUNNING or self.binary is None or self.model is None:
            return
        self.port = free_port()  # chosen just before start
        self.replan()
        if self.plan is None:
            return
        self.logs.clear()
        self.live.reset()
        self.hide_banner()
        self._state_changed(STARTING, "", [])
        self.request_start.emit(list(self.plan.argv), READY_TIMEOUT_S)

    def stop_server(self) -> None:
        if self.state in RUNNING:
            self._state_changed(STOPPING, "", [])
            self.request_stop.emit()

    def _run_started(self, base_url: str, log_path: str) -> None:
        self.base_url = base_url
        self.logs.log_path = log_path or None

    def _state_changed(self, state: str, reason: str, evidence: list) -> None:
        self.state = state
        self.state_badge.setText(STATE_TEXT.get(state, state))
        self.state_badge.setProperty("state", state)
        self.state_badge.style().unpolish(self.state_badge)
        self.state_badge.style().polish(self.state_badge)
        running = state in RUNNING
        self.stop_action.setEnabled(running)
        self.live.set_server_ready(state == READY)
        ready = state == READY
        self.copy_url_action.setEnabled(ready)
        self.webui_action.setEnabled(ready)
        if ready:
            self.endpoint.setText(self.base_url + "/v1")
            self.metrics.start(self.base_url, self.api_key if self.settings.lan else "")
            self.statusBar().showMessage(f"llama-server is ready at {self.base_url}")
            self.tabs.setCurrentWidget(self.live)
        elif state in (STOPPED, FAILED, "idle"):
            self.metrics.stop()
            self.endpoint.setText("")
        if state == FAILED:
            text = reason or "llama-server failed"
            if evidence:
                text += "\n" + "\n".join(f"  │ {e}" for e in evidence[:3])
            self.show_notice(text, error=True)
            self.statusBar().showMessage(f"failed: {reason}")
        self.replan()

    # --- try it ------------------------------------------------------------------------------------
    def _send_prompt(self, text: str, max_tokens: int) -> None:
        if self.state == READY:
            self.request_chat.emit(self.base_url, text, self.api_key if self.settings.lan else "", max_tokens)

    def _chat_delta(self, text: str, speed) -> None:
        self.live.append_reply(text)
        self.live.show_own(speed)

    def _chat_finished(self, result) -> None:
        self.last_chat = result
        self.live.reply_finished(result.speed, result.usage, "")

    def _chat_failed(self, error: str) -> None:
        self.live.reply_finished(None, None, error)

    # --- tuning ------------------------------------------------------------------------------------
    def tune(self) -> None:
        if self.plan is None or self.binary is None or self.model is None or self.state in RUNNING:
            return
        self.launch_panel.tuning(True)
        base = self.current_plan_settings()
        base.mtp, base.ngram_mod = "auto", "auto"
        self.request_tune.emit(self.binary.path, self.model, self.hw, self.caps, base)

    def _tune_progress(self, i: int, n: int) -> None:
        self.launch_panel.tune_progress.setRange(0, n)
        self.launch_panel.tune_progress.setValue(i)

    def _tuned(self, choice, rows: list) -> None:
        self.launch_panel.tuning(False)
        self.statusBar().showMessage(f"tuning finished: {choice.describe()}")
        self._load_tuned()
        self.replan()

    def _tune_failed(self, error: str) -> None:
        self.launch_panel.tuning(False)
        self.show_notice(f"tuning stopped: {error}", error=True)
        self._load_tuned()
        self.replan()

    # --- settings and closing ----------------------------------------------------------------------
    def _save_settings(self) -> None:
        try:
            settings_store.save(self.settings)
        except OSError as exc:
            self.statusBar().showMessage(f"settings could not be saved: {exc.strerror or exc}")

    def closeEvent(self, event) -> None:
        if self.state in RUNNING and not self._quitting:
            box = QMessageBox(QMessageBox.Icon.Question, "Stop llama-server?",
                              "llama-server is still running. Closing the window stops it.", parent=self)
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
        self.settings.window_geometry = base64.b64encode(bytes(self.saveGeometry().data())).decode()
        self.settings.window_state = base64.b64encode(bytes(self.saveState().data())).decode()
        self._save_settings()
        for thread, worker in self._worker_threads:
            stop_thread(thread, worker)
