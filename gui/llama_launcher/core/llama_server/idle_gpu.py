"""Saying so when the machine has a GPU that this llama-server cannot use.

A CPU-only llama-server on a machine with an NVIDIA card runs, but many times slower than it
could, and nothing in its output says why. When pynvml, the OS or a hardware file shows a
discrete GPU while the binary's own ``--list-devices`` shows none, the hardware view and the plan
carry one sentence naming the card, the missing backend, and the way out.
"""

from __future__ import annotations

import sys

from llama_launcher.core.host.backends import Backend
from llama_launcher.core.host.gpus import vendor_of
from llama_launcher.core.host.hardware import DISCRETE_BACKENDS, GPU, Hardware

_MISSING = {"NVIDIA": "CUDA or Vulkan", "AMD": "ROCm or Vulkan", "Intel": "Vulkan or SYCL", "Apple": "Metal"}


def _vendor(g: GPU) -> str:
    return vendor_of(g.name, g.backend)


def idle_gpus(hw: Hardware) -> list[GPU]:
    """GPUs seen by pynvml, the OS or a hardware file that this binary's device list lacks."""
    devices = hw.backend_devices
    if devices is None:
        return []  # the binary was not asked: nothing to compare with
    if hw.apple_silicon:
        if any(d.backend is Backend.METAL for d in devices):
            return []
        return [g for g in hw.gpus if g.backend is Backend.METAL][:1]
    if hw.discrete_devices():
        return []
    seen: list[GPU] = []
    named: list[str] = []  # the vendor of each card pynvml or a file named: each stands for one OS card
    for g in [*hw.gpus, *hw.os_gpus]:
        if g.backend not in DISCRETE_BACKENDS:
            continue
        if g.source != "OS":
            named.append(_vendor(g))
        elif _vendor(g) in named:
            named.remove(_vendor(g))
            continue  # the OS's view of a card already named; a second card of that vendor still counts
        seen.append(g)
    return seen


def way_out(vendor: str, os_name: str | None = None) -> str:
    os_name = os_name or ("windows" if sys.platform == "win32" else "macos" if sys.platform == "darwin" else "linux")
    download = "download the matching build on the llama-server tab (or run 'llama-launcher get-server --download')"
    if vendor == "Apple":
        return "download llama.cpp's release build, which has Metal, on the llama-server tab (or 'brew install llama.cpp')"
    if os_name == "macos":
        return "build one with Metal: 'llama-launcher get-server --build --backend metal'"
    if os_name == "linux" and vendor == "NVIDIA":
        return ("download llama.cpp's Vulkan build on the llama-server tab (or run 'llama-launcher get-server "
                "--download'), or build one with CUDA ('llama-launcher get-server --build --backend cuda')")
    return download


def idle_gpu_notice(hw: Hardware, os_name: str | None = None) -> str | None:
    """One sentence for the hardware view and the plan, or None when no GPU sits idle."""
    idle = idle_gpus(hw)
    if not idle:
        return None
    g = idle[0]
    vendor = _vendor(g)
    name = g.name if vendor in ("other", "Apple") or g.name.lower().startswith(vendor.lower()) else f"{vendor} {g.name}"
    missing = _MISSING.get(vendor, "GPU")
    more = f" (and {len(idle) - 1} more GPU{'s' if len(idle) > 2 else ''})" if len(idle) > 1 else ""
    return f"Your {name}{more} is not used: this llama-server has no {missing} backend; {way_out(vendor, os_name)}."
