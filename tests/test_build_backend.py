"""The GPU backend of a source build, as a pure function of (platform, tools found, GPUs found)."""

from __future__ import annotations

import pytest

from llama_launcher.core.host.gpus import NvidiaGpu
from llama_launcher.core.llama_server.build_backend import (
    PORTABLE_CUDA_ARCHS,
    BackendError,
    BuildTools,
    choose_build_backend,
    find_build_tools,
)

NVCC = "/usr/local/cuda/bin/nvcc"
H100 = NvidiaGpu("NVIDIA H100 80GB HBM3", (9, 0), 81079)
RTX4090 = NvidiaGpu("NVIDIA GeForce RTX 4090", (8, 9), 24564)
RTX3090 = NvidiaGpu("NVIDIA GeForce RTX 3090", (8, 6), 24576)
NO_TOOLS = BuildTools()


def flag(choice, name: str) -> str | None:
    hits = [f.split("=", 1)[1] for f in choice.cmake_flags if f.startswith(name + "=")]
    return hits[0] if hits else None


def test_nvcc_without_an_nvidia_gpu_builds_for_the_cpu() -> None:
    # this very machine: nvcc installed, no NVIDIA GPU or driver; a CUDA build could not run here
    c = choose_build_backend("linux", BuildTools(nvcc=NVCC), [])
    assert c.backend == "cpu" and flag(c, "-DGGML_CUDA") == "OFF"
    assert "no NVIDIA GPU was found" in c.reason


def test_nvcc_and_an_nvidia_gpu_build_cuda_for_that_gpu() -> None:
    c = choose_build_backend("linux", BuildTools(nvcc=NVCC), [H100])
    assert c.backend == "cuda" and flag(c, "-DGGML_CUDA") == "ON"
    assert flag(c, "-DCMAKE_CUDA_ARCHITECTURES") == "90" and flag(c, "-DCMAKE_CUDA_COMPILER") == NVCC
    assert "NVIDIA H100 80GB HBM3 (compute 9.0)" in c.reason and "sm_90" in c.reason
    two = choose_build_backend("windows", BuildTools(nvcc=NVCC), [RTX4090, RTX3090])
    assert flag(two, "-DCMAKE_CUDA_ARCHITECTURES") == "86;89"
    unknown = choose_build_backend("linux", BuildTools(nvcc=NVCC), [NvidiaGpu("NVIDIA A2")])
    assert flag(unknown, "-DCMAKE_CUDA_ARCHITECTURES") == "native"


def test_vulkan_needs_glslc_and_a_loader() -> None:
    c = choose_build_backend("linux", BuildTools(glslc="/usr/bin/glslc", vulkan_loader=True), [])
    assert c.backend == "vulkan" and flag(c, "-DGGML_VULKAN") == "ON"
    no_loader = choose_build_backend("linux", BuildTools(glslc="/usr/bin/glslc"), [])
    assert no_loader.backend == "cpu" and "no Vulkan loader" in no_loader.reason
    # an NVIDIA card without the CUDA toolkit, but with the Vulkan SDK: Vulkan, saying why not CUDA
    c = choose_build_backend("windows", BuildTools(glslc="C:/VulkanSDK/Bin/glslc.exe", vulkan_loader=True), [RTX4090])
    assert c.backend == "vulkan" and "not the CUDA toolkit" in c.reason


def test_macos_builds_metal_by_default() -> None:
    c = choose_build_backend("macos", BuildTools(nvcc=NVCC), [])
    assert c.backend == "metal" and "-DGGML_METAL=ON" in c.cmake_flags
    cpu = choose_build_backend("macos", NO_TOOLS, [], "cpu")
    assert cpu.backend == "cpu" and "-DGGML_METAL=OFF" in cpu.cmake_flags


def test_nothing_found_is_a_cpu_build() -> None:
    c = choose_build_backend("linux", NO_TOOLS, [])
    assert c.backend == "cpu" and c.reason.startswith("CPU only")
    assert choose_build_backend("windows", NO_TOOLS, [RTX4090]).backend == "cpu"


def test_the_override_wins_or_says_what_to_install() -> None:
    c = choose_build_backend("linux", BuildTools(nvcc=NVCC), [], "cuda")  # a build machine without a GPU
    assert c.backend == "cuda" and flag(c, "-DCMAKE_CUDA_ARCHITECTURES") == PORTABLE_CUDA_ARCHS
    assert choose_build_backend("linux", BuildTools(nvcc=NVCC), [H100], "cpu").backend == "cpu"
    for os_name, tools, backend, message in [
        ("linux", NO_TOOLS, "cuda", "needs the CUDA toolkit's nvcc"),
        ("windows", NO_TOOLS, "vulkan", "needs the Vulkan SDK's glslc"),
        ("linux", NO_TOOLS, "metal", "Metal exists only on macOS"),
        ("linux", NO_TOOLS, "rocm", "a source build with ROCm is not offered; llama.cpp publishes ROCm builds"),
        ("linux", NO_TOOLS, "opencl", "unknown backend 'opencl'"),
    ]:
        with pytest.raises(BackendError, match=message):
            choose_build_backend(os_name, tools, [], backend)


def test_find_build_tools_looks_in_cuda_path_as_well(tmp_path) -> None:
    cuda = tmp_path / "cuda"
    (cuda / "bin").mkdir(parents=True)
    nvcc = cuda / "bin" / "nvcc"
    nvcc.write_text("")
    tools = find_build_tools({"PATH": str(tmp_path / "empty"), "CUDA_PATH": str(cuda)})
    assert tools.nvcc == str(nvcc) and tools.glslc is None
    sdk = tmp_path / "sdk"
    (sdk / "bin").mkdir(parents=True)
    (sdk / "bin" / "glslc").write_text("")
    assert find_build_tools({"PATH": "", "VULKAN_SDK": str(sdk)}).glslc == str(sdk / "bin" / "glslc")
