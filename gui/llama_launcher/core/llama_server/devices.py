"""The devices a llama-server binary itself can use (``--list-devices``), recorded in the hardware view.

pynvml and the OS say which GPUs the machine has; only the binary says which of them it can drive
(a CPU-only build on a machine with an RTX card drives none). Its list wins, and a GPU it leaves
idle is named (``idle_gpu``).
"""

from __future__ import annotations

from llama_launcher.core.host import hardware
from llama_launcher.core.host.hardware import Hardware, parse_list_devices
from llama_launcher.core.llama_server.idle_gpu import idle_gpu_notice
from llama_launcher.core.llama_server.probe import list_devices_text


def ask_binary_devices(hw: Hardware, server_binary: str | None) -> Hardware:
    """Record llama-server's own device list in ``hw`` (it wins over pynvml and over a hardware file),
    and note a GPU that this binary leaves idle."""
    if not server_binary:
        return hw

    text = list_devices_text(server_binary)
    if text:
        hw.backend_devices = parse_list_devices(text)
        notice = idle_gpu_notice(hw)
        if notice and notice not in hw.notes:
            hw.notes.append(notice)
    return hw


def detect_with_binary(server_binary: str | None) -> Hardware:
    """Detect this machine; with a binary, also record llama.cpp's own device list."""
    return ask_binary_devices(hardware.detect(), server_binary)
