"""Tune from the window: ask first (what it measures, about how long), stop a running server, tune, show.

The estimate and the adoption rule are core's (core/tuning/estimate.py, core/plan/adopt.py); the
controller runs the measurement (ui/controllers/tune.py). This keeps the window's part: the question,
the wait for a running server to stop, the Tune box's state, and "Use this".
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox, QWidget

from llama_launcher.core.plan.adopt import adopt_tuned
from llama_launcher.core.plan.gating import Situation, tune_gate
from llama_launcher.core.server.process import ServerEvent
from llama_launcher.core.state.words import sentence
from llama_launcher.core.tuning.estimate import estimate_tune, known_decode_speed
from llama_launcher.ui.controllers.llama_server import LlamaServerController
from llama_launcher.ui.controllers.notices import NoticeCenter
from llama_launcher.ui.controllers.plan import PlanController
from llama_launcher.ui.controllers.server import ServerController
from llama_launcher.ui.controllers.tune import TuneController, TuneRequest
from llama_launcher.ui.launch.panel import LaunchPanel
from llama_launcher.ui.live_panel import LivePanel
from llama_launcher.ui.log_view import LogView


class TuneHost(Protocol):
    """What Tune needs of the window that composes it (the window is the one implementation)."""
    planner: PlanController
    llama: LlamaServerController
    server: ServerController
    tuner: TuneController
    notices: NoticeCenter
    launch_panel: LaunchPanel
    live: LivePanel
    logs: LogView

    def situation(self) -> Situation: ...
    def say(self, text: str) -> None: ...
    def stop_server(self) -> None: ...
    def update_gates(self) -> None: ...
    def applies_next_launch(self, what: str) -> None: ...
    def show_setup(self) -> None: ...


class TuneFlow(QObject):
    def __init__(self, window: TuneHost, parent: QWidget) -> None:
        super().__init__(parent)
        self._w = window
        self._parent = parent  # the question's dialog sits over it
        self.after_stop = False  # Tune was asked while a server ran: it starts once that server has ended
        w, box = window, window.launch_panel.tune
        box.requested.connect(self.ask)
        w.live.tune_requested.connect(self.ask)
        box.cancel.connect(w.tuner.cancel)  # direct: stops the server Tune measures with at once
        box.use_this.connect(self.use_tuned)
        w.tuner.started.connect(w.logs.begin_run)
        w.tuner.log_batch.connect(w.logs.append_batch)
        w.tuner.progress.connect(box.show_progress)
        w.tuner.finished.connect(self._tuned)
        w.tuner.cancelled.connect(self._cancelled)
        w.tuner.failed.connect(self._failed)
        w.server.state_changed.connect(self._server_state)

    def ask(self) -> None:
        """Tune clicked (Launch setup or Live): confirm, stop a running server, then measure."""
        w = self._w
        if not tune_gate(w.situation()).ok or not self._confirm():
            return
        if w.server.running:
            self.after_stop = True  # once the server has stopped (_server_state)
            w.stop_server()
            return
        self._start()

    def _server_state(self, event: ServerEvent) -> None:
        if event.state.ended and self.after_stop:
            self.after_stop = False
            self._start()

    def _known_speed(self) -> tuple[float, str] | None:
        """This model's decode speed where one was measured: an earlier tune, or the replies Live shows of its
        last launch — running or stopped since (Live keeps them until another model or launch; core decides)."""
        p = self._w.planner
        launch = self._w.server.last_launch  # the running one, or the one that ran last
        same = launch is not None and p.model is not None and launch.model.path == p.model.path
        replies = [tps for _source, tps in self._w.live.activity.bars()] if same else []
        return known_decode_speed(p.tuned.off_tps if p.tuned is not None else None, replies)

    def _confirm(self) -> bool:
        """Tune takes minutes and stops a running server: say what it measures and about how long, then ask."""
        w = self._w
        p, llama = w.planner, w.llama
        if p.model is None or llama.caps is None or llama.hw is None:
            return False
        known = self._known_speed()
        estimate = estimate_tune(p.model, llama.caps, p.plan_settings(), list(p.drafts), llama.hw,
                                 decode_tps=known[0] if known else None, speed_from=known[1] if known else "")
        text = estimate.words()
        if w.server.running:
            text += "\n\nThe running llama-server is stopped first (Tune's measurements must not share the machine)."
        box = QMessageBox(QMessageBox.Icon.Question, "Tune this model?", text, parent=self._parent)
        go = box.addButton("Stop and tune" if w.server.running else "Start tuning", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(go)
        box.exec()
        return box.clickedButton() is go

    def _start(self) -> None:
        w = self._w
        p, llama = w.planner, w.llama
        if p.plan is None or p.model is None or llama.binary is None or llama.caps is None or llama.hw is None:
            return
        w.tuner.start(TuneRequest(llama.binary.path, p.model, llama.hw, llama.caps, p.plan_settings(),
                                  list(p.drafts)))
        w.say("tuning: measuring the speculative settings on this machine… (Cancel is in Launch setup)")
        w.launch_panel.tune.set_running(True)
        w.show_setup()
        w.update_gates()

    def _done(self) -> None:
        self._w.launch_panel.tune.set_running(False)
        self._w.planner.reload_tuned()
        self._w.update_gates()

    def _tuned(self, outcome) -> None:
        self._done()
        self._w.say(f"Tune finished. {sentence(outcome.choice.describe())}")

    def _cancelled(self) -> None:
        self._done()
        self._w.say("tuning cancelled: nothing was stored")
        self._w.launch_panel.tune.show_tuned(self._w.planner.tuned, "tuning cancelled")

    def _failed(self, error: str) -> None:
        self._done()
        self._w.notices.show("tune", f"tuning stopped: {error}", error=True)

    def use_tuned(self) -> None:
        """Tune's "Use this": the model's settings change so that Auto uses the measurement; "In effect" follows."""
        w = self._w
        p = w.planner
        if p.tuned is None or p.model is None:
            return
        adoption = adopt_tuned(p.model_settings, p.tuned)
        w.launch_panel.load(adoption.settings)
        p.set_model_settings(adoption.settings)
        w.say(f"Auto now uses the measured setting: {p.tuned.label()}")
        w.applies_next_launch("the measured setting")
