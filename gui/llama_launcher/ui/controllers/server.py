"""The llama-server the window runs: launch and stop, its states and log lines, its checks and metrics.

A launch is numbered (its run id); every state event and log batch carries that number, and
anything of an earlier run is ignored, so a late FAILED or a last batch of the previous launch can
never be shown as this one's. The runner (core/server/process.py) lives in its own threads; its
events are passed to the GUI thread by queued signals, in the order they happened. Log lines are
gathered by a LogBatcher and delivered every 100 ms through the same queue, so the lines before a
state change always arrive before it.

The port is checked in the launch job, not on the GUI thread: asking the OS who holds a taken port
walks every socket on the machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from llama_launcher.core.host.network import PortCheck, check_port
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.fallback import Fallback, fallback_for
from llama_launcher.core.plan.planner import Plan
from llama_launcher.core.server import checks as server_checks
from llama_launcher.core.server.checks import ServerChecks
from llama_launcher.core.server.log_batches import LogBatch, LogBatcher
from llama_launcher.core.server.process import RunnerEvents, ServerEvent, ServerRunner, ServerState
from llama_launcher.core.server.speed_stats import LogSpeedParser
from llama_launcher.ui.jobs import JobRunner, new_run
from llama_launcher.ui.metrics_poller import MetricsPoller

READY_TIMEOUT_S = 300.0
LOG_FLUSH_MS = 100


@dataclass(frozen=True)
class Launch:
    """What one launch runs and what it was for: the plan, the model, the build, the network it serves."""

    plan: Plan
    model: ModelInfo
    build: int | None
    port: int
    lan: bool = False
    key: str = ""  # the API key clients must send (LAN); never on the command line


class ServerController(QObject):
    state_changed = Signal(object)  # ServerEvent of the current run
    log_batch = Signal(object)  # LogBatch of the current run
    port_taken = Signal(object)  # PortCheck: the launch did not start
    checked = Signal(object)  # ServerChecks of the ready server
    ended = Signal(object, str)  # the Launch that ended, its log file ('' when it never had one)
    log_speed = Signal(object)  # Speed of a request, read from the server's log (a server without /metrics)
    _event = Signal(object)  # from the runner's threads
    _batch = Signal(object)  # from the batcher (timer or runner thread), always queued: one order

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = ServerState.IDLE
        self.run = 0
        self.launch_info: Launch | None = None  # what runs now (the selection may change meanwhile)
        self.last_launch: Launch | None = None  # what was launched last, kept once it has ended (Live's replies are its)
        self.base_url = ""
        self.log_path = ""
        self.checks: ServerChecks | None = None
        self.runner: ServerRunner | None = None
        self.ready_seen = False  # this run answered /health (a failure after it is not a failed start)
        self._jobs = JobRunner("server-worker", "starting llama-server", self)
        self._lines = LogBatcher(self._batch.emit)
        self._event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        self._batch.connect(self._on_batch, Qt.ConnectionType.QueuedConnection)
        self._timer = QTimer(self)
        self._timer.setInterval(LOG_FLUSH_MS)
        self._timer.timeout.connect(self._lines.flush)
        self._timer.start()
        self.metrics = MetricsPoller(self)
        self._log_speeds: LogSpeedParser | None = None  # reads speeds from the log once /metrics is unavailable
        self.metrics.unavailable.connect(lambda _why: setattr(self, "_log_speeds", LogSpeedParser()))

    @property
    def running(self) -> bool:
        return self.state.running or self.state is ServerState.STOPPING

    def launch(self, launch: Launch) -> int:
        """Start ``launch`` (after the previous server, if any, is gone); returns its run id."""
        self.run = new_run()
        run = self.run
        self.launch_info, self.log_path, self.checks, self._log_speeds = launch, "", None, None
        self.last_launch = launch
        self.ready_seen = False
        self.base_url = f"http://127.0.0.1:{launch.port}"  # the server binds all addresses or loopback: both answer here
        self._set(ServerEvent(run, ServerState.STARTING))
        self._lines.start_run(run)
        self._jobs.submit(lambda ctx: self._start(run, launch), lambda r: self._started(run, r))
        return run

    def _start(self, run: int, launch: Launch) -> object:
        """In the server thread: the old process gone, the port checked, the new one started."""
        old = self.runner
        if old is not None and old.alive:
            old.stop()
        check = check_port(launch.port)
        if not check.free:
            return check
        events = RunnerEvents(on_state=self._runner_event, on_line=self._lines.add)
        runner = ServerRunner(list(launch.plan.argv), events, ready_timeout=READY_TIMEOUT_S,
                              env=dict(launch.plan.env), run=run)
        self.runner = runner
        runner.start()
        return runner

    def _started(self, run: int, result: object) -> None:
        if isinstance(result, PortCheck):
            if run == self.run:
                self.launch_info = None
                self._set(ServerEvent(run, ServerState.IDLE))
                self.port_taken.emit(result)
            return
        if isinstance(result, ServerRunner) and run == self.run:
            self.log_path = str(result.log_path or "")

    def stop(self) -> None:
        if not self.state.running:
            return
        self._set(ServerEvent(self.run, ServerState.STOPPING))
        runner = self.runner
        if runner is not None:
            self._jobs.submit(lambda ctx: runner.stop())

    def stop_now(self) -> None:
        """At quit, from the GUI thread: stopping must not wait behind the server thread's queue."""
        if self.runner is not None:
            self.runner.stop()

    def _set(self, event: ServerEvent) -> None:
        self.state = event.state
        self.state_changed.emit(event)

    def _runner_event(self, event: ServerEvent) -> None:
        """In the runner's thread: the lines printed before this state change are queued before it."""
        self._lines.flush()
        self._event.emit(event)

    def _on_event(self, event: ServerEvent) -> None:
        if event.run != self.run:
            return  # a late event of an earlier launch
        self._set(event)
        if event.state is ServerState.READY:
            self.ready_seen = True
            launch = self.launch_info
            self.metrics.start(self.base_url, launch.key if launch else "")
            base, key, run = self.base_url, launch.key if launch else "", event.run
            self._jobs.submit(lambda ctx: server_checks.run_checks(base, key or None),
                              lambda checks: self._checked(run, checks))
        elif event.state.ended:
            self.metrics.stop()
            launched, self.launch_info = self.launch_info, None
            if event.reason is not None and event.reason.code == "port_in_use" and launched is not None:
                port = launched.port  # taken between the check and the bind: who holds it, asked off this thread
                self._jobs.submit(lambda ctx: check_port(port), self.port_taken.emit)
            runner = self.runner
            if runner is not None and runner.run == event.run:
                self.log_path = str(runner.log_path or "")
            if launched is not None:
                self.ended.emit(launched, self.log_path)  # this run's log only: learning reads nothing older

    def _checked(self, run: int, checks: object) -> None:
        if run == self.run and self.state is ServerState.READY and isinstance(checks, ServerChecks):
            self.checks = checks
            self.checked.emit(checks)

    def _on_batch(self, batch: LogBatch) -> None:
        if batch.run != self.run:
            return
        self.log_batch.emit(batch)
        if self._log_speeds is not None:
            for line in batch.lines:
                speed = self._log_speeds.feed(line)
                if speed is not None:
                    self.log_speed.emit(speed)

    def fallback(self, launch: Launch, event: ServerEvent) -> Fallback | None:
        """Whether this failed start is one that speculation crashed (core/plan/fallback.py's rule)."""
        runner = self.runner
        if runner is None or runner.run != event.run:
            return None
        code = runner.proc.returncode if runner.proc is not None else None
        return fallback_for(launch.plan, self.ready_seen, event.reason, list(runner.history), code, runner.log_path)

    def describe_busy(self) -> str:
        return "llama-server is still running" if self.running else ""  # a name: its case is kept (words.sentence)

    def shutdown(self) -> None:
        self.metrics.stop()
        self._timer.stop()
        self.stop_now()
        self._jobs.shutdown()
