"""The machine as the planner sees it: CPU, RAM, GPUs, and (filled in by ``llama_server.devices``) llama.cpp's own device list.

No NVIDIA driver is the normal case on a Mac and many PCs, so pynvml failing is not an error.
``llama-server --list-devices`` is what llama.cpp will really use (CUDA, ROCm, Vulkan, Metal),
so when it is available it decides the planner's GPU branch.
"""

from __future__ import annotations

import json
import math
import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from llama_launcher.core.host.backends import DISCRETE, Backend
from llama_launcher.core.host.gpus import os_adapters, query_nvml

MIB = 1024 * 1024
_DEVICE_RE = re.compile(
    r"^\s*(?P<id>[A-Za-z]+)(?P<index>\d*)\s*:\s*(?P<name>.*?)\s*\((?P<total>\d+)\s*MiB,\s*(?P<free>\d+)\s*MiB free\)\s*$"
)
DISCRETE_BACKENDS = DISCRETE


@dataclass
class GPU:
    name: str
    backend: Backend
    memory_total_mib: int
    memory_free_mib: int
    driver: str | None = None
    source: str = "pynvml"  # "pynvml", "llama-server --list-devices", "Apple", "file"

    def __post_init__(self) -> None:
        self.backend = Backend(self.backend)  # "CUDA", "cuda" and llama.cpp's "MTL" all read as one


@dataclass
class Hardware:
    cpu: str
    ram_total_mib: int
    ram_available_mib: int
    apple_silicon: bool
    gpus: list[GPU] = field(default_factory=list)
    physical_cores: int | None = None
    logical_cores: int | None = None
    os: str = ""
    backend_devices: list[GPU] | None = None  # None: the backend was not asked
    notes: list[str] = field(default_factory=list)
    # discrete display adapters the OS lists (an AMD card pynvml cannot see); never decides the branch
    os_gpus: list[GPU] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hardware:
        """Load a saved or hand-written description; only cpu, RAM, apple_silicon and gpus are needed.

        Every number must be a finite, non-negative amount (``1e999`` parses as infinity, which
        no memory budget survives); a wrong value is one ``ValueError`` line naming the key.
        """
        if not isinstance(data, dict):
            raise ValueError("hardware description must be a JSON object")
        try:
            gpus = [_gpu_from(g, "file") for g in _list_of(data.get("gpus", []), "gpus")]
            backend = data.get("backend_devices")
            return cls(
                cpu=_text(data["cpu"], "cpu"),
                ram_total_mib=_amount(data["ram_total_mib"], "ram_total_mib"),
                ram_available_mib=_amount(data["ram_available_mib"], "ram_available_mib"),
                apple_silicon=_flag(data["apple_silicon"], "apple_silicon"),
                gpus=gpus,
                physical_cores=_cores(data.get("physical_cores"), "physical_cores"),
                logical_cores=_cores(data.get("logical_cores"), "logical_cores"),
                os=_text(data.get("os", ""), "os"),
                backend_devices=[_gpu_from(g, "llama-server --list-devices") for g in _list_of(backend, "backend_devices")]
                if backend is not None else None,
                notes=[_text(n, "notes") for n in _list_of(data.get("notes", []), "notes")],
                os_gpus=[_gpu_from(g, "OS") for g in _list_of(data.get("os_gpus", []), "os_gpus")],
            )
        except KeyError as exc:
            raise ValueError(f"hardware description lacks the key {exc.args[0]!r}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Hardware:
        p = Path(path)
        try:
            if not p.is_file():
                raise ValueError(f"{path} is not a file" if p.exists() else f"{path} does not exist")
            if p.stat().st_size > MAX_DESCRIPTION_BYTES:
                raise ValueError(f"{path} is too large to be a hardware description ({p.stat().st_size:,} bytes)")
            data = json.loads(p.read_bytes().decode("utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} is not UTF-8 text") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
        except RecursionError as exc:
            raise ValueError(f"{path} is nested too deeply to be a hardware description") from exc
        return cls.from_dict(data)

    def discrete_devices(self) -> list[GPU]:
        """The discrete GPUs with memory (:data:`DISCRETE_BACKENDS`): llama-server's own device list when
        it was asked, else the GPUs found on the machine. The GPU branch, its free memory and the
        memory estimate's backend all read this one list."""
        devices = self.backend_devices if self.backend_devices is not None else self.gpus
        return [d for d in devices if d.backend in DISCRETE_BACKENDS and d.memory_total_mib > 0]

    def gpu_branch(self) -> tuple[bool, str]:
        """(True if the planner takes the GPU branch, the reason in words)."""
        if self.apple_silicon:
            return False, "Apple Silicon: the Mac's GPU shares memory with the CPU, so it is planned like the CPU"
        discrete = self.discrete_devices()
        if self.backend_devices is not None:
            if discrete:
                d = discrete[0]
                return True, f"llama-server reports {d.backend} device {d.name} ({d.memory_total_mib} MiB)"
            return False, "llama-server reports no GPU it can use"
        if discrete:
            g = discrete[0]
            return True, f"{g.backend} GPU {g.name} ({g.memory_total_mib} MiB) found by {g.source}"
        return False, "no separate GPU found"

    def gpu_free_mib(self) -> int:
        """Free memory on the discrete GPUs (what a launch on the GPU branch has)."""
        return sum(d.memory_free_mib for d in self.discrete_devices())


MAX_DESCRIPTION_BYTES = 1 << 20
MAX_MIB = 1 << 40  # a yobibyte-class machine is not a typo we need to plan for


def _bad(key: str, value: Any, why: str) -> ValueError:
    shown = repr(value)
    return ValueError(f"hardware description has a bad value for {key!r}: {shown[:40]} ({why})")


def _amount(value: Any, key: str) -> int:
    """A memory size in MiB: a whole, finite, non-negative number."""
    if isinstance(value, bool):
        raise _bad(key, value, "expected a number of MiB")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _bad(key, value, "expected a number of MiB") from None
    if not isinstance(value, (int, float)):
        raise _bad(key, value, "expected a number of MiB")
    if not math.isfinite(value):
        raise _bad(key, value, "not a finite number")
    if value < 0 or value > MAX_MIB:
        raise _bad(key, value, f"must be between 0 and {MAX_MIB} MiB")
    return int(value)


def _cores(value: Any, key: str) -> int | None:
    if value is None:
        return None
    n = _amount(value, key)
    if not 1 <= n <= 65536:
        raise _bad(key, value, "must be between 1 and 65536")
    return n


def _text(value: Any, key: str) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise _bad(key, value, "expected text")
    return str(value)


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(key, value, "expected true or false")
    return value


def _list_of(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(key, value, "expected a list")
    return value


def _gpu_from(g: Any, default_source: str) -> GPU:
    if not isinstance(g, dict):
        raise _bad("gpus", g, "each GPU must be an object")
    total = _amount(g["memory_total_mib"], "memory_total_mib")
    return GPU(
        name=_text(g["name"], "name"),
        backend=_backend(g.get("backend", "cuda")),
        memory_total_mib=total,
        memory_free_mib=_amount(g.get("memory_free_mib", total), "memory_free_mib"),
        driver=_text(g["driver"], "driver") if g.get("driver") is not None else None,
        source=_text(g.get("source", default_source), "source"),
    )


def _backend(value: Any) -> Backend:
    try:
        return Backend(_text(value, "backend"))
    except ValueError:
        raise _bad("backend", value, f"one of {', '.join(b.label for b in Backend)}") from None


def parse_list_devices(text: str) -> list[GPU]:
    """Parse ``llama-server --list-devices``; 0 MiB accelerator entries (e.g. BLAS) are not GPUs."""
    devices = []
    for line in text.splitlines():
        m = _DEVICE_RE.match(line)
        if not m:
            continue
        total, free = int(m.group("total")), int(m.group("free"))
        if total == 0:
            continue
        try:
            backend = Backend(m.group("id"))
        except ValueError:
            backend = Backend.OTHER
        devices.append(GPU(m.group("name"), backend, total, free, source="llama-server --list-devices"))
    return devices


def cpu_name() -> str:
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["/usr/sbin/sysctl", "-n", "machdep.cpu.brand_string"],
                                 capture_output=True, text=True, timeout=5)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    if sys.platform.startswith("linux"):
        try:
            for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def is_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def nvidia_gpus(notes: list[str]) -> list[GPU]:
    """The NVIDIA GPUs NVML reports (host/gpus.py asks it), with their free memory now."""
    report = query_nvml()
    if report.absent:
        notes.append(report.absent)
    if report.error:
        notes.append(report.error)
    return [GPU(g.name, Backend.CUDA, g.memory_mib, free, report.driver_version, "pynvml")
            for g, free in zip(report.gpus, report.free_mib, strict=True)]


def _os_gpus() -> list[GPU]:
    backend = {"NVIDIA": Backend.CUDA, "AMD": Backend.VULKAN, "Intel": Backend.VULKAN}
    return [GPU(a.name, backend.get(a.vendor, Backend.VULKAN), a.memory_mib, a.memory_mib, source="OS")
            for a in os_adapters() if a.discrete]


def detect() -> Hardware:
    """Detect this machine (``llama_server.devices.detect_with_binary`` adds llama.cpp's own device list)."""
    notes: list[str] = []
    vm = psutil.virtual_memory()
    apple = is_apple_silicon()
    cpu = cpu_name()
    gpus = nvidia_gpus(notes)
    if apple:
        gpus.append(GPU(f"{cpu} GPU (Metal, unified memory)", Backend.METAL, vm.total // MIB, vm.available // MIB,
                        source="Apple"))
    hw = Hardware(
        cpu=cpu,
        ram_total_mib=vm.total // MIB,
        ram_available_mib=vm.available // MIB,
        apple_silicon=apple,
        gpus=gpus,
        physical_cores=psutil.cpu_count(logical=False),
        logical_cores=psutil.cpu_count(logical=True),
        os=f"{platform.system()} {platform.release()} {platform.machine()}",
        notes=notes,
        os_gpus=_os_gpus(),
    )
    return hw
