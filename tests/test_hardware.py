"""Hardware: --list-devices parsing, JSON round trip, a hand-written file, the branch decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llama_launcher.core.host.backends import Backend
from llama_launcher.core.host.hardware import Hardware, detect, parse_list_devices
from llama_launcher.core.llama_server.devices import detect_with_binary

from fake_server import make_fake_server

LIST = """Available devices:
  CUDA0: NVIDIA GeForce RTX 4090 (24080 MiB, 23500 MiB free)
  Vulkan0: AMD Radeon RX 7900 XTX (24560 MiB, 24000 MiB free)
  BLAS: OpenBLAS (0 MiB, 0 MiB free)
  MTL0: Apple M2 Max (49152 MiB, 49000 MiB free)
"""


def test_parse_list_devices() -> None:
    devs = parse_list_devices(LIST)
    assert [(d.backend, d.name, d.memory_total_mib, d.memory_free_mib) for d in devs] == [
        (Backend.CUDA, "NVIDIA GeForce RTX 4090", 24080, 23500),
        (Backend.VULKAN, "AMD Radeon RX 7900 XTX", 24560, 24000),
        (Backend.METAL, "Apple M2 Max", 49152, 49000),
    ]
    assert parse_list_devices("Available devices:\n  (none)\n") == []


def test_detect_this_machine_and_round_trip() -> None:
    hw = detect()
    assert hw.ram_total_mib > 0 and hw.ram_available_mib > 0 and hw.cpu
    assert hw.logical_cores and hw.logical_cores >= 1
    again = Hardware.from_dict(json.loads(hw.to_json()))
    assert again == hw


def test_hand_written_file_with_minimum_keys(tmp_path: Path) -> None:
    f = tmp_path / "hw.json"
    f.write_text(json.dumps({"cpu": "Threadripper", "ram_total_mib": 131072, "ram_available_mib": 120000,
                             "apple_silicon": False,
                             "gpus": [{"name": "RTX 4090", "backend": "CUDA", "memory_total_mib": 24564,
                                       "memory_free_mib": 24000}]}))
    hw = Hardware.load(f)
    assert hw.gpu_branch()[0] and hw.gpu_free_mib() == 24000


@pytest.mark.parametrize("content,message", [("{", "not valid JSON"), ("[]", "JSON object"), ('{"cpu": "x"}', "lacks the key"),
                                             ('{"cpu":"x","ram_total_mib":"lots","ram_available_mib":1,"apple_silicon":false}', "bad value")])
def test_bad_hardware_files(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "hw.json"
    f.write_text(content)
    with pytest.raises(ValueError, match=message):
        Hardware.load(f)


def test_apple_silicon_takes_cpu_mac_branch() -> None:
    hw = Hardware("Apple M3", 32768, 20000, True, [])
    gpu, why = hw.gpu_branch()
    assert not gpu and "Apple Silicon" in why


def test_backend_view_from_fake_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DEVICES", "  CUDA0: NVIDIA L4 (22478 MiB, 22000 MiB free)")
    exe = make_fake_server(tmp_path / "f", "b11434-current")
    hw = detect_with_binary(str(exe))
    assert hw.backend_devices is not None and hw.backend_devices[0].name == "NVIDIA L4"
    assert hw.gpu_branch()[0]


@pytest.mark.integration
def test_backend_view_from_real_binary(llama_server: str) -> None:
    hw = detect_with_binary(llama_server)
    assert hw.backend_devices == []  # a CPU build on a machine without GPU
    assert not hw.gpu_branch()[0]


def test_nvidia_gpus_through_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NVIDIA GPU here: a stand-in pynvml module exercises the query path (names, MiB, driver)."""
    import sys
    import types

    from llama_launcher.core.host import hardware

    fake = types.ModuleType("pynvml")
    fake.nvmlInit = lambda: None
    fake.nvmlShutdown = lambda: None
    fake.nvmlSystemGetDriverVersion = lambda: b"550.54.15"
    fake.nvmlDeviceGetCount = lambda: 2
    fake.nvmlDeviceGetHandleByIndex = lambda i: i
    fake.nvmlDeviceGetName = lambda h: ["NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090"][h]
    fake.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=(81559 if h == 0 else 24564) * 2**20,
                                                                     free=(80000 if h == 0 else 23000) * 2**20)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    notes: list[str] = []
    gpus = hardware.nvidia_gpus(notes)
    assert [(g.name, g.memory_total_mib, g.memory_free_mib, g.driver, g.backend) for g in gpus] == [
        ("NVIDIA H100 80GB HBM3", 81559, 80000, "550.54.15", Backend.CUDA),
        ("NVIDIA GeForce RTX 4090", 24564, 23000, "550.54.15", Backend.CUDA)]
    assert notes == []


def test_no_nvidia_driver_is_not_an_error() -> None:
    from llama_launcher.core.host import hardware

    notes: list[str] = []
    gpus = hardware.nvidia_gpus(notes)  # on a machine without NVIDIA: nothing, and a note saying why
    if not gpus:
        assert notes and ("NVIDIA" in notes[0] or "pynvml" in notes[0])
