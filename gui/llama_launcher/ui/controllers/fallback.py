"""Fallback once, in the window: a start that speculation crashed is launched once more without it.

The rule and the message are core's (core/plan/fallback.py); this keeps the window's part of it: one
retry per launch the user asked for, Auto's memory for this model and binary (the controls then say
why MTP is off), the banner's line, and the note that heads the retry's log.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.planner import Plan
from llama_launcher.core.server.process import ServerEvent
from llama_launcher.core.speculative import fallback_store
from llama_launcher.ui.controllers.notices import NoticeCenter
from llama_launcher.ui.controllers.plan import PlanController
from llama_launcher.ui.controllers.server import ServerController


class FallbackFlow(QObject):
    def __init__(self, server: ServerController, planner: PlanController, notices: NoticeCenter,
                 relaunch: Callable[[Plan, ModelInfo], None], say: Callable[[str], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server, self._planner, self._notices = server, planner, notices
        self._relaunch, self._say = relaunch, say
        self.used = False  # the launch the user asked for was already retried once
        self._log: list[str] = []

    def new_launch(self) -> None:
        self.used = False

    def failed(self, event: ServerEvent) -> bool:
        """The start failed: retry it without speculation when the rule allows (True: it is being retried)."""
        launch = self._server.launch_info
        fb = self._server.fallback(launch, event) if launch is not None and not self.used else None
        retry = self._planner.retry_plan(launch.model, fb) if fb is not None and launch is not None else None
        if fb is None or launch is None or retry is None:
            return False
        self.used = True
        fallback_store.remember(launch.model.path, launch.plan.argv[0], list(fb.blamed), fb.reason, fb.evidence)
        self._notices.show("server", fb.message())
        self._say(fb.message())
        self._log = [f"[launcher] {fb.message()}", *(f"[launcher]   | {e}" for e in fb.evidence)]
        self._planner.reload_tuned()  # Auto leaves it off from now on, and the controls say why
        # after this state change has been handled everywhere (the server controller is still in it)
        QTimer.singleShot(0, self, lambda: self._relaunch(retry, launch.model))
        return True

    def take_log_lines(self) -> list[str]:
        """The note for the top of the next run's log (a new run starts a new view)."""
        lines, self._log = self._log, []
        return lines
