"""The main window: the controllers and the widgets, composed and connected.

Controllers (``ui/controllers/``) hold the state and run the work; widgets show it and say what the
user asked; this class connects the two and decides nothing that core could decide (which
controls apply, why Launch is off, what the banner says about a failure come from core). Calls
flow down (a click calls a controller), signals flow up (a controller says what changed).
"""

from __future__ import annotations

import base64
import os

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from llama_launcher import __version__
from llama_launcher.core.models.file_problem import explain_text
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.adopt import adopt_tuned
from llama_launcher.core.plan.controls import launch_controls
from llama_launcher.core.plan.gating import Situation, launch_gate, tune_gate
from llama_launcher.core.plan.planner import Plan
from llama_launcher.core.server.failure_reasons import PORT_WAY_OUT
from llama_launcher.core.server.process import ServerEvent, ServerState
from llama_launcher.core.settings.launch import AUTO_PORT
from llama_launcher.core.speculative.health import SpeculationWatch
from llama_launcher.core.speculative.methods import combo_label
from llama_launcher.core.state.words import sentence
from llama_launcher.ui import tooltips
from llama_launcher.ui.banner import Banner
from llama_launcher.ui.controllers.catalog import CatalogController
from llama_launcher.ui.controllers.chat import ChatController
from llama_launcher.ui.controllers.fallback import FallbackFlow
from llama_launcher.ui.controllers.llama_server import LlamaServerController
from llama_launcher.ui.controllers.notices import NoticeCenter
from llama_launcher.ui.controllers.plan import PlanController
from llama_launcher.ui.controllers.server import Launch, ServerController
from llama_launcher.ui.controllers.settings import SettingsController
from llama_launcher.ui.controllers.tune import TuneController
from llama_launcher.ui.hardware_panel import HardwarePanel
from llama_launcher.ui.launch.panel import LaunchPanel
from llama_launcher.ui.live_panel import LivePanel
from llama_launcher.ui.llama_server_tab import SERVER_TAB, LlamaServerTab
from llama_launcher.ui.log_view import LogView
from llama_launcher.ui.models_flow import ModelsFlow
from llama_launcher.ui.models_pane import ModelsPane
from llama_launcher.ui.resources import icon
from llama_launcher.ui.server_panel import ServerPanel
from llama_launcher.ui.server_toolbar import ServerToolbar
from llama_launcher.ui.tune_flow import TuneFlow

# the smallest window still shows the whole models table (its minimum, see models_pane) beside the setup
SETUP_MIN_WIDTH = 410
WINDOW_MIN_WIDTH = 960
TAB_SETUP, TAB_LIVE, TAB_LOGS, TAB_HARDWARE, TAB_SERVER = range(5)
TAB_NAMES = ("setup", "live", "logs", "hardware", SERVER_TAB)
STATUS_TEXT = {ServerState.STARTING: "starting llama-server…", ServerState.LOADING: "llama-server is loading the model…",
               ServerState.STOPPING: "stopping llama-server…", ServerState.STOPPED: "llama-server stopped",
               ServerState.IDLE: "llama-server is not running"}


def _scrolled(widget: QWidget) -> QScrollArea:
    """Tabs scroll instead of clipping on small screens (1024×640 must work)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(widget)
    return area


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Llama Launcher")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        tooltips.install()  # long explanations wrap at a readable width, inside the window
        self.settings_ctl = SettingsController(self)
        self.notices = NoticeCenter(self)
        self.llama = LlamaServerController(self.settings_ctl, self)
        self.catalog = CatalogController(self.settings_ctl, self)
        self.planner = PlanController(self.settings_ctl, self.llama, self)
        self.server = ServerController(self)
        self.chat = ChatController(self)
        self.tuner = TuneController(self)
        self.fallback = FallbackFlow(self.server, self.planner, self.notices, self._launch_plan,
                                     lambda text: self.say(text), self)
        self.watch: SpeculationWatch | None = None  # is speculation paying, for the running launch
        self._quitting = False
        self._build_ui()
        self.llama_tab = LlamaServerTab(self.llama, self.server_panel, self.hardware_panel, self.notices, self)
        self.llama_tab.wants_attention.connect(lambda: self.tabs.setCurrentIndex(TAB_SERVER))
        self.tabs.currentChanged.connect(lambda i: self.banner.set_current_tab(TAB_NAMES[i]))
        self.banner.set_current_tab(TAB_NAMES[self.tabs.currentIndex()])
        self.llama_tab.changed.connect(self.update_gates)
        self.tabs.currentChanged.connect(lambda i: self.llama_tab.shown() if i == TAB_SERVER else self.llama_tab.hidden())
        self.models_flow = ModelsFlow(self, self)
        self._connect_plan()
        self._connect_server()
        self.tune_flow = TuneFlow(self, self)
        self._restore_geometry()
        self.planner.start()
        self.llama.discover()
        self.catalog.rescan()
        self.notices.poll_files()  # what the state files said at start-up (a corrupt file set aside)

    # --- construction ----------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.toolbar = ServerToolbar(self)
        self.addToolBar(self.toolbar)
        self.launch_action, self.stop_action = self.toolbar.launch_action, self.toolbar.stop_action
        self.banner = Banner(self.notices)
        self.models_pane = ModelsPane()
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
        cl.addWidget(splitter, 1)
        cl.addWidget(self.banner)  # below the panes: appearing or going, it moves nothing the user reads
        self.setCentralWidget(central)
        self.say(f"Llama Launcher {__version__}")
        self.setMinimumSize(WINDOW_MIN_WIDTH, 560)
        self.resize(1280, 820)

    def show_setup(self) -> None:
        self.tabs.setCurrentIndex(TAB_SETUP)

    def say(self, text: str) -> None:
        """The status bar's line, as a sentence (core words messages to sit inside others)."""
        self.statusBar().showMessage(sentence(text))

    def _restore_geometry(self) -> None:
        s = self.settings_ctl.settings
        try:
            if s.window_geometry:
                self.restoreGeometry(QByteArray(base64.b64decode(s.window_geometry)))
            if s.window_state:
                self.restoreState(QByteArray(base64.b64decode(s.window_state)))
        except (ValueError, TypeError):
            pass

    # --- models: dropped files and folders (the rest is ui/models_flow.py) -------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if any(u.isLocalFile() and (u.toLocalFile().lower().endswith(".gguf") or os.path.isdir(u.toLocalFile()))
               for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.catalog.add_paths([u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()])
        event.acceptProposedAction()

    # --- the plan ----------------------------------------------------------------------------------
    def _connect_plan(self) -> None:
        planner, panel = self.planner, self.launch_panel
        planner.model_changed.connect(self._model_changed)
        planner.planned.connect(self._planned)
        planner.tuned_changed.connect(lambda: panel.tune.show_tuned(planner.tuned))
        planner.network_changed.connect(self._network_shown)
        planner.learned.connect(lambda what: self.logs.append_own([f"[launcher] memory learned from this launch: {what}"]))
        planner.failed.connect(lambda why: self.notices.show("plan", why, error=True))
        panel.changed.connect(lambda: planner.set_model_settings(panel.model_settings()))
        net = panel.network
        net.port_changed.connect(self._port_changed)
        net.lan_toggled.connect(self._lan_toggled)
        net.regenerate_key.connect(planner.regenerate_key)
        net.use_free_port.connect(self._use_free_port)

    def _model_changed(self) -> None:
        m, panel = self.planner.model, self.launch_panel
        if m is not None and m.error:
            self.model_title.setText(f"{m.file_name} cannot be launched")  # why: the note under it
        elif m is not None:
            badge = "  ·  MTP" if m.is_mtp else ""
            self.model_title.setText(f"{m.name}  ·  {m.architecture or '?'}  ·  {m.quantization or '?'}{badge}")
        panel.speculative.set_drafts(self.planner.drafts, self.planner.auto_pick)
        panel.load(self.planner.model_settings)
        panel.advanced.set_projector(m.mmproj if m is not None and not m.error else [])

    def _planned(self) -> None:
        p = self.planner
        if p.available:
            self.launch_panel.set_availability(p.available)
        self.launch_panel.show_plan(p.plan, p.plan_error)
        broken = p.model is not None and bool(p.model.error)
        note = explain_text(p.model.error) if p.model is not None and p.model.error else p.note
        if self.model_note.objectName() != ("failureReason" if broken else "muted"):  # a broken file's reason stands out
            self.model_note.setObjectName("failureReason" if broken else "muted")
            self.model_note.style().unpolish(self.model_note)
            self.model_note.style().polish(self.model_note)
        self.model_note.setText(note)
        self.model_note.setVisible(bool(note))
        self.live.set_completion_mode(bool(p.note))
        spec = p.plan.speculative if p.plan is not None else None
        self.launch_panel.set_controls(launch_controls(p.model, spec, p.model_settings, p.available, self.llama.hw))
        self.launch_panel.tune.show_adoption(adopt_tuned(p.model_settings, p.tuned) if p.tuned is not None else None)
        self.update_gates()

    def _network_shown(self) -> None:
        p = self.planner
        key = p.api_key.key if p.api_key is not None else ""
        self.launch_panel.network.show_network(p.port_setting, p.port, p.lan, key, p.lan_urls)
        note = p.auto.note() if p.port_setting == AUTO_PORT else ""
        self.launch_panel.network.show_auto_note(note)
        if note:
            self.notices.show("auto-port", note, tab=TAB_NAMES[TAB_SETUP])  # the Launch setup tab says it itself
        else:
            self.notices.clear("auto-port")

    def applies_next_launch(self, what: str) -> None:
        if self.server.running:
            self.say(f"{what} applies at the next launch; the running server keeps its own")

    def _port_changed(self, port: int) -> None:
        self.launch_panel.network.show_port_problem("")
        self.notices.clear("port")
        self.planner.set_port(port)
        self.applies_next_launch("the new port")

    def _lan_toggled(self, on: bool) -> None:
        self.planner.set_lan(on)
        self.applies_next_launch("LAN access" if on else "local-only access")

    def _use_free_port(self) -> None:
        self.launch_panel.network.show_port_problem("")
        self.notices.clear("port")
        self.planner.use_free_port()

    def situation(self) -> Situation:
        """What Launch and Tune depend on, for core's gates (core/plan/gating.py)."""
        p, llama = self.planner, self.llama
        return Situation(p.model, llama.binary is not None, llama.caps is not None and llama.hw is not None,
                         llama.probe_error, p.plan is not None, p.plan_error, self.server.state, self.tuner.running)

    def update_gates(self) -> None:
        s = self.situation()
        gate = launch_gate(s)
        self.toolbar.set_launch(gate.ok, gate.why)
        tune = tune_gate(s)
        self.launch_panel.tune.set_enabled(tune.ok, tune.why)

    # --- the server --------------------------------------------------------------------------------
    def _connect_server(self) -> None:
        server = self.server
        self.toolbar.launch.connect(self.launch)
        self.toolbar.stop.connect(self.stop_server)
        server.state_changed.connect(self._server_state)
        server.log_batch.connect(self.logs.append_batch)
        server.port_taken.connect(self._port_taken)
        server.checked.connect(self._server_checked)
        server.ended.connect(lambda launch, log: self.planner.learn(launch.model, launch.build, launch.plan, log))
        server.metrics.speed.connect(self._metrics_speed)
        server.metrics.positions.connect(
            lambda p: self.live.show_positions(p, self.server.launch_info.plan.speculative if self.server.launch_info
                                               else None))
        server.log_speed.connect(self._metrics_speed)  # a server without /metrics: its log says each request's speed
        server.metrics.unavailable.connect(self.live.show_metrics_unavailable)
        server.metrics.busy.connect(self.live.show_busy)
        self.live.send_prompt.connect(self._send_prompt)
        self.live.cancel_prompt.connect(self.chat.stop)  # direct: closes the reply's connection at once
        self.chat.delta.connect(self._chat_delta)
        self.chat.finished.connect(self._chat_finished)
        self.chat.failed.connect(lambda error: self.live.reply_finished(None, None, error))

    def launch(self) -> None:
        p = self.planner
        if not launch_gate(self.situation()).ok or p.plan is None or p.model is None:
            return
        self.settings_ctl.save_now()  # what is launched is what the next start shows, whatever happens to this process
        self.notices.clear("server", "port")
        self.fallback.new_launch()
        self._launch_plan(p.plan, p.model)

    def _launch_plan(self, plan: Plan, model: ModelInfo) -> None:
        p, llama = self.planner, self.llama
        self.live.reset()
        spec = plan.speculative
        tuned = p.tuned
        self.watch = SpeculationWatch(combo_label(spec.methods), tuned.off_tps if tuned else None) \
            if spec.methods else None
        key = p.api_key.key if p.lan and p.api_key else ""
        self.server.launch(Launch(plan, model, llama.caps.build_number if llama.caps else None, p.port, p.lan, key))

    def _launch_on_free_port(self) -> None:
        """The banner's way out after a taken port: one click moves to a free port and launches."""
        self._use_free_port()
        self.launch()

    def stop_server(self) -> None:
        if self.server.state.running:
            self.chat.stop()
            self.server.stop()

    def _port_taken(self, check) -> None:
        if check.free:  # taken when llama-server bound it, free again now
            self.notices.show("port", f"port {check.port} was taken when llama-server started; it is free now",
                              error=True, action=("Launch again", self.launch))
            return
        if self.planner.port_setting == AUTO_PORT:  # Auto: just take another one
            self.planner.use_free_port()
            self.launch()
            return
        self.launch_panel.network.show_port_problem(f"{check.message}; {PORT_WAY_OUT}")
        self.notices.show("port", f"cannot launch: {check.message}", error=True,
                          action=(f"Launch on port {check.next_free} instead", self._launch_on_free_port))

    def _display_url(self) -> str:
        launch = self.server.launch_info
        if launch is not None and launch.lan:
            urls = self.planner.lan_urls
            if urls:
                return urls[0]
        return self.server.base_url + "/v1"

    def _server_state(self, event: ServerEvent) -> None:
        state = event.state
        if state is ServerState.STARTING and event.run != self.logs.run:
            self.logs.begin_run(event.run)
            self.logs.append_own(self.fallback.take_log_lines())
        if self.server.log_path:
            self.logs.set_log_path(event.run, self.server.log_path)
        self.toolbar.show_state(state, self.server.base_url, self._display_url())
        self.live.set_server_ready(state is ServerState.READY)
        if state is ServerState.READY:
            self.say(f"llama-server is ready at {self._display_url()}")
            self.tabs.setCurrentIndex(TAB_LIVE)
        elif state is ServerState.FAILED:
            self._server_failed(event)
        else:
            self.say(STATUS_TEXT.get(state, state.value))
        self.update_gates()

    def _server_failed(self, event: ServerEvent) -> None:
        if self.fallback.failed(event):  # speculation crashed the start: retried once without it, and said
            return
        reason = event.reason
        text = reason.message if reason else "llama-server failed"
        if reason is not None and reason.evidence:
            text += "\n" + "\n".join(f"  │ {e}" for e in reason.evidence[:3])
        if reason is not None and reason.code == "port_in_use":
            return  # the server's controller asks who holds the port, then _port_taken offers the way out
        self.notices.show("server", text, error=True)
        self.say(f"llama-server failed: {reason.message if reason else ''}")

    def _server_checked(self, checks) -> None:
        self.toolbar.set_web_ui(checks.web_ui, checks.web_ui_reason)
        if checks.template.ok is False:
            self.notices.show("template", checks.template.message, error=True)
            self.live.show_warning(checks.template.message)
        self.logs.append_own([f"[launcher] chat template: {checks.template.message}",
                              "[launcher] web UI: " + ("served at /" if checks.web_ui else checks.web_ui_reason)])

    # --- try it ------------------------------------------------------------------------------------
    def _send_prompt(self, text: str, max_tokens: int) -> None:
        launch = self.server.launch_info
        if self.server.state is ServerState.READY:
            self.chat.send(self.server.base_url, text, launch.key if launch else "", max_tokens,
                           self.live.completion_mode)

    def _chat_delta(self, text: str, speed) -> None:
        self.live.append_reply(text)
        self.live.show_own(speed)

    def _chat_finished(self, result) -> None:
        self.live.reply_finished(result.speed, result.usage, "", stopped=result.stopped)
        if self.watch is not None and not result.stopped:
            self.watch.add(result.speed)
            self.live.show_verdict(self.watch.verdict())

    def _metrics_speed(self, speed) -> None:
        counted = self.live.show_clients(speed)
        if counted and self.watch is not None:
            self.watch.add(speed)
            self.live.show_verdict(self.watch.verdict())

    # --- closing -----------------------------------------------------------------------------------
    def running_jobs(self) -> list[str]:
        """What closing the window would stop, in words."""
        return [w for w in (self.server.describe_busy(), self.tuner.describe_busy(), self.llama.describe_busy()) if w]

    def closeEvent(self, event) -> None:
        jobs = self.running_jobs()
        if jobs and not self._quitting:
            what = "; ".join(jobs)
            box = QMessageBox(QMessageBox.Icon.Question, "Stop and close?",
                              f"{sentence(what)}. Closing the window stops it.", parent=self)
            stop = box.addButton("Stop and close", QMessageBox.ButtonRole.AcceptRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(stop)
            box.exec()
            if box.clickedButton() is not stop:
                event.ignore()
                return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop everything that runs (server, tune, reply, download, build), save, end the threads.
        Safe to call twice."""
        if self._quitting:
            return
        self._quitting = True
        self.tuner.cancel()
        self.chat.stop()
        self.llama.cancel()
        self.models_flow.shutdown()
        self.server.stop_now()
        s = self.settings_ctl.settings
        s.window_geometry = base64.b64encode(bytes(self.saveGeometry().data())).decode()
        s.window_state = base64.b64encode(bytes(self.saveState().data())).decode()
        self.settings_ctl.save_now()
        for c in (self.server, self.tuner, self.chat, self.llama, self.catalog, self.planner):
            c.shutdown()
        self.settings_ctl.shutdown()
