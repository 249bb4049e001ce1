"""Which of llama.cpp's official release assets fits this machine, read from GitHub's release API.

llama.cpp publishes one release per build (tag ``bNNNN``) with ready binaries: macOS arm64/x64
(``.tar.gz``; Metal built into arm64 only), Ubuntu CPU and Vulkan (``.tar.gz``), Windows CPU,
Vulkan and CUDA (``.zip``; CUDA comes with a separate ``cudart-...`` runtime archive), plus
builds the launcher does not pick (ROCm, SYCL, OpenVINO, HIP, Android, iOS). Releases before
b7956 used ``.zip`` everywhere. The repository's "latest" release can be a semver tag holding
no binaries at all, so the release *list* is read and the newest ``bNNNN`` with binaries wins.

Everything here is pure: the API answer, the platform and the GPU inventory go in, a
:class:`DownloadChoice` (the exact assets, the backend, the words for the button) comes out.
"""

from __future__ import annotations

import platform as _platform
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from llama_launcher.core.host.gpus import GpuInventory
from llama_launcher.core.llama_server.build_backend import BACKENDS

RELEASES_API = "https://api.github.com/repos/ggml-org/llama.cpp/releases?per_page=20"
CUDA13_MIN_CC = (7, 5)  # CUDA 13 dropped Maxwell, Pascal and Volta
_TAG = re.compile(r"^b(\d+)$")
_SHA256 = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


class CatalogError(ValueError):
    """The API answer cannot be used; one line."""


class NoAssetError(CatalogError):
    """The release has no build for this platform (or for the backend asked for); one line."""


@dataclass(frozen=True)
class ReleaseAsset:
    name: str
    url: str
    size: int
    digest: str | None = None  # "sha256:<hex>" in current API answers

    @property
    def sha256(self) -> str | None:
        m = _SHA256.match(self.digest or "")
        return m.group(1).lower() if m else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "size": self.size, "digest": self.digest}


@dataclass(frozen=True)
class Release:
    tag: str
    build: int
    assets: tuple[ReleaseAsset, ...]
    published_at: str = ""

    def find(self, pattern: str) -> list[tuple[re.Match[str], ReleaseAsset]]:
        rx = re.compile(pattern)
        return [(m, a) for a in self.assets if (m := rx.fullmatch(a.name))]


def _asset(obj: Any) -> ReleaseAsset | None:
    if not isinstance(obj, dict):
        return None
    name, url, size = obj.get("name"), obj.get("browser_download_url"), obj.get("size")
    if not isinstance(name, str) or not isinstance(url, str) or not isinstance(size, int) or isinstance(size, bool):
        return None
    if obj.get("state", "uploaded") != "uploaded" or size <= 0:
        return None
    digest = obj.get("digest")
    return ReleaseAsset(name, url, size, digest if isinstance(digest, str) else None)


def parse_release(obj: Any) -> Release | None:
    """One release object of the API; None when it is not a usable llama.cpp build."""
    if not isinstance(obj, dict) or obj.get("draft") or obj.get("prerelease"):
        return None
    tag = obj.get("tag_name")
    if not isinstance(tag, str) or not (m := _TAG.match(tag)):
        return None
    assets = tuple(a for a in map(_asset, obj.get("assets") or []) if a is not None)
    if not any(a.name.startswith(f"llama-{tag}-bin-") for a in assets):
        return None
    published = obj.get("published_at")
    return Release(tag, int(m.group(1)), assets, published if isinstance(published, str) else "")


def parse_releases(data: Any) -> Release:
    """The newest usable build in an API answer (the release list, or a single release)."""
    if isinstance(data, dict) and "tag_name" not in data and isinstance(data.get("message"), str):
        raise CatalogError(f"GitHub answered: {data['message']}")
    items = data if isinstance(data, list) else [data]
    releases = [r for r in map(parse_release, items) if r is not None]
    if not releases:
        raise CatalogError("the release list holds no llama.cpp build (a bNNNN tag with binaries)")
    return max(releases, key=lambda r: r.build)


@dataclass(frozen=True)
class Platform:
    os: str  # "windows", "macos", "linux" (or sys.platform for anything else)
    arch: str  # "x64", "arm64", or the machine name

    @classmethod
    def current(cls) -> Platform:
        os_name = "windows" if sys.platform == "win32" else "macos" if sys.platform == "darwin" else \
            "linux" if sys.platform.startswith("linux") else sys.platform
        machine = _platform.machine().lower()
        arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
        return cls(os_name, arch)

    @property
    def label(self) -> str:
        name = {"windows": "Windows", "macos": "macOS", "linux": "Linux"}.get(self.os, self.os)
        return f"{name} {self.arch}"


@dataclass
class DownloadChoice:
    release: Release
    backend: str
    assets: list[ReleaseAsset]  # the server first, then (CUDA on Windows) its runtime
    target: str  # what it is for, in words: "NVIDIA GeForce RTX 4090 (CUDA 12.4)"
    reason: str
    notes: list[str] = field(default_factory=list)

    @property
    def build(self) -> int:
        return self.release.build

    @property
    def total_size(self) -> int:
        return sum(a.size for a in self.assets)

    def button_text(self) -> str:
        return f"Download llama.cpp {self.release.tag} for {self.target}"

    def asset_text(self) -> str:
        return " + ".join(a.name for a in self.assets) + f" ({self.total_size / 1e6:,.0f} MB)"

    def to_dict(self) -> dict[str, Any]:
        return {"release": self.release.tag, "build": self.build, "backend": self.backend, "target": self.target,
                "reason": self.reason, "assets": [a.to_dict() for a in self.assets], "total_size": self.total_size,
                "notes": list(self.notes)}


def _cpu_target(cpu: str, plat: Platform) -> str:
    name = re.sub(r"\((R|TM|tm|r)\)|\s+CPU\b|\s+@.*$", "", cpu).strip()
    name = re.sub(r"\s{2,}", " ", name)
    return f"{name} (CPU)" if name else f"the CPU ({plat.label})"


def _cuda_builds(rel: Release, arch: str) -> list[tuple[tuple[int, int], ReleaseAsset, ReleaseAsset]]:
    """(CUDA version, server zip, runtime zip) for each CUDA build that has its runtime, newest first."""
    out = []
    for m, server in rel.find(rf"llama-{rel.tag}-bin-win-cuda-(\d+)\.(\d+)-{arch}\.zip"):
        ver = (int(m.group(1)), int(m.group(2)))
        runtime = rel.find(rf"cudart-llama-bin-win-cuda-{ver[0]}\.{ver[1]}-{arch}\.zip")
        if runtime:
            out.append((ver, server, runtime[0][1]))
    return sorted(out, key=lambda t: t[0], reverse=True)


def _pick_cuda(builds: list[tuple[tuple[int, int], ReleaseAsset, ReleaseAsset]], inv: GpuInventory
               ) -> tuple[tuple[tuple[int, int], ReleaseAsset, ReleaseAsset] | None, str]:
    """The newest CUDA build this driver and these cards can run, or why none can."""
    if not builds:
        return None, "this release has no CUDA build"
    if inv.cuda_driver is None:
        return None, "the NVIDIA driver's CUDA version could not be read"
    known = [g.compute_capability for g in inv.nvidia if g.compute_capability]
    oldest = min(known) if known else None
    for build in builds:
        ver = build[0]
        if ver[0] > inv.cuda_driver[0]:
            continue  # a newer CUDA major than the driver knows: the runtime refuses to start
        if ver[0] >= 13 and oldest is not None and oldest < CUDA13_MIN_CC:
            continue
        return build, ""
    need = min(b[0] for b in builds)
    return None, (f"the NVIDIA driver supports CUDA {inv.cuda_driver[0]}.{inv.cuda_driver[1]}, older than this "
                  f"release's CUDA {need[0]}.{need[1]} build: update the NVIDIA driver")


def _archive(rel: Release, stem: str) -> ReleaseAsset | None:
    hits = rel.find(rf"llama-{rel.tag}-bin-{re.escape(stem)}\.(tar\.gz|zip)")
    hits.sort(key=lambda h: 0 if h[1].name.endswith(".tar.gz") else 1)
    return hits[0][1] if hits else None


def choose_download(rel: Release, plat: Platform, inv: GpuInventory, backend: str | None = None,
                    cpu: str = "") -> DownloadChoice:
    """The release assets for this platform and GPU (or for ``backend``). Raises :class:`NoAssetError`."""
    if backend is not None and backend not in BACKENDS:
        raise NoAssetError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    gpu_names = inv.discrete_names()
    nvidia = inv.nvidia[0].name if inv.nvidia else None
    none_for = f"llama.cpp {rel.tag} has no build for {plat.label}"
    if plat.os == "macos":
        if backend not in (None, "metal", "cpu") or (backend == "metal" and plat.arch != "arm64"):
            raise NoAssetError(f"llama.cpp's macOS {plat.arch} release has no {backend} backend")
        asset = _archive(rel, f"macos-{plat.arch}")
        if asset is None:
            raise NoAssetError(none_for)
        if plat.arch == "arm64":
            return DownloadChoice(rel, "metal", [asset], "Apple Silicon (Metal)",
                                  "macOS arm64: the release build has Metal built in")
        return DownloadChoice(rel, "cpu", [asset], _cpu_target(cpu, plat),
                              "macOS x64: the release build runs on the CPU (it is built without Metal)")
    if plat.os == "linux":
        if backend in ("cuda", "metal"):
            raise NoAssetError(f"llama.cpp publishes no {backend.upper() if backend == 'cuda' else 'Metal'} build "
                               "for Linux: build one with 'llama-launcher get-server --build"
                               + (" --backend cuda'" if backend == "cuda" else "'"))
        vulkan = _archive(rel, f"ubuntu-vulkan-{plat.arch}")
        cpu_build = _archive(rel, f"ubuntu-{plat.arch}")
        want_vulkan = backend == "vulkan" or (backend is None and inv.vulkan_loader and bool(gpu_names))
        if want_vulkan and vulkan is not None:
            why = "a GPU and the Vulkan loader are present" if backend is None else "you asked for Vulkan"
            choice = DownloadChoice(rel, "vulkan", [vulkan], f"{gpu_names[0] if gpu_names else 'your GPU'} (Vulkan)",
                                    f"Linux: {why}")
            if nvidia:
                choice.notes.append("llama.cpp publishes no CUDA build for Linux; for CUDA build one with "
                                    "'llama-launcher get-server --build --backend cuda'")
            return choice
        if backend == "vulkan":
            raise NoAssetError(f"llama.cpp {rel.tag} has no Vulkan build for {plat.label}")
        if cpu_build is None:
            raise NoAssetError(none_for + ": build one from source ('llama-launcher get-server --build')")
        why = "no GPU was found" if not gpu_names else \
            "no Vulkan loader is installed (install your distribution's libvulkan1 / vulkan-loader for the GPU build)"
        return DownloadChoice(rel, "cpu", [cpu_build], _cpu_target(cpu, plat), f"Linux: {why}")
    if plat.os == "windows":
        if backend == "metal":
            raise NoAssetError("Metal exists only on macOS")
        notes: list[str] = []
        if backend in (None, "cuda"):
            builds = _cuda_builds(rel, plat.arch)
            if backend == "cuda" and not inv.nvidia:
                picked = builds[0] if builds else None
                why = "" if builds else "this release has no CUDA build"
            elif inv.nvidia:
                picked, why = _pick_cuda(builds, inv)
            else:
                picked, why = None, ""
            if picked is not None:
                (major, minor), server, runtime = picked
                reason = (f"NVIDIA driver {inv.driver_version or '?'} supports CUDA "
                          f"{inv.cuda_driver[0]}.{inv.cuda_driver[1]}" if inv.cuda_driver else "you asked for CUDA")
                return DownloadChoice(rel, "cuda", [server, runtime], f"{nvidia or 'NVIDIA GPUs'} (CUDA {major}.{minor})",
                                      f"Windows: {reason}")
            if backend == "cuda":
                raise NoAssetError(f"no CUDA build of llama.cpp {rel.tag} fits this machine: {why}")
            if why:
                notes.append(f"CUDA build not used: {why}")
        vulkan = _archive(rel, f"win-vulkan-{plat.arch}")
        want_vulkan = backend == "vulkan" or (backend is None and (inv.vulkan_loader or bool(gpu_names)))
        if want_vulkan and vulkan is not None:
            choice = DownloadChoice(rel, "vulkan", [vulkan], f"{gpu_names[0] if gpu_names else 'your GPU'} (Vulkan)",
                                    "Windows: " + ("you asked for Vulkan" if backend else "a Vulkan driver is installed"),
                                    notes)
            return choice
        if backend == "vulkan":
            raise NoAssetError(f"llama.cpp {rel.tag} has no Vulkan build for {plat.label}")
        cpu_build = _archive(rel, f"win-cpu-{plat.arch}")
        if cpu_build is None:
            raise NoAssetError(none_for)
        return DownloadChoice(rel, "cpu", [cpu_build], _cpu_target(cpu, plat),
                              "Windows: " + ("no GPU the release builds can use was found" if backend is None
                                             else "you asked for the CPU build"), notes)
    raise NoAssetError(none_for + ": build one from source ('llama-launcher get-server --build')")


# --- what to offer a user who already has a llama-server --------------------------------------

def missing_features(caps: Any) -> list[str]:
    """What an older binary lacks that the launcher uses (from its probed capabilities)."""
    out = []
    if not caps.speculative:
        out.append("speculative decoding (--spec-type)")
    else:
        if not caps.mtp_token:
            out.append("draft-mtp")
        if caps.ngram_mod_flavor is None:
            out.append("ngram-mod")
    if not caps.has_fit:
        out.append("--fit")
    return out


def update_offer(caps: Any | None, choice: DownloadChoice | None, gpu_idle: bool = False) -> str | None:
    """The sentence above the download button when a llama-server is already in use (None: no offer)."""
    if choice is None or caps is None:
        return None
    current = caps.build_number
    if current is None or current < choice.build:
        lacks = missing_features(caps)
        yours = f"b{current}" if current is not None else "of unknown build"
        return (f"A newer llama.cpp is available: {choice.release.tag}; your build ({yours}) lacks "
                + ", ".join(lacks) + "." if lacks else
                f"A newer llama.cpp is available: {choice.release.tag} (yours is {yours}).")
    if gpu_idle and choice.backend in ("cuda", "vulkan", "metal"):
        return f"This llama-server does not use your GPU; the {choice.release.tag} release for {choice.target} does."
    return None
