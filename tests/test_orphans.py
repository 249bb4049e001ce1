"""No orphans: a killed launcher takes its server along; the start-up sweep ends only what it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from llama_launcher.core.host.network import free_port
from llama_launcher.core.server import orphan_guard

from conftest import stop_process, wait_for

pytestmark = pytest.mark.integration


def _llama_children(pid: int) -> list[psutil.Process]:
    try:
        return [c for c in psutil.Process(pid).children(recursive=True) if "llama-server" in c.name()]
    except psutil.Error:
        return []


def _start_serve(llama_server: str, model: Path, processes: list) -> subprocess.Popen:
    """`llama-launcher serve` in a child process, returned once it printed 'ready:'."""
    launcher = subprocess.Popen(
        [sys.executable, "-m", "llama_launcher", "serve", str(model), "--binary", llama_server, "-t", "1", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    processes.append(launcher)
    assert launcher.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = launcher.stdout.readline()
        assert line, "serve ended before it was ready"
        if line.startswith("ready:"):
            return launcher
    raise AssertionError("serve never became ready")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's; macOS relies on the sweep")
def test_sigkill_of_serve_takes_the_server_along(llama_server: str, mtp_models: dict, processes: list) -> None:
    launcher = _start_serve(llama_server, mtp_models["plain"], processes)
    servers = _llama_children(launcher.pid)
    assert len(servers) == 1
    server = servers[0]
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(10)
    assert wait_for(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE, 5.0)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no SIGTERM to send; the window stops the server itself")
def test_serve_stops_cleanly_on_sigterm(llama_server: str, mtp_models: dict, processes: list) -> None:
    launcher = _start_serve(llama_server, mtp_models["plain"], processes)
    server = _llama_children(launcher.pid)[0]
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(30) == 0
    assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE
    assert json.loads(orphan_guard.registry_file().read_text()) == []


def _start_plain_server(llama_server: str, model: Path, processes: list) -> tuple[subprocess.Popen, int]:
    port = free_port()
    p = subprocess.Popen([llama_server, "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-t", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.append(p)
    return p, port


def test_sweep_ends_recorded_survivor_and_leaves_others_alone(llama_server: str, mtp_models: dict,
                                                              processes: list) -> None:
    survivor, port1 = _start_plain_server(llama_server, mtp_models["plain"], processes)
    unrelated, _ = _start_plain_server(llama_server, mtp_models["plain"], processes)
    reused, port3 = _start_plain_server(llama_server, mtp_models["plain"], processes)
    time.sleep(0.5)
    orphan_guard.record(survivor.pid, llama_server, port1)
    # a record whose pid now belongs to another process (create time differs): must be left alone
    rec = orphan_guard.record(reused.pid, llama_server, port3)
    assert rec is not None
    data = json.loads(orphan_guard.registry_file().read_text())
    dead_launcher = 2**22 + 12345  # no such pid: the launcher that started them is gone
    for r in data:
        r["launcher_pid"] = dead_launcher
        if r["pid"] == reused.pid:
            r["create_time"] -= 100.0
    orphan_guard.registry_file().write_text(json.dumps(data))
    ended = orphan_guard.sweep()
    assert ended == [survivor.pid]
    assert survivor.wait(10) is not None
    assert unrelated.poll() is None and reused.poll() is None
    assert json.loads(orphan_guard.registry_file().read_text()) == []
    stop_process(unrelated)
    stop_process(reused)


def test_sweep_keeps_servers_of_a_running_launcher(llama_server: str, mtp_models: dict, processes: list) -> None:
    server, port = _start_plain_server(llama_server, mtp_models["plain"], processes)
    time.sleep(0.3)
    orphan_guard.record(server.pid, llama_server, port)
    data = json.loads(orphan_guard.registry_file().read_text())
    # pretend another launcher instance, still running (this test process' parent), owns it
    data[0]["launcher_pid"] = os.getppid()
    orphan_guard.registry_file().write_text(json.dumps(data))
    assert orphan_guard.sweep() == []
    assert server.poll() is None


def test_sweep_never_ends_this_launchers_own_server(llama_server: str, mtp_models: dict, processes: list) -> None:
    server, port = _start_plain_server(llama_server, mtp_models["plain"], processes)
    time.sleep(0.3)
    orphan_guard.record(server.pid, llama_server, port)  # recorded by this very process
    assert orphan_guard.sweep() == []
    assert server.poll() is None
    orphan_guard.forget(server.pid)
