"""The GPUs this machine has, as far as choosing a llama.cpp build goes.

Choosing a build needs facts the planner does not: the CUDA version the NVIDIA driver supports
(a CUDA 13 build does not start on a driver made for CUDA 12), each card's compute capability
(CUDA 13 dropped cards older than Turing, and a source build compiles for the cards present),
whether a Vulkan loader is installed, and the display adapters the OS lists (an AMD card is
invisible to pynvml: Linux's sysfs and Windows' registry list every adapter, without a subprocess).
Every probe is optional: no driver, no pynvml, no nvidia-smi are ordinary.
"""

from __future__ import annotations

import ctypes.util
import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core.host.backends import Backend
from llama_launcher.core.host.process_env import child_env, no_window_flags

PCI_VENDORS = {"0x10de": "NVIDIA", "0x1002": "AMD", "0x8086": "Intel"}
_SMI_CUDA = re.compile(r"CUDA Version:\s*(\d+)\.(\d+)")


@dataclass(frozen=True)
class NvidiaGpu:
    name: str
    compute_capability: tuple[int, int] | None = None  # (8, 9) for an RTX 4090
    memory_mib: int = 0

    @property
    def sm(self) -> str | None:
        """The CUDA architecture number CMake wants (``89``), when the capability is known."""
        cc = self.compute_capability
        return f"{cc[0]}{cc[1]}" if cc else None


@dataclass(frozen=True)
class Adapter:
    """A display adapter the OS lists (any vendor); ``discrete`` is a best guess."""

    vendor: str
    name: str
    discrete: bool
    memory_mib: int = 0


@dataclass
class GpuInventory:
    nvidia: list[NvidiaGpu] = field(default_factory=list)
    cuda_driver: tuple[int, int] | None = None  # the newest CUDA the driver supports, e.g. (12, 8)
    driver_version: str | None = None
    adapters: list[Adapter] = field(default_factory=list)
    vulkan_loader: bool = False
    notes: list[str] = field(default_factory=list)

    def discrete_names(self) -> list[str]:
        """Every discrete GPU seen, NVIDIA first, without the same card twice."""
        names = [g.name for g in self.nvidia]
        for a in self.adapters:
            if a.discrete and not any(_same_card(a.name, n) for n in names):
                names.append(a.name)
        return names

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _same_card(a: str, b: str) -> bool:
    strip = re.compile(r"^(nvidia|amd|ati|intel)\s+|\(r\)|\(tm\)", re.IGNORECASE)
    return strip.sub("", a).strip().lower() == strip.sub("", b).strip().lower()


def cuda_version_from_int(value: int) -> tuple[int, int] | None:
    """NVML's driver CUDA version (12080) as (12, 8)."""
    if value <= 0:
        return None
    return value // 1000, (value % 1000) // 10


def vendor_of(name: str, backend: Backend | None = None) -> str:
    """The GPU maker from a card's name (or the backend that drives it): NVIDIA, AMD, Intel, Apple or
    other. The one rule for the OS's adapter list, the hardware view and the idle-GPU notice."""
    low = name.lower()
    if backend is Backend.METAL or low.startswith("apple"):
        return "Apple"
    if any(w in low for w in ("nvidia", "geforce", "quadro", "tesla")) or backend is Backend.CUDA:
        return "NVIDIA"
    if "amd" in low or "radeon" in low or backend is Backend.ROCM:
        return "AMD"
    if "intel" in low or backend is Backend.SYCL:
        return "Intel"
    return "other"


@dataclass
class NvmlReport:
    """What NVIDIA's driver (NVML, through nvidia-ml-py) says: the one place it is asked."""

    gpus: list[NvidiaGpu] = field(default_factory=list)
    free_mib: list[int] = field(default_factory=list)  # per GPU, same order
    driver_version: str | None = None
    cuda_driver: tuple[int, int] | None = None
    absent: str = ""  # why there is no answer at all ("pynvml is not installed", "no NVIDIA driver (...)")
    error: str = ""  # a query that broke part-way


def query_nvml() -> NvmlReport:
    report = NvmlReport()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the 'pynvml' shim warns; the module comes from nvidia-ml-py
            import pynvml
    except ImportError:
        report.absent = "pynvml is not installed: NVIDIA GPUs are not queried"
        return report
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: no NVIDIA here (the normal case)
        report.absent = f"no NVIDIA driver ({type(exc).__name__})"
        return report
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        report.driver_version = driver.decode() if isinstance(driver, bytes) else str(driver)
        try:
            report.cuda_driver = cuda_version_from_int(int(pynvml.nvmlSystemGetCudaDriverVersion()))
        except Exception:
            pass
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            name = name.decode() if isinstance(name, bytes) else str(name)
            cc: tuple[int, int] | None
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
                cc = (int(major), int(minor))
            except Exception:
                cc = None
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            report.gpus.append(NvidiaGpu(name, cc, int(mem.total) // (1024 * 1024)))
            report.free_mib.append(int(mem.free) // (1024 * 1024))
    except Exception as exc:
        report.error = f"NVIDIA query failed: {exc}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return report


def _nvml(inv: GpuInventory) -> bool:
    report = query_nvml()
    if report.absent:
        return False
    inv.driver_version, inv.cuda_driver = report.driver_version, report.cuda_driver
    inv.nvidia.extend(report.gpus)
    if report.error:
        inv.notes.append(report.error)
    return True


def parse_nvidia_smi(csv_text: str, banner: str = "") -> tuple[list[NvidiaGpu], tuple[int, int] | None]:
    """``nvidia-smi --query-gpu=name,compute_cap,memory.total --format=csv,noheader,nounits``."""
    gpus = []
    for line in csv_text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0]:
            continue
        cc = None
        m = re.fullmatch(r"(\d+)\.(\d+)", parts[1])
        if m:
            cc = (int(m.group(1)), int(m.group(2)))
        mem = int(parts[2]) if parts[2].isdigit() else 0
        gpus.append(NvidiaGpu(parts[0], cc, mem))
    m = _SMI_CUDA.search(banner)
    return gpus, ((int(m.group(1)), int(m.group(2))) if m else None)


def _run(argv: list[str], timeout: float = 10) -> str:
    try:
        out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,  # noqa: S603
                             timeout=timeout, env=child_env(), creationflags=no_window_flags())
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout if out.returncode == 0 else ""


def _nvidia_smi(inv: GpuInventory) -> None:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return
    csv_text = _run([smi, "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader,nounits"])
    gpus, cuda = parse_nvidia_smi(csv_text, _run([smi]))
    inv.nvidia.extend(gpus)
    inv.cuda_driver = inv.cuda_driver or cuda


def linux_adapters(root: Path = Path("/sys/class/drm")) -> list[Adapter]:
    """Cards under /sys/class/drm: vendor from PCI id, VRAM from amdgpu's mem_info_vram_total."""
    found = []
    try:
        cards = sorted(p for p in root.iterdir() if re.fullmatch(r"card\d+", p.name))
    except OSError:
        return []
    for card in cards:
        dev = card / "device"
        try:
            vendor_id = (dev / "vendor").read_text().strip().lower()
        except OSError:
            continue
        vendor = PCI_VENDORS.get(vendor_id)
        if vendor is None:
            continue
        mem = 0
        try:
            mem = int((dev / "mem_info_vram_total").read_text().strip()) // (1024 * 1024)
        except (OSError, ValueError):
            pass
        # an Intel iGPU or an AMD APU has no (or a tiny) dedicated VRAM
        discrete = vendor == "NVIDIA" or (vendor == "AMD" and mem >= 2048)
        label = {"NVIDIA": "NVIDIA GPU", "AMD": "AMD Radeon GPU", "Intel": "Intel GPU"}[vendor]
        found.append(Adapter(vendor, f"{label} ({card.name})", discrete, mem))
    return found


def windows_adapter(name: str, memory_bytes: int | None) -> Adapter:
    """One display adapter from the registry's display class (DriverDesc, qwMemorySize)."""
    low = name.lower()
    vendor = vendor_of(name)
    mem = memory_bytes // (1024 * 1024) if memory_bytes and memory_bytes > 0 else 0
    # integrated parts call themselves "... Graphics" (Intel UHD Graphics, AMD Radeon(TM) Graphics)
    discrete = vendor == "NVIDIA" or (vendor == "AMD" and not low.endswith("graphics")) or \
        (vendor == "Intel" and "arc" in low and not low.endswith("graphics"))
    return Adapter(vendor, name.strip(), discrete, mem)


_DISPLAY_CLASS = r"SYSTEM\CurrentControlSet\Control\Class\{4d36e968-e325-11ce-bfc1-08002be10318}"


def _windows_adapters() -> list[Adapter]:
    """The display adapters Windows has drivers for, read from the registry (no subprocess, no WMI)."""
    if sys.platform != "win32":
        return []
    import winreg

    found = []
    try:
        cls = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, _DISPLAY_CLASS)
    except OSError:
        return []
    with cls:
        for i in range(64):
            try:
                sub = winreg.EnumKey(cls, i)
            except OSError:
                break
            if not sub.isdigit():
                continue
            try:
                with winreg.OpenKey(cls, sub) as key:
                    name = winreg.QueryValueEx(key, "DriverDesc")[0]
                    try:
                        mem = winreg.QueryValueEx(key, "HardwareInformation.qwMemorySize")[0]
                    except OSError:
                        mem = None
            except OSError:
                continue
            if isinstance(name, str) and name.strip():
                found.append(windows_adapter(name, mem if isinstance(mem, int) else None))
    return found


def os_adapters() -> list[Adapter]:
    """The display adapters the OS lists (Linux sysfs, the Windows registry); empty elsewhere."""
    if sys.platform.startswith("linux"):
        return linux_adapters()
    if sys.platform == "win32":
        return _windows_adapters()
    return []


def vulkan_loader_present() -> bool:
    if sys.platform == "win32":
        system_root = os.environ.get("SystemRoot", r"C:\Windows")
        return (Path(system_root) / "System32" / "vulkan-1.dll").is_file()
    if sys.platform == "darwin":
        return False  # MoltenVK is not what llama.cpp uses on a Mac: Metal is
    return ctypes.util.find_library("vulkan") is not None or any(
        Path(d, "libvulkan.so.1").exists() for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                                      "/usr/lib64", "/usr/lib"))


def detect() -> GpuInventory:
    """Everything above for this machine; the slow part (nvidia-smi, when pynvml fails) is bounded by a timeout."""
    inv = GpuInventory()
    if not _nvml(inv):
        _nvidia_smi(inv)
    inv.adapters = os_adapters()
    inv.vulkan_loader = vulkan_loader_present()
    return inv
