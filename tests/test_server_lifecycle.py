"""What the runner says matches what happened: a failed start is gone before it is called failed,
and a llama-server started by a wrapper script (no ``exec``) is seen, stopped and swept like any other."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from llama_launcher.core.host.network import free_port, port_is_free
from llama_launcher.core.server import orphan_guard
from llama_launcher.core.server.process import RunnerEvents, ServerEvent, ServerRunner, ServerState

from conftest import wait_for
from fake_server import make_fake_server

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="the wrapper is a POSIX shell script")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@POSIX
def test_a_start_that_times_out_is_stopped_before_it_is_called_failed(tmp_path: Path, runners: list) -> None:
    exe = make_fake_server(tmp_path / "fake", "b11434-current", behaviour="stubborn")  # ignores SIGTERM
    seen: list[tuple[ServerState, str, bool]] = []
    runner: list[ServerRunner] = []

    def on_state(e: ServerEvent) -> None:
        pid = runner[0].pid if runner else None
        seen.append((e.state, e.reason.code if e.reason else "", pid is not None and not _gone(pid)))

    r = ServerRunner([str(exe), "--port", str(free_port())], RunnerEvents(on_state=on_state), ready_timeout=1.0,
                     stop_grace=2.0, log_folder=tmp_path / "logs", run=7)
    runner.append(r)
    runners.append(r)
    r.start()
    assert r.wait_until((ServerState.FAILED,), 60) is ServerState.FAILED
    states = [s for s, _, _ in seen]
    assert states[-2:] == [ServerState.STOPPING, ServerState.FAILED], states
    failed = seen[-1]
    assert failed[1] == "timeout"
    assert failed[2] is False, "FAILED was announced while the server still ran"
    assert not r.alive


def _wrapper(tmp_path: Path, llama_server: str) -> Path:
    """A Homebrew-style shim: the real server runs as the script's child (no exec)."""
    script = tmp_path / "shim" / "llama-server"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f'#!/bin/sh\n"{llama_server}" "$@"\necho "shim: server exited with $?"\n', encoding="utf-8")
    script.chmod(0o755)
    return script


def _real_server_in(tree_root: int, binary: str) -> psutil.Process | None:
    try:
        kids = psutil.Process(tree_root).children(recursive=True)
    except psutil.Error:
        return None
    return next((k for k in kids if k.exe() == str(Path(binary).resolve())), None)


@POSIX
@pytest.mark.integration
def test_a_wrapper_scripts_server_is_ready_and_stops_with_it(tmp_path: Path, llama_server: str, mtp_models: dict,
                                                             runners: list) -> None:
    shim = _wrapper(tmp_path, llama_server)
    port = free_port()
    r = ServerRunner([str(shim), "-m", str(mtp_models["plain"]), "--host", "127.0.0.1", "--port", str(port), "-t", "1"],
                     ready_timeout=240, log_folder=tmp_path / "logs")
    runners.append(r)
    r.start()
    assert r.wait_until((ServerState.READY, ServerState.FAILED), 240) is ServerState.READY, r.reason
    assert r.pid is not None
    real = _real_server_in(r.pid, llama_server)
    assert real is not None, "the shim's llama-server is not its child"
    r.stop()
    assert r.state is ServerState.STOPPED
    assert wait_for(lambda: _gone(real.pid), 10)
    assert wait_for(lambda: port_is_free(port), 10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal that ends the shim is Linux's")
@pytest.mark.integration
def test_a_killed_launchers_wrapped_server_is_ended_by_the_next_start(tmp_path: Path, llama_server: str,
                                                                     mtp_models: dict, processes: list) -> None:
    shim = _wrapper(tmp_path, llama_server)
    port = free_port()
    launcher = subprocess.Popen([sys.executable, "-m", "llama_launcher", "serve", str(mtp_models["plain"]),
                                 "--binary", str(shim), "--port", str(port), "-t", "1", "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    processes.append(launcher)
    assert launcher.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(launcher.stdout.readline, "")), daemon=True)
    reader.start()
    assert wait_for(lambda: any(ln.startswith("ready:") for ln in lines), 240), lines
    real = _real_server_in(launcher.pid, llama_server)
    assert real is not None
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(10)
    time.sleep(1.0)  # the shim got its parent-death signal; the server it started did not
    assert not _gone(real.pid), "the test needs the grandchild to survive the launcher"
    ended = orphan_guard.sweep()  # what the next start of the launcher does first
    assert real.pid in ended
    assert wait_for(lambda: _gone(real.pid), 15)
    assert wait_for(lambda: port_is_free(port), 10)
