"""Tune: measure the speculative settings on this machine in servers of its own, then use the fastest.

A tune and the window's own server never run at once (they would measure each other): when a server
runs, Tune stops it first (the window asks before). Cancel sets the job's token from the GUI thread,
which also stops the server Tune is measuring with, at once. Tune's log and its servers' lines reach
the window like a launch's (LogBatch, with Tune's run id); the result is stored for this model,
build and machine, and Auto uses it from then on.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, Signal

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.server.log_batches import LogBatch, LogBatcher
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.pairing import DraftOption
from llama_launcher.core.tuning import store as tuning_store
from llama_launcher.core.tuning.tune import TuneOutcome, TuneProgress, tune
from llama_launcher.ui.jobs import JobContext, JobRunner, new_run

TUNE_LOG_PREFIX = "[tune] "
LOG_FLUSH_S = 0.1


@dataclasses.dataclass(frozen=True)
class TuneRequest:
    binary: str
    model: ModelInfo
    hw: Hardware
    caps: Capabilities
    settings: PlanSettings
    drafts: list[DraftOption]


class TuneController(QObject):
    started = Signal(int)  # run id (the log view shows this run's lines)
    progress = Signal(object)  # TuneProgress
    log_batch = Signal(object)  # LogBatch: Tune's own lines and its servers', marked as Tune's
    finished = Signal(object)  # TuneOutcome (stored already)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run = 0
        self.running = False
        self._jobs = JobRunner("tune-worker", "tuning", self)
        self._jobs.progress.connect(self._progress)
        self._jobs.cancelled.connect(self._cancelled)

    def start(self, req: TuneRequest) -> None:
        if self.running:
            return
        self.running = True
        self.run = run = new_run()
        lines = LogBatcher(lambda b: self._jobs.progress.emit(run, b), run=run)  # ordered with the progress

        def measure(ctx: JobContext) -> TuneOutcome:
            def log(text: str) -> None:
                lines.add(TUNE_LOG_PREFIX + text)
                lines.flush()

            def on_line(text: str) -> None:  # this thread is busy in tune(): hand lines over as time passes
                lines.add(TUNE_LOG_PREFIX + text)
                lines.flush_if_due(LOG_FLUSH_S)

            base = dataclasses.replace(req.settings, modes={})  # Auto everywhere: tune decides
            try:
                outcome = tune(req.binary, req.model, req.hw, req.caps, base, list(req.drafts), log=log,
                               progress=ctx.report, on_line=on_line, token=ctx.cancel)
            finally:
                lines.flush()
            if not ctx.cancel.cancelled:
                tuning_store.save(req.model.path, req.caps.build_number, outcome.choice)
            return outcome

        self.started.emit(run)
        self._jobs.submit(measure, self._finished, self._failed, run=run)

    def cancel(self) -> None:
        """Direct, from the GUI thread: stops the server Tune is measuring with at once."""
        self._jobs.cancel()

    def _progress(self, run: int, event: object) -> None:
        if run != self.run:
            return
        if isinstance(event, LogBatch):
            self.log_batch.emit(event)
        elif isinstance(event, TuneProgress):
            self.progress.emit(event)

    def _finished(self, outcome: object) -> None:
        self.running = False
        self.finished.emit(outcome)

    def _failed(self, why: str) -> None:
        self.running = False
        self.failed.emit(why)

    def _cancelled(self, run: int) -> None:
        if run == self.run:
            self.running = False
            self.cancelled.emit()

    def describe_busy(self) -> str:
        return "Tune is still measuring" if self.running else ""

    def shutdown(self) -> None:
        self._jobs.shutdown()
