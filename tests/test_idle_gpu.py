"""A GPU that the OS, pynvml or a hardware file sees but this llama-server cannot use is named."""

from __future__ import annotations

from pathlib import Path

from llama_launcher.core.host.gpus import (
    GpuInventory,
    NvidiaGpu,
    cuda_version_from_int,
    linux_adapters,
    parse_nvidia_smi,
    windows_adapter,
)
from llama_launcher.core.host.hardware import GPU, Hardware
from llama_launcher.core.llama_server.idle_gpu import idle_gpu_notice
from llama_launcher.core.llama_server.probe import capabilities_from_help
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.planner import plan_launch
from llama_launcher.core.settings.launch import PlanSettings

from fake_server import HELP_DIR

RTX = GPU("NVIDIA GeForce RTX 4090", "CUDA", 24564, 24000)
CUDA0 = GPU("NVIDIA GeForce RTX 4090", "CUDA", 24564, 23500, source="llama-server --list-devices")


def hw(gpus=(), devices=None, os_gpus=(), apple=False) -> Hardware:
    return Hardware("x86", 65536, 60000, apple, list(gpus), backend_devices=devices, os_gpus=list(os_gpus))


def test_a_cpu_only_binary_on_an_nvidia_machine_is_named_with_the_way_out() -> None:
    assert idle_gpu_notice(hw([RTX], devices=[]), "windows") == (
        "Your NVIDIA GeForce RTX 4090 is not used: this llama-server has no CUDA or Vulkan backend; download the "
        "matching build on the llama-server tab (or run 'llama-launcher get-server --download').")
    linux = idle_gpu_notice(hw([RTX], devices=[]), "linux")
    assert linux is not None and linux.endswith("download llama.cpp's Vulkan build on the llama-server tab (or run "
                                                 "'llama-launcher get-server --download'), or build one with CUDA "
                                                 "('llama-launcher get-server --build --backend cuda').")


def test_no_notice_when_the_binary_uses_the_gpu_or_was_not_asked() -> None:
    assert idle_gpu_notice(hw([RTX], devices=[CUDA0])) is None
    assert idle_gpu_notice(hw([RTX], devices=None)) is None  # no binary: nothing to compare with
    assert idle_gpu_notice(hw([], devices=[])) is None  # no GPU at all


def test_a_hand_written_gpu_is_named_and_an_amd_card_seen_by_the_os_too() -> None:
    file_gpu = GPU("RTX 4090", "CUDA", 24564, 24000, source="file")
    assert idle_gpu_notice(hw([file_gpu], devices=[]), "windows").startswith(
        "Your NVIDIA RTX 4090 is not used: this llama-server has no CUDA or Vulkan backend")
    amd = GPU("AMD Radeon GPU (card1)", "Vulkan", 24560, 24560, source="OS")
    assert idle_gpu_notice(hw(os_gpus=[amd], devices=[]), "linux").startswith(
        "Your AMD Radeon GPU (card1) is not used: this llama-server has no ROCm or Vulkan backend")
    # pynvml and the OS both see the NVIDIA card: named once
    both = hw([RTX], devices=[], os_gpus=[GPU("NVIDIA GPU (card0)", "CUDA", 0, 0, source="OS")])
    assert "more GPU" not in idle_gpu_notice(both)


def test_every_card_the_os_lists_counts_unless_another_source_named_it() -> None:
    card0, card1 = (GPU(f"NVIDIA GPU (card{i})", "CUDA", 0, 0, source="OS") for i in (0, 1))
    # pynvml saw nothing (no driver library): the OS's two NVIDIA cards are two cards
    alone = idle_gpu_notice(hw(os_gpus=[card0, card1], devices=[]), "windows")
    assert alone is not None and alone.startswith("Your NVIDIA GPU (card0) (and 1 more GPU) is not used")
    # pynvml named one of them: the other is still one more
    one_named = idle_gpu_notice(hw([RTX], devices=[], os_gpus=[card0, card1]), "windows")
    assert one_named is not None and one_named.startswith("Your NVIDIA GeForce RTX 4090 (and 1 more GPU) is not used")
    # pynvml named both: the OS's view of them adds nothing (two cards, not four)
    both_named = idle_gpu_notice(hw([RTX, RTX], devices=[], os_gpus=[card0, card1]), "windows")
    assert both_named is not None and both_named.startswith("Your NVIDIA GeForce RTX 4090 (and 1 more GPU) is not used")


def test_apple_silicon_without_metal_is_named() -> None:
    m2 = GPU("Apple M2 GPU (Metal, unified memory)", "Metal", 16384, 12000, source="Apple")
    metal = GPU("Apple M2", "Metal", 12000, 11000, source="llama-server --list-devices")
    assert idle_gpu_notice(hw([m2], devices=[metal], apple=True)) is None
    notice = idle_gpu_notice(hw([m2], devices=[], apple=True), "macos")
    assert notice is not None and "has no Metal backend" in notice


def test_the_binary_device_list_beats_a_hand_written_gpu_in_the_plan() -> None:
    file_hw = Hardware.from_dict({"cpu": "x", "ram_total_mib": 65536, "ram_available_mib": 60000,
                                  "apple_silicon": False, "backend_devices": [],
                                  "gpus": [{"name": "RTX 4090", "memory_total_mib": 24564}]})
    caps = capabilities_from_help("/bin/llama-server", (HELP_DIR / "b11434-current.help.txt").read_text(),
                                  (HELP_DIR / "b11434-current.version.txt").read_text())
    model = ModelInfo(path="/models/m.gguf", name="m", file_name="m.gguf", folder="/models", file_size=5_000_000_000,
                      architecture="llama", parameters=9_000_000_000, trunk_parameters=9_000_000_000,
                      context_length=8192, block_count=32,
                      arch_meta={"embedding_length": 4096, "attention.head_count": 32, "attention.head_count_kv": 8})
    plan = plan_launch("/bin/llama-server", model, file_hw, caps, PlanSettings(port=8080))
    assert not plan.gpu_branch and plan.gpu_reason == "llama-server reports no GPU it can use"
    assert any(w.startswith("Your NVIDIA RTX 4090 is not used") for w in plan.warnings)


def test_nvidia_smi_windows_and_sysfs_views_parse(tmp_path: Path) -> None:
    gpus, cuda = parse_nvidia_smi("NVIDIA GeForce RTX 4090, 8.9, 24564\nNVIDIA T400, [N/A], 2048\n",
                                  "| NVIDIA-SMI 572.16   Driver Version: 572.16   CUDA Version: 12.8 |")
    assert gpus == [NvidiaGpu("NVIDIA GeForce RTX 4090", (8, 9), 24564), NvidiaGpu("NVIDIA T400", None, 2048)]
    assert cuda == (12, 8) and cuda_version_from_int(13000) == (13, 0) and cuda_version_from_int(0) is None
    win = [windows_adapter("NVIDIA GeForce RTX 4090", 25_757_220_864), windows_adapter("Intel(R) UHD Graphics 770", None),
           windows_adapter("AMD Radeon RX 7900 XTX", 25_753_026_560), windows_adapter("AMD Radeon(TM) Graphics", 0)]
    assert [(a.vendor, a.discrete, a.memory_mib) for a in win] == [
        ("NVIDIA", True, 24564), ("Intel", False, 0), ("AMD", True, 24560), ("AMD", False, 0)]
    for card, vendor, vram in (("card0", "0x8086", None), ("card1", "0x1002", str(24 * 1024**3))):
        dev = tmp_path / card / "device"
        dev.mkdir(parents=True)
        (dev / "vendor").write_text(vendor + "\n")
        if vram:
            (dev / "mem_info_vram_total").write_text(vram)
    (tmp_path / "renderD128").mkdir()
    found = linux_adapters(tmp_path)
    assert [(a.vendor, a.discrete, a.memory_mib) for a in found] == [("Intel", False, 0), ("AMD", True, 24576)]
    inv = GpuInventory(nvidia=[NvidiaGpu("NVIDIA GeForce RTX 4090")], adapters=win)
    assert inv.discrete_names() == ["NVIDIA GeForce RTX 4090", "AMD Radeon RX 7900 XTX"]
