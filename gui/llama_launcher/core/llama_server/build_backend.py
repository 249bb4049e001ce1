"""Which GPU backend a source build of llama-server gets: CUDA, Vulkan, Metal or none (CPU).

The choice comes from what is installed *and* what is present: ``nvcc`` alone is not enough
(a CUDA build on a machine without an NVIDIA GPU and driver cannot even start), so CUDA needs
nvcc and an NVIDIA GPU; Vulkan needs ``glslc`` (the Vulkan SDK's shader compiler) and a Vulkan
loader; Metal is llama.cpp's default on macOS. ``--backend`` overrides, with a clear reason when
the tools for it are missing. :func:`choose_build_backend` is pure; :func:`find_build_tools`
looks at this machine.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from llama_launcher.core.host.backends import Backend
from llama_launcher.core.host.gpus import NvidiaGpu, vulkan_loader_present
from llama_launcher.core.state.errors import UserFacing

BACKENDS = (Backend.CPU, Backend.CUDA, Backend.VULKAN, Backend.METAL)  # what get-server builds from source (and downloads)
DOWNLOAD_BACKENDS = BACKENDS + (Backend.ROCM,)  # llama.cpp publishes ROCm builds; a source build with it is not offered
# compiled when no GPU tells us its architecture (an explicit --backend cuda on a build machine):
# PTX for Turing (JIT-compiled on anything newer) plus native code for the common desktop and
# data-centre cards; CUDA 13 no longer compiles for anything older than Turing.
PORTABLE_CUDA_ARCHS = "75-virtual;80-real;86-real;89-real;90-real"
_OFF = ["-DGGML_CUDA=OFF", "-DGGML_VULKAN=OFF"]


class BackendError(UserFacing, ValueError):
    """The backend asked for cannot be built here; one line saying what to install."""


@dataclass(frozen=True)
class BuildTools:
    nvcc: str | None = None
    glslc: str | None = None
    vulkan_loader: bool = False


@dataclass(frozen=True)
class BackendChoice:
    backend: Backend
    cmake_flags: list[str] = field(default_factory=list)
    reason: str = ""


CPU_ONLY = BackendChoice(Backend.CPU, list(_OFF), "CPU only")  # a build when no backend was chosen


def _nvcc(env: dict[str, str]) -> str | None:
    found = shutil.which("nvcc", path=env.get("PATH", ""))
    if found:
        return found
    names = ["nvcc.exe"] if sys.platform == "win32" else ["nvcc"]
    roots = [env.get("CUDA_PATH", ""), env.get("CUDA_HOME", ""), "/usr/local/cuda", "/opt/cuda"]
    for root in filter(None, roots):
        for name in names:
            p = Path(root) / "bin" / name
            if p.is_file():
                return str(p)
    return None


def _glslc(env: dict[str, str]) -> str | None:
    found = shutil.which("glslc", path=env.get("PATH", ""))
    if found:
        return found
    sdk = env.get("VULKAN_SDK")
    if sdk:
        for name in ("glslc", "glslc.exe"):
            for sub in ("bin", "Bin"):
                p = Path(sdk) / sub / name
                if p.is_file():
                    return str(p)
    return None


def find_build_tools(env: dict[str, str] | None = None) -> BuildTools:
    env = dict(os.environ) if env is None else env
    return BuildTools(nvcc=_nvcc(env), glslc=_glslc(env), vulkan_loader=vulkan_loader_present())


def cuda_flags(nvcc: str, gpus: list[NvidiaGpu]) -> tuple[list[str], str]:
    """CMake flags for the NVIDIA GPUs present (``-DCMAKE_CUDA_ARCHITECTURES=89;90``) and words for them."""
    flags = ["-DGGML_CUDA=ON", "-DGGML_VULKAN=OFF", f"-DCMAKE_CUDA_COMPILER={nvcc}"]
    archs = sorted({g.sm for g in gpus if g.sm}, key=int)
    if gpus and all(g.sm for g in gpus):
        flags.append(f"-DCMAKE_CUDA_ARCHITECTURES={';'.join(archs)}")
        what = "sm_" + ", sm_".join(archs)
    elif gpus:
        what = "the GPUs' own architectures (detected by the CUDA compiler)"
        flags.append("-DCMAKE_CUDA_ARCHITECTURES=native")
    else:
        flags.append(f"-DCMAKE_CUDA_ARCHITECTURES={PORTABLE_CUDA_ARCHS}")
        what = "Turing and newer (no GPU here to ask)"
    return flags, what


def choose_build_backend(os_name: str, tools: BuildTools, nvidia: list[NvidiaGpu],
                         requested: str | None = None) -> BackendChoice:
    """The backend for a source build on ``os_name`` ("windows", "macos", "linux")."""
    if requested == "rocm":
        raise BackendError("a source build with ROCm is not offered; llama.cpp publishes ROCm builds for Windows "
                           "and Linux x64: 'llama-launcher get-server --download --backend rocm'")
    if requested is not None and requested not in BACKENDS:
        raise BackendError(f"unknown backend {requested!r} (choose from {', '.join(BACKENDS)})")
    names = ", ".join(g.name + (f" (compute {g.compute_capability[0]}.{g.compute_capability[1]})"
                                if g.compute_capability else "") for g in nvidia)
    if requested == "metal" or (requested is None and os_name == "macos"):
        if os_name != "macos":
            raise BackendError("Metal exists only on macOS")
        return BackendChoice(Backend.METAL, ["-DGGML_METAL=ON"],
                             "macOS: Metal is llama.cpp's default there" if requested is None else "you asked for Metal")
    off_metal = ["-DGGML_METAL=OFF"] if os_name == "macos" else []
    if requested == "cpu":
        return BackendChoice(Backend.CPU, _OFF + off_metal, "you asked for a CPU-only build")
    if requested == "cuda":
        if not tools.nvcc:
            raise BackendError("a CUDA build needs the CUDA toolkit's nvcc, which was not found (install the CUDA "
                               "toolkit, or set CUDA_PATH)")
        flags, what = cuda_flags(tools.nvcc, nvidia)
        return BackendChoice(Backend.CUDA, flags + off_metal, f"you asked for CUDA: nvcc at {tools.nvcc}, built for {what}")
    if requested == "vulkan":
        if not tools.glslc:
            raise BackendError("a Vulkan build needs the Vulkan SDK's glslc, which was not found (install the "
                               "Vulkan SDK, or your distribution's glslc and libvulkan-dev)")
        return BackendChoice(Backend.VULKAN, ["-DGGML_VULKAN=ON", "-DGGML_CUDA=OFF"] + off_metal,
                             f"you asked for Vulkan: glslc at {tools.glslc}")
    # automatic
    if tools.nvcc and nvidia:
        flags, what = cuda_flags(tools.nvcc, nvidia)
        return BackendChoice(Backend.CUDA, flags, f"CUDA: nvcc at {tools.nvcc} and {names}; built for {what}")
    skipped = []
    if tools.nvcc:
        skipped.append(f"nvcc is installed ({tools.nvcc}) but no NVIDIA GPU was found, so a CUDA build could not run here")
    elif nvidia:
        skipped.append(f"{names} found, but not the CUDA toolkit (nvcc) needed to build for it")
    if tools.glslc and tools.vulkan_loader:
        return BackendChoice(Backend.VULKAN, ["-DGGML_VULKAN=ON", "-DGGML_CUDA=OFF"],
                             "; ".join([f"Vulkan: glslc at {tools.glslc} and a Vulkan loader", *skipped]))
    if tools.glslc:
        skipped.append("glslc is installed but no Vulkan loader (libvulkan) was found")
    return BackendChoice(Backend.CPU, list(_OFF), "; ".join(["CPU only", *skipped]) if skipped else
                         "CPU only: no CUDA toolkit with an NVIDIA GPU, and no Vulkan SDK, was found")
