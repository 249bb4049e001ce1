"""Evidence that a SIGKILL came from the system running out of memory, or none.

A SIGKILL is also what ``kill -9``, a task manager, a container limit or a watchdog sends, so
"the out-of-memory killer did it" is said only with something to show for it:

- the kernel log names this very process (Linux ``dmesg``: "Out of memory: Killed process PID"),
  and the line is from after the process started (pids are reused);
- the server was using most of the memory there was (its resident size against what was still
  available, sampled while it ran), or the machine had almost none left;
- the model file is larger than the memory that was available when the server started.

Each source is one function returning lines of evidence; the runner samples memory while the
server runs and asks :func:`gather` once, after a SIGKILL.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from llama_launcher.core.host.process_env import child_env, no_window_flags

GIB = 1024**3
NEAR_ALL = 0.85  # the server held at least this share of the memory it could have had
ALMOST_NONE = 0.03  # the machine had less than this share of its memory left
_KERNEL_OOM = re.compile(r"(Out of memory|oom-kill|Memory cgroup out of memory).*?(?:Killed process |pid=)(?P<pid>\d+)"
                         r"|Killed process (?P<pid2>\d+)", re.I)
_DMESG_TIME = re.compile(r"^\[\s*(?P<t>\d+\.\d+)\]")


@dataclass
class MemorySample:
    """One look at the server's memory and the machine's, taken while it ran."""

    rss: int
    available: int
    total: int


def sample(pid: int) -> MemorySample | None:
    try:
        rss = psutil.Process(pid).memory_info().rss
        vm = psutil.virtual_memory()
    except psutil.Error:
        return None
    return MemorySample(int(rss), int(vm.available), int(vm.total))


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def from_memory(last: MemorySample | None) -> list[str]:
    if last is None or last.total <= 0:
        return []
    could_have = last.rss + last.available
    if could_have > 0 and last.rss >= NEAR_ALL * could_have:
        return [f"llama-server was using {_gib(last.rss)} of the {_gib(could_have)} it could have had"]
    if last.available < ALMOST_NONE * last.total:
        return [f"the machine had only {_gib(last.available)} of {_gib(last.total)} memory left"]
    return []


def from_model_size(model_bytes: int | None, available_at_start: int | None) -> list[str]:
    if not model_bytes or not available_at_start:
        return []
    if model_bytes > available_at_start:
        return [f"the model file ({_gib(model_bytes)}) is larger than the memory that was available "
                f"when it started ({_gib(available_at_start)})"]
    return []


def kernel_log_text() -> str:
    """The kernel's ring buffer (Linux); '' where it cannot be read (not Linux, dmesg_restrict)."""
    if not sys.platform.startswith("linux"):
        return ""
    try:
        run = subprocess.run(["dmesg"], capture_output=True, text=True, errors="replace", timeout=3,  # noqa: S603, S607
                             env=child_env(), stdin=subprocess.DEVNULL, creationflags=no_window_flags())
    except (OSError, subprocess.SubprocessError):
        return ""
    return run.stdout[-1_000_000:] if run.returncode == 0 else ""


def from_kernel_log(text: str, pid: int, started: float | None, boot_time: float | None = None) -> list[str]:
    """Kernel lines that say this pid was killed for memory, from after it started."""
    boot = psutil.boot_time() if boot_time is None else boot_time
    found = []
    for line in text.splitlines():
        m = _KERNEL_OOM.search(line)
        if not m or int(m.group("pid") or m.group("pid2")) != pid:
            continue
        t = _DMESG_TIME.match(line)
        if t and started is not None and boot + float(t.group("t")) < started - 1:
            continue  # an older process that had the same pid
        found.append("kernel log: " + line.strip()[:200])
    return found[-2:]


Gather = Callable[[int, float | None, MemorySample | None, int | None, int | None], list[str]]


def gather(pid: int, started: float | None, last: MemorySample | None, model_bytes: int | None,
           available_at_start: int | None) -> list[str]:
    """Every piece of evidence that a SIGKILL of ``pid`` was for memory (empty: no evidence)."""
    return (from_kernel_log(kernel_log_text(), pid, started) + from_memory(last)
            + from_model_size(model_bytes, available_at_start))
