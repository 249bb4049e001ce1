"""No llama-server outlives the launcher: the OS ties (``host/child_process.py``), and a sweep where they fall short.

Linux's parent-death signal reaches only the direct child, and macOS has no tie at all, so every
server the launcher starts is recorded (pid, create time, executable, port, process group) and the
next start ends any recorded server whose launcher is gone: the server itself when pid, create
time, executable and ``--port`` all still match, and what is left of its process group (a wrapper
script's real server) when those processes carry the recorded ``--port``. Never a process it did
not start.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from llama_launcher.core.host import child_process
from llama_launcher.core.state import paths
from llama_launcher.core.state.state_files import StateFileError, expect, read_json, save_json

_lock = threading.Lock()


@dataclass
class ServerRecord:
    pid: int
    create_time: float
    exe: str
    port: int
    launcher_pid: int
    group: int | None = None  # the process group the server leads (POSIX): a wrapper's children stay in it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def registry_file() -> Path:
    return paths.state_dir() / "running-servers.json"


def _positive_int(value: Any, what: str) -> int:
    expect(value, int, what)
    if value <= 0 or value > 2**31:  # pid -1 means "every process" to kill(): never trusted from a file
        raise StateFileError(f"{what} {value} is not a process id")
    return int(value)


def _records(data: Any) -> list[ServerRecord]:
    """Validate the registry: a list of records whose every field has its type (and a real pid)."""
    expect(data, list, "the server registry")
    out = []
    for r in data:
        expect(r, dict, "a server record")
        port = expect(r.get("port"), int, "port")
        if not 0 < port < 65536:
            raise StateFileError(f"port {port} is not a TCP port")
        create_time = expect(r.get("create_time"), (int, float), "create_time")
        if create_time != create_time or create_time < 0:  # NaN is not a time
            raise StateFileError("create_time is not a time")
        group = r.get("group")
        out.append(ServerRecord(pid=_positive_int(r.get("pid"), "pid"), create_time=float(create_time),
                                exe=expect(r.get("exe"), str, "exe"), port=port,
                                launcher_pid=_positive_int(r.get("launcher_pid"), "launcher_pid"),
                                group=None if group is None else _positive_int(group, "group")))
    return out


def _read() -> list[ServerRecord]:
    return read_json(registry_file(), "the list of running servers", _records) or []


def _write(records: list[ServerRecord]) -> bool:
    """Save the registry; a read-only or full disk is said once (then only the sweep is weaker)."""
    return save_json(registry_file(), [r.to_dict() for r in records], "the list of running servers")


def record(pid: int, exe: str, port: int, group: int | None = None) -> ServerRecord | None:
    try:
        create_time = psutil.Process(pid).create_time()
    except psutil.Error:
        return None
    rec = ServerRecord(pid, create_time, os.path.realpath(exe), port, os.getpid(), group)
    with _lock:
        records = [r for r in _read() if r.pid != pid]
        records.append(rec)
        _write(records)
    return rec


def forget(pid: int) -> None:
    with _lock:
        records = _read()
        kept = [r for r in records if r.pid != pid]
        if len(kept) != len(records):
            _write(kept)


def _has_port(rec: ServerRecord, proc: psutil.Process) -> bool:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return any(a == "--port" and i + 1 < len(cmd) and cmd[i + 1] == str(rec.port) for i, a in enumerate(cmd))


def _matches(rec: ServerRecord, proc: psutil.Process) -> bool:
    try:
        if abs(proc.create_time() - rec.create_time) > 0.05:
            return False
        exe = proc.exe()
        if os.path.realpath(exe) != rec.exe:
            return False
    except psutil.Error:
        return False
    return _has_port(rec, proc)


def _left_of(rec: ServerRecord) -> list[psutil.Process]:
    """What a server left behind: itself when it is still the recorded process, and the members of
    its process group started after it that carry its ``--port`` (a wrapper script's real server)."""
    procs = []
    try:
        proc = psutil.Process(rec.pid)
        if _matches(rec, proc):
            procs.append(proc)
    except psutil.Error:
        pass
    if rec.group is None:
        return procs
    for p in child_process.tree(rec.pid, rec.group):
        try:
            if p.pid != rec.pid and p.create_time() >= rec.create_time - 0.05 and _has_port(rec, p):
                procs.append(p)
        except psutil.Error:
            continue
    return procs


def sweep(log: Callable[[str], None] | None = None) -> list[int]:
    """End recorded servers whose launcher is gone; returns the pids that were ended."""
    ended: list[int] = []
    with _lock:
        records = _read()
        keep: list[ServerRecord] = []
        for rec in records:
            if rec.launcher_pid == os.getpid():
                keep.append(rec)  # this launcher's own server
                continue
            if psutil.pid_exists(rec.launcher_pid) and rec.launcher_pid != 0:
                try:
                    # a launcher that is still running owns its server
                    if psutil.Process(rec.launcher_pid).create_time() < rec.create_time:
                        keep.append(rec)
                        continue
                except psutil.Error:
                    pass
            procs = _left_of(rec)  # a reused pid or an unrelated program is never among them
            for proc in procs:
                try:
                    proc.terminate()
                except psutil.Error:
                    continue
            _, alive = psutil.wait_procs(procs, timeout=5)
            for proc in alive:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(alive, timeout=5)
            for proc in procs:
                ended.append(proc.pid)
                if log:
                    log(f"ended llama-server pid {proc.pid} (port {rec.port}) left behind by an earlier launcher")
        if keep != records:
            _write(keep)
    return ended
