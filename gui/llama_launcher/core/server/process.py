"""Run one llama-server: start, watch it load, deliver its log, stop it, and say why it failed.

Qt-free so that ``llama-launcher serve`` and the window's worker drive the very same code. Events
are plain callbacks called from the runner's threads; the window's worker turns them into signals.
States (:class:`ServerState`): idle -> starting -> loading -> ready -> stopping -> stopped, or failed
(with a reason). A state change and its callback happen under one lock, so listeners see the
changes in the order they happened, from whichever of the runner's threads they came.
"""

from __future__ import annotations

import collections
import enum
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from llama_launcher.core.host import child_process
from llama_launcher.core.host.process_env import child_env
from llama_launcher.core.server import oom_evidence, orphan_guard
from llama_launcher.core.server.failure_reasons import FailureReason, classify_exit, killing_signal
from llama_launcher.core.server.log_file import MAX_LINE_BYTES, ServerLogFile, line_cut_note, prune_logs
from llama_launcher.core.state import paths


class ServerState(str, enum.Enum):
    """The lifecycle of one llama-server process (a ``str`` so that it prints and compares as its name)."""

    IDLE = "idle"
    STARTING = "starting"
    LOADING = "loading"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def running(self) -> bool:
        """A process exists or is about to (what Stop acts on and Launch/Tune wait for)."""
        return self in (ServerState.STARTING, ServerState.LOADING, ServerState.READY)

    @property
    def ended(self) -> bool:
        return self in (ServerState.STOPPED, ServerState.FAILED)

    def __str__(self) -> str:
        return self.value


# Forward order of a healthy start; a state never goes back down this ladder (a late "loading"
# from the health thread after "ready" is dropped), and after an end only a new start moves on.
_LADDER = {ServerState.IDLE: 0, ServerState.STARTING: 1, ServerState.LOADING: 2, ServerState.READY: 3,
           ServerState.STOPPING: 4, ServerState.STOPPED: 5, ServerState.FAILED: 5}
HISTORY_LINES = 5000
MEMORY_SAMPLE_S = 1.0  # how often the server's memory is looked at (evidence for a later SIGKILL)
HEALTH_POLL_S = 0.05  # loopback requests are cheap; a coarse poll would delay 'ready'


def _model_bytes(argv: list[str]) -> int | None:
    for i, a in enumerate(argv[:-1]):
        if a in ("-m", "--model"):
            try:
                return os.path.getsize(argv[i + 1])
            except OSError:
                return None
    return None


def _new_log_path(folder: Path, stem: str) -> Path:
    """A log file name no earlier run used: a retry in the same second on the same port (the fallback)
    must not write over the log its message points at."""
    path = folder / f"{stem}.log"
    n = 2
    while path.exists() and n < 1000:
        path = folder / f"{stem}-{n}.log"
        n += 1
    return path


def port_from_argv(argv: list[str]) -> int | None:
    for i, a in enumerate(argv):
        if a == "--port" and i + 1 < len(argv):
            try:
                return int(argv[i + 1])
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class ServerEvent:
    """One state change of one run: what listeners (the window, ``serve``, tune) are told."""

    run: int
    state: ServerState
    reason: FailureReason | None = None


@dataclass
class RunnerEvents:
    on_state: Callable[[ServerEvent], None] = lambda event: None
    on_line: Callable[[str], None] = lambda line: None


@dataclass
class HealthStatus:
    code: int | None
    body: str = ""


def get_health(base_url: str, timeout: float = 2.0) -> HealthStatus:
    try:
        with urllib.request.urlopen(base_url + "/health", timeout=timeout) as resp:
            return HealthStatus(resp.status, resp.read(2000).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return HealthStatus(exc.code, exc.read(2000).decode("utf-8", "replace") if exc.fp else "")
    except (urllib.error.URLError, OSError, TimeoutError):
        return HealthStatus(None)


@dataclass
class ServerRunner:
    """Owns one llama-server process. ``start`` returns at once; events report progress."""

    argv: list[str]
    events: RunnerEvents = field(default_factory=RunnerEvents)
    ready_timeout: float = 180.0
    log_folder: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to the clean child environment (e.g. the API key)
    run: int = 0  # which launch this is, carried by every event (a late event of an old run is recognised)
    stop_grace: float = 10.0  # seconds between the polite stop and the kill

    def __post_init__(self) -> None:
        if not (isinstance(self.ready_timeout, (int, float)) and math.isfinite(self.ready_timeout)
                and self.ready_timeout > 0):
            raise ValueError(f"ready_timeout must be a positive number of seconds, not {self.ready_timeout!r}")
        self.state = ServerState.IDLE
        self.reason: FailureReason | None = None
        self.history: collections.deque[str] = collections.deque(maxlen=HISTORY_LINES)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = port_from_argv(self.argv) or 8080
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path: Path | None = None
        self._lock = threading.RLock()
        self._stop_requested = threading.Event()
        self._exited = threading.Event()
        self._spawned = threading.Event()
        self._log: ServerLogFile | None = None
        self._threads: list[threading.Thread] = []
        self._listening_line = f":{self.port}"  # llama-server logs "listening on http://HOST:PORT" once bound
        self._said_listening = False
        self._listen_confirmed = False
        self._memory: oom_evidence.MemorySample | None = None
        self._available_at_start: int | None = None
        self.oom_evidence: oom_evidence.Gather = oom_evidence.gather  # a stand-in in tests
        self._sampled_at = 0.0
        self._started_at: float | None = None
        self._group: int | None = None  # the child's process group (POSIX): a wrapper's real server is in it
        self._failure: FailureReason | None = None  # said once the process is gone (a start that timed out)

    # --- state ----------------------------------------------------------------------------
    def _set_state(self, state: ServerState, reason: FailureReason | None = None) -> bool:
        """Move to ``state`` and tell the listener, atomically; False when the move is not allowed."""
        with self._lock:
            current = self.state
            if current.ended and state is not ServerState.STARTING:
                return False
            if state is not ServerState.STARTING and _LADDER[state] < _LADDER[current]:
                return False
            if state is current:
                return False
            self.state = state
            if reason is not None:
                self.reason = reason
            # under the lock: a READY from the health thread cannot overtake a FAILED from the owner thread
            self.events.on_state(ServerEvent(self.run, state, reason))
            return True

    def _emit_line(self, line: str) -> None:
        self.history.append(line)
        if not self._said_listening and "listening on" in line and line.rstrip("/").endswith(self._listening_line):
            self._said_listening = True
        if self._log is not None:
            self._log.write(line)
        self.events.on_line(line)

    # --- start ------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self.state.running or self.state is ServerState.STOPPING:
                raise RuntimeError(f"server is {self.state}")
            self.state, self.reason = ServerState.IDLE, None
        self._stop_requested.clear()
        self._exited.clear()
        self._spawned.clear()
        self._failure = None
        self._group = None
        self._set_state(ServerState.STARTING)
        binary = Path(self.argv[0])
        if not binary.exists():
            self._set_state(ServerState.FAILED, FailureReason("binary_missing", f"llama-server not found at {binary}"))
            return
        if binary.is_dir() or (sys.platform != "win32" and not os.access(binary, os.X_OK)):
            self._set_state(ServerState.FAILED, FailureReason("binary_not_executable", f"{binary} is not an executable file"))
            return
        folder = self.log_folder or paths.log_dir()
        self._log = ServerLogFile.open(_new_log_path(folder, f"server-{time.strftime('%Y%m%d-%H%M%S')}-"
                                                             f"{os.getpid()}-{self.port}"))
        self.log_path = self._log.path if self._log is not None else None
        if self._log is not None:
            prune_logs(folder, keep_paths=self._log.paths())
        self._said_listening = False
        self._listen_confirmed = False
        self._memory = None
        self._sampled_at = 0.0
        self._started_at = time.time()
        owner = threading.Thread(target=self._own, name=f"llama-server-{self.port}", daemon=True)
        self._threads = [owner]
        owner.start()
        self._spawned.wait(30)

    def _own(self) -> None:
        """Spawn, then live exactly as long as the process (PR_SET_PDEATHSIG is tied to this thread)."""
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv list, never a shell
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env={**child_env(), **self.env}, **child_process.popen_kwargs())
        except OSError as exc:
            code = "binary_not_executable" if isinstance(exc, PermissionError) else "spawn_failed"
            self._spawned.set()
            self._set_state(ServerState.FAILED, FailureReason(code, f"cannot start {self.argv[0]}: {exc.strerror or exc}"))
            return
        self.proc = proc
        try:
            first = oom_evidence.sample(proc.pid)
            self._available_at_start = first.available if first is not None else None
            child_process.after_spawn(proc.pid)
            self._group = child_process.group_of(proc.pid)
            orphan_guard.record(proc.pid, self.argv[0], self.port, self._group)  # a read-only home: a notice
            if self._stop_requested.is_set():  # Stop arrived while the process was being spawned
                self._terminate(self.stop_grace)
        finally:
            self._spawned.set()  # start() never waits 30 s for a spawn that happened
        reader = threading.Thread(target=self._read_output, name="llama-server-output", daemon=True)
        health = threading.Thread(target=self._watch_health, name="llama-server-health", daemon=True)
        self._threads += [reader, health]
        reader.start()
        health.start()
        proc.wait()
        left = child_process.leftovers(proc.pid, self._group)
        if left:  # a wrapper script exited and left its server running: it must not outlive this run
            child_process.end_tree(proc.pid, self._group, grace=10.0)
        reader.join(5)
        self._exited.set()
        orphan_guard.forget(proc.pid)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._stop_requested.is_set():
            self._set_state(ServerState.STOPPED)
        else:  # said only now, with the process gone: Launch must not come back while it holds the port
            self._set_state(ServerState.FAILED, self._failure or classify_exit(proc.returncode, list(self.history),
                                                                               self._oom_evidence(proc)))

    def _oom_evidence(self, proc: subprocess.Popen[bytes]) -> list[str]:
        """Only after a SIGKILL: what shows it was for memory (the kernel log, memory samples, model size)."""
        if killing_signal(proc.returncode) != int(getattr(signal, "SIGKILL", 9)):
            return []
        try:
            return list(self.oom_evidence(proc.pid, self._started_at, self._memory, _model_bytes(self.argv),
                                          self._available_at_start))
        except Exception:  # noqa: BLE001 - evidence is a bonus; the SIGKILL is still reported
            return []

    def _read_output(self) -> None:
        """Deliver lines, each at most MAX_LINE_BYTES: a server that never writes a newline must
        not take the launcher's memory with it (the rest of a long line is counted, not kept)."""
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout
        cut: int | None = None  # bytes of the current line dropped so far; None: not cutting
        while True:
            raw = stdout.readline(MAX_LINE_BYTES)
            if not raw:
                break
            complete = raw.endswith(b"\n")
            if cut is not None:
                cut += len(raw) - complete
                if complete:
                    self._emit_line(line_cut_note(cut))
                    cut = None
                continue
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if complete or len(raw) < MAX_LINE_BYTES:  # a short piece without a newline: the output ended
                self._emit_line(text)
            else:
                self._emit_line(text + " …")
                cut = 0
        if cut:
            self._emit_line(line_cut_note(cut))

    def _ours_listening(self) -> bool:
        """Whether *our* child is alive and is the process listening on the port.

        Another program already on the port answers /health too (200 in 16 of 20 tries before
        our server's bind error); only the child's own listening socket, or its own "listening
        on" line where the OS will not show its sockets, makes an answer ours.
        """
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return False
        if self._listen_confirmed:  # a socket the child bound stays its own while it lives
            return True
        denied = False
        for p in child_process.tree(proc.pid, self._group):  # a wrapper script's server is a grandchild
            try:
                conns = p.net_connections(kind="inet")
            except psutil.AccessDenied:
                denied = True
                continue
            except psutil.Error:
                continue
            if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.port for c in conns):
                self._listen_confirmed = True
                return True
        return denied and self._said_listening

    def _watch_health(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        loading_seen = False
        while not self._exited.is_set() and not self._stop_requested.is_set():
            status = get_health(self.base_url, timeout=2.0)
            if status.code in (200, 503) and not self._ours_listening():
                status = HealthStatus(None)  # someone else's server on our port: not an answer from ours
            if status.code == 200:
                self._set_state(ServerState.READY)
                self._watch_memory()
                return
            if status.code == 503 and not loading_seen:
                loading_seen = True
                self._set_state(ServerState.LOADING)
            if time.monotonic() > deadline:
                # stopped first, failed once it is gone (the owner thread says it): a new Launch must
                # not start while this one still holds the port and the memory
                self._failure = FailureReason("timeout", f"llama-server did not become ready within "
                                              f"{self.ready_timeout:.0f} s", list(self.history)[-3:])
                self._set_state(ServerState.STOPPING)
                self._terminate(self.stop_grace)
                return
            if self.proc is not None and time.monotonic() - self._sampled_at > MEMORY_SAMPLE_S:
                self._memory = oom_evidence.sample(self.proc.pid) or self._memory  # loading can be what runs out
                self._sampled_at = time.monotonic()
            self._exited.wait(HEALTH_POLL_S)

    def _watch_memory(self) -> None:
        """While the server runs, keep its latest memory sample (evidence should it be SIGKILLed)."""
        proc = self.proc
        while proc is not None and not self._exited.is_set():
            self._memory = oom_evidence.sample(proc.pid) or self._memory
            self._exited.wait(MEMORY_SAMPLE_S)

    # --- stop -----------------------------------------------------------------------------
    def _terminate(self, grace: float = 10.0) -> None:
        """End the child's whole tree: terminate (TerminateProcess on Windows, where llama-server has no
        console for Ctrl+Break), wait up to ``grace``, then kill."""
        proc = self.proc
        if proc is None or (proc.poll() is not None and not child_process.leftovers(proc.pid, self._group)):
            return
        child_process.end_tree(proc.pid, self._group, grace)

    def stop(self, grace: float | None = None) -> None:
        """Stop the server and what it started (terminate, wait, kill); returns once it is gone.
        Harmless when it is already stopped or dead."""
        grace = self.stop_grace if grace is None else grace
        with self._lock:
            if self.state in (ServerState.IDLE, ServerState.STOPPED) or (self.state is ServerState.FAILED
                                                                          and not self.alive):
                return
            self._stop_requested.set()
        if self.state is not ServerState.FAILED:
            self._set_state(ServerState.STOPPING)
        self._terminate(grace)
        self._exited.wait(grace + 15)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(5)

    def wait_until(self, states: tuple[ServerState, ...], timeout: float) -> ServerState:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state in states:
                return self.state
            time.sleep(0.05)
        return self.state

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        """The process (or what it started) still runs: a new launch must wait for it to end."""
        proc = self.proc
        return proc is not None and (proc.poll() is None or bool(child_process.leftovers(proc.pid, self._group)))
