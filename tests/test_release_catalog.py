"""Choosing llama.cpp's release asset from the recorded API answer, for every platform and GPU."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from llama_launcher.core.host.gpus import Adapter, GpuInventory, NvidiaGpu
from llama_launcher.core.llama_server.probe import capabilities_from_help
from llama_launcher.core.llama_server.releases import (
    CatalogError,
    NoAssetError,
    Platform,
    choose_download,
    parse_releases,
    update_offer,
)

from release_server import recorded_answer

HELP = Path(__file__).parent / "fixtures" / "help"
WIN, WIN_ARM = Platform("windows", "x64"), Platform("windows", "arm64")
MAC_ARM, MAC_X64 = Platform("macos", "arm64"), Platform("macos", "x64")
LINUX, LINUX_ARM = Platform("linux", "x64"), Platform("linux", "arm64")
RTX4090 = NvidiaGpu("NVIDIA GeForce RTX 4090", (8, 9), 24564)
GTX1080 = NvidiaGpu("NVIDIA GeForce GTX 1080", (6, 1), 8192)


def release():
    return parse_releases(recorded_answer())


def names(choice) -> list[str]:
    return [a.name for a in choice.assets]


def nvidia(*gpus: NvidiaGpu, cuda: tuple[int, int] | None, vulkan: bool = True) -> GpuInventory:
    return GpuInventory(nvidia=list(gpus), cuda_driver=cuda, driver_version="572.16", vulkan_loader=vulkan)


def test_the_newest_build_wins_and_the_semver_pointer_release_is_skipped() -> None:
    rel = release()
    assert rel.tag == "b11434" and rel.build == 11434
    cudart = next(a for a in rel.assets if a.name == "cudart-llama-bin-win-cuda-12.4-x64.zip")
    assert cudart.size == 391_443_627
    assert cudart.sha256 == "8c79a9b226de4b3cacfd1f83d24f962d0773be79f1e7b75c6af4ded7e32ae1d6"


def test_an_answer_without_builds_or_an_error_answer_is_one_clear_line() -> None:
    with pytest.raises(CatalogError, match="holds no llama.cpp build"):
        parse_releases(recorded_answer()[:1])  # only the v0.4.1 pointer release
    with pytest.raises(CatalogError, match="GitHub answered: API rate limit exceeded"):
        parse_releases({"message": "API rate limit exceeded for 203.0.113.7.", "documentation_url": "x"})
    drafts = copy.deepcopy(recorded_answer())
    for r in drafts:
        r["draft"] = True
    with pytest.raises(CatalogError):
        parse_releases(drafts)


@pytest.mark.parametrize("plat,inv,backend,assets,target", [
    (WIN, nvidia(RTX4090, cuda=(12, 8)), "cuda",
     ["llama-b11434-bin-win-cuda-12.4-x64.zip", "cudart-llama-bin-win-cuda-12.4-x64.zip"],
     "NVIDIA GeForce RTX 4090 (CUDA 12.4)"),
    (WIN, nvidia(RTX4090, cuda=(13, 0)), "cuda",
     ["llama-b11434-bin-win-cuda-13.3-x64.zip", "cudart-llama-bin-win-cuda-13.3-x64.zip"],
     "NVIDIA GeForce RTX 4090 (CUDA 13.3)"),
    # CUDA 13 dropped Pascal: a GTX 1080 on a new driver gets the CUDA 12.4 build
    (WIN, nvidia(GTX1080, cuda=(13, 0)), "cuda",
     ["llama-b11434-bin-win-cuda-12.4-x64.zip", "cudart-llama-bin-win-cuda-12.4-x64.zip"],
     "NVIDIA GeForce GTX 1080 (CUDA 12.4)"),
    # a driver too old for any CUDA build: Vulkan drives the card
    (WIN, nvidia(RTX4090, cuda=(11, 8)), "vulkan", ["llama-b11434-bin-win-vulkan-x64.zip"],
     "NVIDIA GeForce RTX 4090 (Vulkan)"),
    (WIN, GpuInventory(adapters=[Adapter("AMD", "AMD Radeon RX 7900 XTX", True, 24560)], vulkan_loader=True),
     "vulkan", ["llama-b11434-bin-win-vulkan-x64.zip"], "AMD Radeon RX 7900 XTX (Vulkan)"),
    (WIN, GpuInventory(), "cpu", ["llama-b11434-bin-win-cpu-x64.zip"], "the CPU (Windows x64)"),
    (WIN_ARM, nvidia(RTX4090, cuda=(12, 8)), "cpu", ["llama-b11434-bin-win-cpu-arm64.zip"],
     "the CPU (Windows arm64)"),
    (MAC_ARM, GpuInventory(), "metal", ["llama-b11434-bin-macos-arm64.tar.gz"], "Apple Silicon (Metal)"),
    (MAC_X64, GpuInventory(), "cpu", ["llama-b11434-bin-macos-x64.tar.gz"], "the CPU (macOS x64)"),
    (LINUX, GpuInventory(), "cpu", ["llama-b11434-bin-ubuntu-x64.tar.gz"], "the CPU (Linux x64)"),
    (LINUX, nvidia(RTX4090, cuda=(12, 8)), "vulkan", ["llama-b11434-bin-ubuntu-vulkan-x64.tar.gz"],
     "NVIDIA GeForce RTX 4090 (Vulkan)"),
    (LINUX_ARM, GpuInventory(), "cpu", ["llama-b11434-bin-ubuntu-arm64.tar.gz"], "the CPU (Linux arm64)"),
])
def test_the_asset_for_each_platform_and_gpu(plat, inv, backend, assets, target) -> None:
    choice = choose_download(release(), plat, inv)
    assert (choice.backend, names(choice), choice.target) == (backend, assets, target)
    assert choice.button_text() == f"Download llama.cpp b11434 for {target}"
    assert choice.asset_text().startswith(" + ".join(assets) + " (")


def test_the_button_names_this_cpu() -> None:
    choice = choose_download(release(), LINUX, GpuInventory(), cpu="Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.0GHz")
    assert choice.button_text() == "Download llama.cpp b11434 for Intel Xeon Platinum 8480+ (CPU)"


def test_reasons_and_notes_say_why() -> None:
    old_driver = choose_download(release(), WIN, nvidia(RTX4090, cuda=(11, 8)))
    assert any("update the NVIDIA driver" in n for n in old_driver.notes)
    linux_nvidia = choose_download(release(), LINUX, nvidia(RTX4090, cuda=(12, 8)))
    assert any("no CUDA build for Linux" in n and "--backend cuda" in n for n in linux_nvidia.notes)
    no_loader = choose_download(release(), LINUX, nvidia(RTX4090, cuda=(12, 8), vulkan=False))
    assert no_loader.backend == "cpu" and "no Vulkan loader" in no_loader.reason


def test_a_cuda_build_without_its_runtime_archive_is_never_offered() -> None:
    answer = copy.deepcopy(recorded_answer())
    rel = answer[1]
    rel["assets"] = [a for a in rel["assets"] if not a["name"].startswith("cudart-")]
    choice = choose_download(parse_releases(answer), WIN, nvidia(RTX4090, cuda=(12, 8)))
    assert choice.backend == "vulkan"


def test_matching_is_exact_not_a_substring() -> None:
    # "ubuntu-x64" is inside "ubuntu-openvino-2026.0-x64" and "ubuntu-rocm-7.2-x64"; without the plain
    # CPU asset, nothing else may be taken for it
    answer = copy.deepcopy(recorded_answer())
    answer[1]["assets"] = [a for a in answer[1]["assets"] if a["name"] != "llama-b11434-bin-ubuntu-x64.tar.gz"]
    with pytest.raises(NoAssetError, match="llama.cpp b11434 has no build for Linux x64"):
        choose_download(parse_releases(answer), LINUX, GpuInventory())


def test_older_zip_releases_still_work() -> None:
    old = [{"tag_name": "b7000", "draft": False, "prerelease": False, "assets": [
        {"name": "llama-b7000-bin-ubuntu-x64.zip", "browser_download_url": "https://x/u.zip", "size": 10,
         "state": "uploaded", "digest": None}]}]
    choice = choose_download(parse_releases(old), LINUX, GpuInventory())
    assert names(choice) == ["llama-b7000-bin-ubuntu-x64.zip"] and choice.assets[0].sha256 is None


@pytest.mark.parametrize("plat,backend,message", [
    (Platform("linux", "riscv64"), None, "has no build for Linux riscv64: build one from source"),
    (LINUX, "cuda", "no CUDA build for Linux: build one with 'llama-launcher get-server --build --backend cuda'"),
    (LINUX, "metal", "no Metal build for Linux"),
    (WIN, "metal", "Metal exists only on macOS"),
    (MAC_X64, "metal", "has no metal backend"),
    (WIN, "cuda", "no CUDA build of llama.cpp b11434 fits this machine"),
])
def test_no_asset_is_one_clear_line(plat, backend, message) -> None:
    inv = nvidia(RTX4090, cuda=(11, 0)) if backend == "cuda" and plat.os == "windows" else GpuInventory()
    with pytest.raises(NoAssetError) as err:
        choose_download(release(), plat, inv, backend)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_asking_for_a_backend_overrides_the_machine() -> None:
    assert choose_download(release(), WIN, GpuInventory(), "cuda").backend == "cuda"  # the newest CUDA build
    assert names(choose_download(release(), WIN, nvidia(RTX4090, cuda=(12, 8)), "cpu")) == \
        ["llama-b11434-bin-win-cpu-x64.zip"]
    assert choose_download(release(), LINUX, GpuInventory(), "vulkan").backend == "vulkan"


def caps(era: str):
    return capabilities_from_help("/x/llama-server", (HELP / f"{era}.help.txt").read_text(),
                                  (HELP / f"{era}.version.txt").read_text())


def test_update_offer_says_what_the_old_build_lacks() -> None:
    choice = choose_download(release(), LINUX, GpuInventory())
    assert update_offer(caps("b9093-post-rename"), choice) == \
        "A newer llama.cpp is available: b11434; your build (b9093) lacks draft-mtp."
    assert update_offer(caps("b5142-no-spec"), choice).startswith(
        "A newer llama.cpp is available: b11434; your build (b5142) lacks speculative decoding (--spec-type)")
    current = caps("b11434-current")
    assert update_offer(current, choice) is None  # same build, nothing to offer
    gpu_choice = choose_download(release(), WIN, nvidia(RTX4090, cuda=(12, 8)))
    assert update_offer(current, gpu_choice, gpu_idle=True) == (
        "This llama-server does not use your GPU; the b11434 release for NVIDIA GeForce RTX 4090 (CUDA 12.4) does.")
