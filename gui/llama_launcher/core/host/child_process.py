"""Long-lived children (llama-server, a source build) that must die with the launcher: the platform layer.

A child may not be the program that does the work: Homebrew-style shims and users' own scripts
start the real llama-server as a *grandchild* (no ``exec``), and cmake starts compilers. So the
launcher treats each child as a tree:

- POSIX: the child leads its own session and process group (Ctrl+C in a terminal reaches the
  launcher, not the server); stopping signals the whole group, and whatever is left of the group
  when the child itself exits is ended too. Linux adds ``PR_SET_PDEATHSIG``: the kernel SIGKILLs
  the child when the *thread* that spawned it exits (so the spawning thread must live as long as
  the child), and the child's group is then ended by the next start's sweep (``orphan_guard``).
- Windows: each child is assigned to one Job Object with kill-on-close; the launcher holds the
  only handle, so the OS ends every process in the job (grandchildren included) when the launcher
  dies. Stopping ends the child's descendants (psutil) and then the child.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psutil

from llama_launcher.core.host.process_env import no_window_flags

SIGKILL = int(getattr(signal, "SIGKILL", 9))  # Windows has no SIGKILL: psutil's kill() is TerminateProcess there


def popen_kwargs() -> dict[str, Any]:
    """What ``subprocess.Popen`` needs for a child that is stopped as a tree and dies with the launcher."""
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = no_window_flags() | int(getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200))
        return kwargs
    kwargs["start_new_session"] = True
    if sys.platform.startswith("linux"):
        pre = linux_preexec()
        if pre is not None:
            kwargs["preexec_fn"] = pre
    return kwargs


def after_spawn(pid: int) -> None:
    """Tie a just-started child to the launcher's lifetime where the OS needs a call for it (Windows)."""
    if sys.platform == "win32":
        windows_job().assign(pid)


def group_of(pid: int) -> int | None:
    """The process group a child leads (POSIX), to find its descendants after it is gone."""
    if sys.platform == "win32":
        return None
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def tree(pid: int, group: int | None = None) -> list[psutil.Process]:
    """The child and everything it started: its descendants and, on POSIX, the rest of its group."""
    found: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(pid)
        found[root.pid] = root
        for p in root.children(recursive=True):
            found[p.pid] = p
    except psutil.Error:
        pass
    if group is not None and sys.platform != "win32":
        for p in psutil.process_iter():
            try:
                if p.pid not in found and os.getpgid(p.pid) == group:
                    found[p.pid] = p
            except (OSError, psutil.Error):
                continue
    return list(found.values())


def _signal(procs: list[psutil.Process], sig: int) -> None:
    for p in procs:
        with contextlib.suppress(psutil.Error, OSError):
            if sig == SIGKILL:
                p.kill()
            else:
                p.terminate()


def end_tree(pid: int, group: int | None, grace: float = 10.0) -> bool:
    """Terminate the child's tree, wait up to ``grace`` seconds, then kill what is left; whether all ended.

    Each process gets one polite signal only: llama-server exits at once, without its clean shutdown
    (and the memory report it prints then), on a second one."""
    procs = tree(pid, group)
    reached = _signal_group(group, int(signal.SIGTERM))
    _signal([p for p in procs if p.pid not in reached], int(signal.SIGTERM))
    _, alive = psutil.wait_procs(procs, timeout=grace)
    if alive:
        _signal_group(group, SIGKILL)
        _signal(alive, SIGKILL)
        _, alive = psutil.wait_procs(alive, timeout=5)
    return not alive


def _signal_group(group: int | None, sig: int) -> set[int]:
    """Signal a child's process group (POSIX); the pids that were in it."""
    if group is None or sys.platform == "win32":
        return set()
    members = set()
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == group:
                members.add(p.pid)
        except (OSError, psutil.Error):
            continue
    with contextlib.suppress(OSError):
        os.killpg(group, sig)
    return members


def leftovers(pid: int, group: int | None) -> list[psutil.Process]:
    """Processes of the child's tree still running (a wrapper's server after the wrapper exited)."""
    out = []
    for p in tree(pid, group):
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


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
    sig = SIGKILL

    def _set_pdeathsig() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return _set_pdeathsig


# --- Windows: a Job Object that kills its processes when the launcher's handle closes ----------

class WindowsJob:
    """Kill-on-close job; the handle is held for the launcher's lifetime (the OS closes it on death).

    Processes a job member starts belong to the job too, so a wrapper's real server is covered."""

    def __init__(self) -> None:
        self.handle = None
        if sys.platform != "win32":
            return
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
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
