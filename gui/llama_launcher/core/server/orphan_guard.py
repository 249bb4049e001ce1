"""No llama-server outlives the launcher: OS ties where they exist, and a sweep where they do not.

Linux: ``PR_SET_PDEATHSIG`` kills the child when the *thread* that spawned it exits, so the runner
spawns from a thread that lives exactly as long as the server. Windows: a Job Object with
kill-on-close, closed by the OS when the launcher dies. macOS has neither, so every server the
launcher starts is recorded (pid, create time, executable, port) and the next start ends any
recorded server that is still running and matches all four: never a process it did not start.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

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
        out.append(ServerRecord(pid=_positive_int(r.get("pid"), "pid"), create_time=float(create_time),
                                exe=expect(r.get("exe"), str, "exe"), port=port,
                                launcher_pid=_positive_int(r.get("launcher_pid"), "launcher_pid")))
    return out


def _read() -> list[ServerRecord]:
    return read_json(registry_file(), "the list of running servers", _records) or []


def _write(records: list[ServerRecord]) -> bool:
    """Save the registry; a read-only or full disk is said once (then only the sweep is weaker)."""
    return save_json(registry_file(), [r.to_dict() for r in records], "the list of running servers")


def record(pid: int, exe: str, port: int) -> ServerRecord | None:
    try:
        create_time = psutil.Process(pid).create_time()
    except psutil.Error:
        return None
    rec = ServerRecord(pid, create_time, os.path.realpath(exe), port, os.getpid())
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


def _matches(rec: ServerRecord, proc: psutil.Process) -> bool:
    try:
        if abs(proc.create_time() - rec.create_time) > 0.05:
            return False
        exe = proc.exe()
        if os.path.realpath(exe) != rec.exe:
            return False
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return any(a == "--port" and i + 1 < len(cmd) and cmd[i + 1] == str(rec.port) for i, a in enumerate(cmd))


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
            try:
                proc = psutil.Process(rec.pid)
            except psutil.Error:
                continue  # gone already
            if not _matches(rec, proc):
                continue  # the pid was reused by another program: never touch it
            try:
                proc.terminate()
                try:
                    proc.wait(5)
                except psutil.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
                ended.append(rec.pid)
                if log:
                    log(f"ended llama-server pid {rec.pid} (port {rec.port}) left behind by an earlier launcher")
            except psutil.Error:
                pass
        if keep != records:
            _write(keep)
    return ended


# --- Linux: parent-death signal -------------------------------------------------------------

_prctl: Any = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
        _prctl = _libc.prctl
    except (OSError, AttributeError):
        _prctl = None
PR_SET_PDEATHSIG = 1


def linux_preexec() -> Callable[[], None] | None:
    """A preexec_fn that asks the kernel to SIGKILL the child when its spawning thread dies."""
    if _prctl is None:
        return None
    prctl = _prctl
    sig = int(signal.SIGKILL)

    def _set_pdeathsig() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return _set_pdeathsig


# --- Windows: a Job Object that kills its processes when the launcher's handle closes ----------

class WindowsJob:
    """Kill-on-close job; the handle is held for the launcher's lifetime (the OS closes it on death)."""

    def __init__(self) -> None:
        self.handle = None
        if sys.platform != "win32":
            return
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
        self._kernel32 = kernel32
        kernel32.CreateJobObjectW.restype = wintypes.HANDLE
        handle = kernel32.CreateJobObjectW(None, None)
        if not handle:
            return

        class IO_COUNTERS(ctypes.Structure):
            _fields_ = [(n, ctypes.c_ulonglong) for n in ("ReadOperationCount", "WriteOperationCount",
                        "OtherOperationCount", "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]

        class BASIC(ctypes.Structure):
            _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64), ("PerJobUserTimeLimit", ctypes.c_int64),
                        ("LimitFlags", wintypes.DWORD), ("MinimumWorkingSetSize", ctypes.c_size_t),
                        ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", wintypes.DWORD),
                        ("Affinity", ctypes.c_size_t), ("PriorityClass", wintypes.DWORD),
                        ("SchedulingClass", wintypes.DWORD)]

        class EXTENDED(ctypes.Structure):
            _fields_ = [("BasicLimitInformation", BASIC), ("IoInfo", IO_COUNTERS),
                        ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                        ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t)]

        info = EXTENDED()
        info.BasicLimitInformation.LimitFlags = 0x2000  # JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        ok = kernel32.SetInformationJobObject(handle, 9, ctypes.byref(info), ctypes.sizeof(info))
        if ok:
            self.handle = handle

    def assign(self, pid: int) -> bool:
        if sys.platform != "win32" or not self.handle:
            return False
        PROCESS_ALL_ACCESS = 0x1F0FFF
        k = self._kernel32
        proc = k.OpenProcess(PROCESS_ALL_ACCESS, False, pid)
        if not proc:
            return False
        try:
            return bool(k.AssignProcessToJobObject(self.handle, proc))
        finally:
            k.CloseHandle(proc)


_job: WindowsJob | None = None


def windows_job() -> WindowsJob:
    global _job
    if _job is None:
        _job = WindowsJob()
    return _job
