"""Issue 12, items 15-17: bounded server output, 'ready' only for our own server, SIGKILL told honestly.

The flooding servers are fakes (no real llama-server writes /dev/urandom on demand); the port
test runs the real llama-server against a real HTTP server that already holds the port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.host.network import free_port
from llama_launcher.core.llama_server.probe import probe
from llama_launcher.core.models.model_info import read_model_info
from llama_launcher.core.plan.planner import plan_launch
from llama_launcher.core.server import log_file as server_log
from llama_launcher.core.server import oom_evidence
from llama_launcher.core.server.failure_reasons import OOM_KILL_TEXT
from llama_launcher.core.server.log_batches import MAX_PENDING_CHARS, LogBatch, LogBatcher
from llama_launcher.core.server.log_file import (
    HEAD_BYTES,
    MAX_LINE_BYTES,
    TAIL_BYTES,
    line_cut_note,
    prune_logs,
)
from llama_launcher.core.server.process import RunnerEvents, ServerRunner, ServerState
from llama_launcher.core.settings.launch import PlanSettings

from conftest import wait_for
from fake_server import make_fake_server

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="the fake servers use POSIX signals and /dev/urandom")
CPU = Hardware("test CPU", 16384, 12000, False, [])


def fake_runner(tmp_path: Path, behaviour: str, runners: list, lines: list[str] | None = None,
                states: list | None = None) -> ServerRunner:
    exe = make_fake_server(tmp_path / "fake", "b11434-current", behaviour=behaviour)
    events = RunnerEvents(on_state=lambda e: states.append(e.state) if states is not None else None,
                          on_line=lines.append if lines is not None else (lambda line: None))
    r = ServerRunner([str(exe), "--port", str(free_port())], events, ready_timeout=120, log_folder=tmp_path / "logs")
    runners.append(r)
    return r


# --- item 15: lines, log files and the log folder are bounded ---------------------------------

@POSIX
def test_a_line_that_never_ends_costs_bounded_memory(tmp_path: Path, runners: list,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    total = 256 << 20
    monkeypatch.setenv("FAKE_BYTES", str(total))
    lines: list[str] = []
    r = fake_runner(tmp_path, "nonewline", runners, lines)
    tracemalloc.start()
    try:
        r.start()
        assert wait_for(lambda: "after the long line" in lines or r.state.ended, 180) and not r.state.ended, lines[-3:]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024, f"{peak / 2**20:.0f} MiB for a {total >> 20} MiB line"
    assert lines[0] == "x" * MAX_LINE_BYTES + " …"
    assert lines[1] == line_cut_note(total - MAX_LINE_BYTES)
    assert lines[2] == "after the long line"
    assert r.log_path is not None and r.log_path.stat().st_size < 2 * MAX_LINE_BYTES


@POSIX
def test_binary_junk_rotates_the_log_and_keeps_it_bounded(tmp_path: Path, runners: list,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_BYTES", str(40 << 20))
    lines: list[str] = []
    r = fake_runner(tmp_path, "urandom", runners, lines)
    r.start()
    assert wait_for(lambda: "end of junk" in lines or r.state.ended, 240) and not r.state.ended, lines[-3:]
    assert r.log_path is not None
    head, tail, old_tail = r.log_path, r.log_path.with_name(r.log_path.stem + ".tail.log"), \
        r.log_path.with_name(r.log_path.stem + ".tail.1.log")
    sizes = {p.name: p.stat().st_size for p in (head, tail, old_tail)}
    slack = MAX_LINE_BYTES * 4 + 4096  # a last line and the notes that join the files
    assert HEAD_BYTES <= sizes[head.name] <= HEAD_BYTES + slack
    assert sizes[old_tail.name] <= TAIL_BYTES + slack and sizes[tail.name] <= TAIL_BYTES + slack
    assert sum(sizes.values()) <= HEAD_BYTES + 2 * TAIL_BYTES + 3 * slack  # 40 MiB went through
    assert head.read_text(encoding="utf-8").splitlines()[-1] == \
        f"[log continues in {tail.name}; only the latest lines are kept there]"
    assert tail.read_text(encoding="utf-8").splitlines()[-1] == "end of junk"
    assert len(r.history) <= 5000


def test_the_log_folder_is_pruned_by_size_and_count(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    now = time.time()
    names = [f"server-20250101-0000{i:02d}-1-{8000 + i}.log" for i in range(40)]
    for i, name in enumerate(names):  # 40 old runs of 10 MB each (sparse: apparent size is what counts)
        p = folder / name
        with open(p, "wb") as fh:
            fh.truncate(10_000_000)
        os.utime(p, (now - 1000 + i, now - 1000 + i))
    current = folder / "server-20990101-000000-2-9999.log"
    current.write_text("starting\n")
    deleted = prune_logs(folder, keep_paths=[current])
    left = sorted(p.name for p in folder.glob("server-*.log"))
    assert current.name in left
    total = sum(p.stat().st_size for p in folder.glob("server-*.log"))
    assert total <= server_log.MAX_LOG_FOLDER_BYTES and len(left) <= server_log.KEEP_LOG_RUNS
    fit = (server_log.MAX_LOG_FOLDER_BYTES - current.stat().st_size) // 10_000_000
    assert left == sorted([current.name, *names[40 - fit:]])  # the newest that fit, beside the current run
    assert sorted(p.name for p in deleted) == sorted(names[:40 - fit])


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full (a device where every write fails: ENOSPC) is Linux's")
def test_a_full_disk_stops_the_log_file_not_the_server() -> None:
    from llama_launcher.core.state.state_files import drain_notices

    drain_notices()
    log = server_log.ServerLogFile.open(Path("/dev/full"))  # opens fine; every write then fails, as on a full disk
    assert log is not None
    log.write("a line")
    log.write("another line")
    assert drain_notices() == ["the llama-server log could not be written to /dev/full (No space left on device); "
                               "its latest lines are kept in memory for this session"]


def test_the_line_queue_to_the_window_is_bounded_and_counts_what_it_drops() -> None:
    got: list[LogBatch] = []
    batcher = LogBatcher(got.append, run=3)
    line = "y" * 1000
    for _ in range(10_000):  # 10 MB between two flushes: a flood the window cannot paint
        batcher.add(line)
    batcher.flush()
    (batch,) = got
    assert sum(map(len, batch.lines)) <= MAX_PENDING_CHARS and batch.lines == (line,) * len(batch.lines)
    assert batch.skipped == 10_000 - len(batch.lines) > 0  # dropped, and counted
    assert batch.count == 10_000 and batch.run == 3
    batcher.flush()
    assert len(got) == 1  # nothing pending: no empty batch


def test_batches_taken_from_several_threads_arrive_in_order() -> None:
    got: list[LogBatch] = []
    batcher = LogBatcher(got.append)
    stop = threading.Event()

    def flusher() -> None:
        while not stop.is_set():
            batcher.flush()

    threads = [threading.Thread(target=flusher) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(20_000):
        batcher.add(str(i))
    stop.set()
    for t in threads:
        t.join()
    batcher.flush()
    delivered = [int(x) for b in got for x in b.lines]
    assert delivered == list(range(20_000))


# --- item 16: 'ready' means our own process listens on the port -------------------------------

class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def occupied_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.mark.integration
def test_someone_elses_server_on_the_port_is_never_ready(llama_server: str, mtp_models: dict, runners: list,
                                                         occupied_port: int) -> None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{occupied_port}/health", timeout=5) as resp:
        assert resp.status == 200  # the other server answers exactly what llama-server would
    settings = PlanSettings(port=occupied_port, threads=1, modes={"mtp": "off", "ngram-mod": "off"})
    plan = plan_launch(llama_server, read_model_info(mtp_models["plain"]), CPU, probe(llama_server), settings)
    for _ in range(8):  # the old check said 'ready' in 16 of 20 runs
        states: list = []
        r = ServerRunner(plan.argv, RunnerEvents(on_state=lambda e, states=states: states.append(e.state)),
                         ready_timeout=120)
        runners.append(r)
        r.start()
        assert r.wait_until((ServerState.FAILED, ServerState.STOPPED), 120) is ServerState.FAILED
        assert ServerState.READY not in states and ServerState.LOADING not in states, states
        assert r.reason is not None and r.reason.code == "port_in_use"
        assert r.reason.message == f"port {occupied_port} is already in use by another program; " \
                                   "choose another port or stop that program"


@pytest.mark.integration
def test_serve_says_the_port_is_taken_and_never_ready(llama_server: str, mtp_models: dict,
                                                      occupied_port: int) -> None:
    run = subprocess.run([sys.executable, "-m", "llama_launcher", "serve", str(mtp_models["plain"]), "--binary",
                          llama_server, "--port", str(occupied_port), "-t", "1", "--quiet"],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 1
    assert "ready:" not in run.stdout
    assert f"error: port {occupied_port} is already in use by " in run.stderr  # the holder named where the OS says
    assert "Traceback" not in run.stderr


# --- item 17: SIGKILL is the out-of-memory killer only with evidence ---------------------------

@POSIX
def test_a_sigkill_without_evidence_is_just_a_sigkill(tmp_path: Path, runners: list) -> None:
    r = fake_runner(tmp_path, "sigkill", runners)
    r.start()
    assert r.wait_until((ServerState.FAILED,), 60) is ServerState.FAILED
    assert r.reason is not None and r.reason.code == "signal"
    assert r.reason.message == "killed by SIGKILL (by another program or by the system; nothing shows it ran out of memory)"
    assert "out-of-memory" not in r.reason.message


@POSIX
def test_a_sigkill_with_evidence_names_the_out_of_memory_killer(tmp_path: Path, runners: list) -> None:
    r = fake_runner(tmp_path, "sigkill", runners)
    asked: list = []

    def stand_in(pid, started, last, model_bytes, available) -> list[str]:
        asked.append((pid, started, last, available))
        return [f"kernel log: Out of memory: Killed process {pid} (llama-server)"]

    r.oom_evidence = stand_in
    r.start()
    assert r.wait_until((ServerState.FAILED,), 60) is ServerState.FAILED
    assert r.reason is not None and r.reason.code == "out_of_memory_killed"
    pid = asked[0][0]
    assert r.reason.message == f"{OOM_KILL_TEXT} (kernel log: Out of memory: Killed process {pid} (llama-server))"
    assert asked[0][1] is not None and asked[0][1] <= time.time()  # the start time, to skip an older pid's lines


@POSIX
def test_a_plain_stop_never_asks_for_evidence(tmp_path: Path, runners: list) -> None:
    r = fake_runner(tmp_path, "help", runners)
    r.oom_evidence = lambda *a: pytest.fail("evidence was gathered for an exit that was not a SIGKILL")
    r.start()
    time.sleep(0.5)
    r.stop()
    assert r.state is ServerState.STOPPED


DMESG = """\
[  100.000000] llama-server invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0
[  100.100000] Out of memory: Killed process 4242 (llama-server) total-vm:17000000kB, anon-rss:15000000kB
[  100.200000] oom_reaper: reaped process 4242 (llama-server), now anon-rss:0kB
[   50.000000] Out of memory: Killed process 777 (chrome) total-vm:1000kB
[   20.000000] __vm_enough_memory: pid: 4242, comm: llama-server, bytes: 153600393216 not enough memory
"""


def test_kernel_log_evidence_is_for_this_pid_and_after_it_started() -> None:
    boot = 1_000_000.0
    found = oom_evidence.from_kernel_log(DMESG, 4242, started=boot + 90, boot_time=boot)
    assert found == ["kernel log: [  100.100000] Out of memory: Killed process 4242 (llama-server) total-vm:17000000kB, "
                     "anon-rss:15000000kB"]
    assert oom_evidence.from_kernel_log(DMESG, 4242, started=boot + 150, boot_time=boot) == []  # an older 4242
    assert oom_evidence.from_kernel_log(DMESG, 999, started=boot, boot_time=boot) == []


def test_memory_evidence_needs_real_pressure() -> None:
    gib = oom_evidence.GIB
    assert oom_evidence.from_memory(oom_evidence.MemorySample(14 * gib, 1 * gib, 16 * gib)) == \
        ["llama-server was using 14.0 GiB of the 15.0 GiB it could have had"]
    assert oom_evidence.from_memory(oom_evidence.MemorySample(4 * gib, 1 * gib, 16 * gib)) == []  # 80%, 6% left
    assert oom_evidence.from_memory(oom_evidence.MemorySample(gib // 4, gib // 10, 16 * gib)) == \
        ["the machine had only 0.1 GiB of 16.0 GiB memory left"]
    assert oom_evidence.from_memory(oom_evidence.MemorySample(2 * gib, 8 * gib, 16 * gib)) == []
    assert oom_evidence.from_memory(None) == []
    assert oom_evidence.from_model_size(20 * gib, 12 * gib) == \
        ["the model file (20.0 GiB) is larger than the memory that was available when it started (12.0 GiB)"]
    assert oom_evidence.from_model_size(2 * gib, 12 * gib) == []


@POSIX
def test_serve_reports_a_sigkill_plainly(tmp_path: Path) -> None:
    from gguf_factory import write_model

    exe = make_fake_server(tmp_path / "fake", "b11434-current", behaviour="sigkill")
    model = write_model(tmp_path / "m.gguf")
    run = subprocess.run([sys.executable, "-m", "llama_launcher", "serve", str(model), "--binary", str(exe),
                          "--hardware", str(_hardware_file(tmp_path)), "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "error: killed by SIGKILL (by another program or by the system; nothing shows it ran out of memory)" \
        in run.stderr
    assert "out-of-memory" not in run.stderr and "Traceback" not in run.stderr


def _hardware_file(tmp_path: Path) -> Path:
    f = tmp_path / "hw.json"
    f.write_text(CPU.to_json())
    return f
