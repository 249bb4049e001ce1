"""Which of llama.cpp's official release assets fits this machine, read from GitHub's release API.

llama.cpp publishes one release per build (tag ``bNNNN``), and every one of them is a GitHub
*pre-release* (``release-publish.yml``, step "Create release": ``prerelease: true``), so pre-releases
are read; only drafts and releases without binaries are skipped. The repository's "latest" release
can be a semver tag holding no binaries at all, so the release *list* is read, and the newest build
that has the best asset for this machine wins (a release still uploading its archives may lack it).
Which archive serves which machine is one table (``asset_table.py``).

Everything here is pure: the API answer, the platform and the GPU inventory go in, a
:class:`DownloadChoice` (the exact assets, the backend, why, the words for the button) comes out.
The answer is someone else's JSON: every field is checked for its type and bounds, and anything
unusable is skipped or one :class:`CatalogError` line, never a traceback.
"""

from __future__ import annotations

import platform as _platform
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from llama_launcher.core.host.gpus import GpuInventory
from llama_launcher.core.llama_server.asset_table import (
    ASSET_TABLE,
    CUDA_LINES,
    PREFERENCE,
    AssetKind,
    backends_for,
    cuda_needs,
    rows,
)
from llama_launcher.core.llama_server.build_backend import DOWNLOAD_BACKENDS
from llama_launcher.core.state.errors import UserFacing
from llama_launcher.core.state.safe_text import safe_text

__all__ = ["ASSET_TABLE", "CUDA_LINES", "CatalogError", "NoAssetError", "Platform", "Release", "ReleaseAsset",
           "DownloadChoice", "choose_download", "choose_newest", "parse_release", "parse_release_list",
           "parse_releases", "update_offer", "missing_features"]

RELEASES_API = "https://api.github.com/repos/ggml-org/llama.cpp/releases?per_page=20"
_TAG = re.compile(r"b(\d{1,9})")
_SHA256 = re.compile(r"sha256:([0-9a-fA-F]{64})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")  # a file name: no folder, no "..", no control codes
MAX_ASSETS = 1000
MAX_ASSET_BYTES = 64 * 1024**3
MAX_URL = 4096
NEWEST_CONSIDERED = 5  # releases looked at for this machine's best asset


class CatalogError(UserFacing, ValueError):
    """The API answer cannot be used; one line."""


class NoAssetError(CatalogError):
    """The release has no build for this platform (or for the backend asked for); one line."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    return {int: "a number", float: "a number", list: "a list", dict: "an object"}.get(type(value), "text")


@dataclass(frozen=True)
class ReleaseAsset:
    name: str
    url: str
    size: int
    digest: str | None = None  # "sha256:<hex>" in current API answers; None: none listed
    digest_problem: str | None = None  # a digest was listed but cannot be read: the asset is refused

    @property
    def sha256(self) -> str | None:
        m = _SHA256.fullmatch(self.digest or "")
        return m.group(1).lower() if m else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "size": self.size, "digest": self.digest}


def _digest(value: Any) -> tuple[str | None, str | None]:
    """(digest text, problem) for the ``digest`` field of an asset."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, f"the digest is {_kind(value)}, not text"
    text = safe_text(value, 100)
    if _SHA256.fullmatch(value):
        return value, None
    if value.lower().startswith("sha256:"):
        return text, f"{text!r} is not a well-formed SHA-256 digest"
    return text, f"{text!r} is not a SHA-256 digest"


@dataclass(frozen=True)
class Release:
    tag: str
    build: int
    assets: tuple[ReleaseAsset, ...]
    published_at: str = ""

    def find(self, pattern: re.Pattern[str]) -> list[tuple[re.Match[str], ReleaseAsset]]:
        return [(m, a) for a in self.assets if (m := pattern.fullmatch(a.name))]

    def named(self, name: str) -> ReleaseAsset | None:
        return next((a for a in self.assets if a.name == name), None)


def _asset(obj: Any) -> ReleaseAsset | None:
    if not isinstance(obj, dict):
        return None
    name, url, size = obj.get("name"), obj.get("browser_download_url"), obj.get("size")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or not isinstance(url, str) or len(url) > MAX_URL:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_ASSET_BYTES:
        return None
    if obj.get("state", "uploaded") != "uploaded":
        return None
    digest, problem = _digest(obj.get("digest"))
    return ReleaseAsset(name, url, size, digest, problem)


def parse_release(obj: Any) -> Release | None:
    """One release object of the API; None when it is not a usable llama.cpp build. Pre-releases are
    read (every llama.cpp build is one); a draft, or a draft flag that is not false, is not."""
    if not isinstance(obj, dict) or obj.get("draft") not in (False, None):
        return None
    tag = obj.get("tag_name")
    if not isinstance(tag, str) or not (m := _TAG.fullmatch(tag)):
        return None
    raw = obj.get("assets")
    if not isinstance(raw, list):
        return None
    assets = tuple(a for a in map(_asset, raw[:MAX_ASSETS]) if a is not None)
    if not any(a.name.startswith(f"llama-{tag}-bin-") for a in assets):
        return None
    published = obj.get("published_at")
    return Release(tag, int(m.group(1)), assets, published[:40] if isinstance(published, str) else "")


def parse_release_list(data: Any) -> list[Release]:
    """Every usable build in an API answer (the release list, or one release), newest first."""
    if isinstance(data, dict) and "tag_name" not in data and isinstance(data.get("message"), str):
        raise CatalogError(f"GitHub answered: {safe_text(data['message'], 200)}")
    items = data if isinstance(data, list) else [data]
    found: dict[int, Release] = {}
    for r in map(parse_release, items[:MAX_ASSETS]):
        if r is not None and r.build not in found:
            found[r.build] = r
    if not found:
        raise CatalogError("the release list holds no llama.cpp build (a bNNNN tag with binaries)")
    return sorted(found.values(), key=lambda r: r.build, reverse=True)


def parse_releases(data: Any) -> Release:
    """The newest usable build in an API answer."""
    return parse_release_list(data)[0]


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
    assets: list[ReleaseAsset]  # the server first, then (CUDA) its runtime
    target: str  # what it is for, in words: "NVIDIA GeForce RTX 4090 (CUDA 12.4)"
    reason: str
    notes: list[str] = field(default_factory=list)
    needs: str = ""  # what the machine needs for it, from the table
    roles: list[str] = field(default_factory=list)  # per asset, what it is

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
        roles = self.roles + [""] * (len(self.assets) - len(self.roles))
        return {"release": self.release.tag, "build": self.build, "backend": self.backend, "target": self.target,
                "reason": self.reason, "needs": self.needs,
                "assets": [{**a.to_dict(), "role": role} for a, role in zip(self.assets, roles, strict=True)],
                "total_size": self.total_size, "notes": list(self.notes)}


def _cpu_target(cpu: str, plat: Platform) -> str:
    name = re.sub(r"\((R|TM|tm|r)\)|\s+CPU\b|\s+@.*$", "", cpu).strip()
    name = re.sub(r"\s{2,}", " ", name)
    return f"{name} (CPU)" if name else f"the CPU ({plat.label})"


@dataclass(frozen=True)
class _Candidate:
    row: AssetKind
    server: ReleaseAsset
    runtime: ReleaseAsset | None
    ver: tuple[int, int] | None


def _candidates(rel: Release, plat: Platform, backend: str) -> list[_Candidate]:
    """The assets of ``rel`` for this backend, each with its runtime archive; newest version first."""
    out = []
    for row in rows(plat.os, plat.arch, backend):
        hits = rel.find(row.pattern(rel.tag, plat.arch))
        hits.sort(key=lambda h: 0 if h[1].name.endswith(".tar.gz") else 1)
        for m, server in hits:
            ver_text = m.groupdict().get("ver")
            ver = tuple(int(x) for x in ver_text.split(".")) if ver_text else None
            runtime = None
            runtime_name = row.runtime_name(rel.tag, plat.arch, ver_text or "")
            if runtime_name is not None:
                runtime = rel.named(runtime_name)
                if runtime is None:
                    continue  # a CUDA build without its runtime archive cannot start
            out.append(_Candidate(row, server, runtime, (ver[0], ver[1]) if ver else None))
    return sorted(out, key=lambda c: c.ver or (0, 0), reverse=True)


def _cuda_fits(c: _Candidate, inv: GpuInventory) -> str | None:
    """Why this CUDA build cannot run with this driver and these cards (None: it can)."""
    ver = c.ver or (0, 0)
    line = CUDA_LINES.get(ver[0])
    if inv.cuda_driver is None:
        return "the NVIDIA driver's CUDA version could not be read"
    if inv.cuda_driver < ver:
        return f"the CUDA {ver[0]}.{ver[1]} build needs {cuda_needs(ver)}"
    oldest = min((g.compute_capability for g in inv.nvidia if g.compute_capability), default=None)
    if line is not None and line.min_compute and oldest is not None and oldest < line.min_compute:
        return f"CUDA {ver[0]} no longer supports compute capability {oldest[0]}.{oldest[1]}"
    return None


def _choice(rel: Release, plat: Platform, c: _Candidate, target: str, reason: str, notes: list[str]) -> DownloadChoice:
    if c.row.backend == "cuda" and c.ver:
        needs = f"{c.row.serves} and {cuda_needs(c.ver)}"
        roles = [f"llama-server with its CUDA {c.ver[0]}.{c.ver[1]} backend",
                 f"the CUDA {c.ver[0]}.{c.ver[1]} runtime (cudart, cuBLAS), unpacked next to llama-server"]
    else:
        needs = c.row.serves
        roles = [f"llama-server with its {c.row.backend} backend" if c.row.backend != "cpu" else "llama-server (CPU)"]
    return DownloadChoice(rel, c.row.backend, [c.server] + ([c.runtime] if c.runtime else []), target,
                          f"{plat.label.split()[0]}: {reason}", list(notes), needs, roles)


def _gpu_name(inv: GpuInventory) -> str:
    names = inv.discrete_names()
    return names[0] if names else "your GPU"


def _choose_cuda(rel: Release, plat: Platform, inv: GpuInventory, asked: bool,
                 notes: list[str]) -> DownloadChoice | None:
    builds = _candidates(rel, plat, "cuda")
    nvidia = inv.nvidia[0].name if inv.nvidia else None
    if not inv.nvidia and asked and builds:
        c = builds[0]
        return _choice(rel, plat, c, f"NVIDIA GPUs (CUDA {c.ver[0]}.{c.ver[1]})" if c.ver else "NVIDIA GPUs",
                       "you asked for CUDA (no NVIDIA GPU was seen here)", notes)
    why = "" if builds else "this release has no CUDA build with its runtime for " + plat.label
    for c in builds:
        problem = _cuda_fits(c, inv)
        if problem is None:
            v = c.ver or (0, 0)
            drv = inv.cuda_driver or (0, 0)
            return _choice(rel, plat, c, f"{nvidia} (CUDA {v[0]}.{v[1]})",
                           f"NVIDIA driver {inv.driver_version or '?'} supports CUDA {drv[0]}.{drv[1]}", notes)
        why = why or problem
    if builds and inv.cuda_driver is not None and all(inv.cuda_driver < (c.ver or (0, 0)) for c in builds):
        need = min(c.ver or (0, 0) for c in builds)
        driver = f"the NVIDIA driver {inv.driver_version}" if inv.driver_version else "the NVIDIA driver"
        why = (f"{driver} supports CUDA {inv.cuda_driver[0]}.{inv.cuda_driver[1]}, older than this release's "
               f"CUDA {need[0]}.{need[1]} build, which needs {cuda_needs(need)}: update the NVIDIA driver")
    if asked:
        raise NoAssetError(f"no CUDA build of llama.cpp {rel.tag} fits this machine: {why}")
    if why and inv.nvidia:
        notes.append(f"CUDA build not used: {why}")
    return None


def choose_download(rel: Release, plat: Platform, inv: GpuInventory, backend: str | None = None,
                    cpu: str = "") -> DownloadChoice:
    """The release assets for this platform and GPU (or for ``backend``). Raises :class:`NoAssetError`."""
    if backend is not None and backend not in DOWNLOAD_BACKENDS:
        raise NoAssetError(f"unknown backend {backend!r} (choose from {', '.join(DOWNLOAD_BACKENDS)})")
    if backend == "metal" and plat.os != "macos":
        raise NoAssetError("Metal exists only on macOS")
    none_for = f"llama.cpp {rel.tag} has no build for {plat.label}"
    offered = backends_for(plat.os, plat.arch)
    if not offered:
        raise NoAssetError(none_for + ": build one from source ('llama-launcher get-server --build')")
    if backend is not None and backend not in offered:
        raise NoAssetError(f"llama.cpp's {plat.label} release has no {backend} backend")
    notes: list[str] = []
    if backend in (None, "cuda") and "cuda" in offered and (backend == "cuda" or inv.nvidia):
        choice = _choose_cuda(rel, plat, inv, backend == "cuda", notes)
        if choice is not None:
            return choice
    amd = [a for a in inv.adapters if a.vendor == "AMD" and a.discrete]
    rocm = _candidates(rel, plat, "rocm")
    if backend == "rocm":
        if not rocm:
            raise NoAssetError(f"llama.cpp {rel.tag} has no ROCm build for {plat.label}")
        return _choice(rel, plat, rocm[0], f"{amd[0].name if amd else 'AMD GPUs'} (ROCm)", "you asked for ROCm", notes)
    if amd and rocm and backend is None:
        notes.append(f"a ROCm build exists too ({rocm[0].server.name}); to try it: "
                     "'llama-launcher get-server --download --backend rocm'")
    gpu_seen = bool(inv.discrete_names())
    for kind in (k for k in PREFERENCE if k != "cuda"):
        if backend not in (None, kind) or kind not in offered:
            continue
        found = _candidates(rel, plat, kind)
        if kind == "vulkan":
            wanted = backend == "vulkan" or (inv.vulkan_loader and gpu_seen if plat.os == "linux"
                                             else inv.vulkan_loader or gpu_seen)
            if not wanted:
                continue
            if not found:
                if backend == "vulkan":
                    raise NoAssetError(f"llama.cpp {rel.tag} has no Vulkan build for {plat.label}")
                continue
            why = "you asked for Vulkan" if backend else \
                "a GPU and the Vulkan loader are present" if plat.os == "linux" else "a Vulkan driver is installed"
            return _choice(rel, plat, found[0], f"{_gpu_name(inv)} (Vulkan)", why, notes)
        if not found:
            raise NoAssetError(none_for + (": build one from source ('llama-launcher get-server --build')"
                                           if plat.os == "linux" else ""))
        if kind == "metal":
            return _choice(rel, plat, found[0], "Apple Silicon (Metal)", "the release build has Metal built in", notes)
        return _choice(rel, plat, found[0], _cpu_target(cpu, plat), _cpu_reason(plat, inv, backend), notes)
    raise NoAssetError(none_for)


def _cpu_reason(plat: Platform, inv: GpuInventory, backend: str | None) -> str:
    if backend == "cpu":
        return "you asked for the CPU build"
    if plat.os == "macos":
        return "the x64 release build runs on the CPU (it is built without Metal)"
    if plat.os == "linux" and inv.discrete_names() and not inv.vulkan_loader:
        return "no Vulkan loader is installed (install your distribution's libvulkan1 / vulkan-loader for the GPU build)"
    return "no GPU the release builds can use was found" if plat.os == "windows" else "no GPU was found"


_RANK = {b: i for i, b in enumerate(("cuda", "rocm", "metal", "vulkan", "cpu"))}


def choose_newest(releases: list[Release], plat: Platform, inv: GpuInventory, backend: str | None = None,
                  cpu: str = "") -> DownloadChoice:
    """The newest of the newest few releases that has the best asset for this machine (a release still
    uploading may lack it). Raises the newest release's :class:`NoAssetError` when none fits."""
    if not releases:
        raise CatalogError("the release list holds no llama.cpp build (a bNNNN tag with binaries)")
    choices: list[DownloadChoice] = []
    first_error: NoAssetError | None = None
    for rel in releases[:NEWEST_CONSIDERED]:
        try:
            choices.append(choose_download(rel, plat, inv, backend, cpu))
        except NoAssetError as exc:
            first_error = first_error or exc
    if not choices:
        assert first_error is not None
        raise first_error
    best = min(choices, key=lambda c: (_RANK.get(c.backend, 9), -c.build))
    newest = releases[0]
    if best.release.tag != newest.tag:
        best.notes.append(f"{newest.tag} is newer but lists no {best.backend} build for {plat.label} "
                          f"(yet); {best.release.tag} does")
    return best


# --- what to offer a user who already has a llama-server --------------------------------------

# The build from which llama.cpp has each feature the launcher uses (approximate, from the eras table in
# the shared llama-server reference: --spec-type from ~b7600, ngram-mod from ~b7900, draft-mtp from ~b9180).
FEATURE_SINCE = {"speculative decoding (--spec-type)": 7600, "ngram-mod": 7900, "draft-mtp": 9180}


def missing_features(caps: Any) -> list[str]:
    """What an older binary lacks that the launcher uses (from its probed capabilities)."""
    out = []
    if not caps.speculative:
        out += ["speculative decoding (--spec-type)", "ngram-mod", "draft-mtp"]
    else:
        if caps.ngram_mod_flavor is None:
            out.append("ngram-mod")
        if not caps.mtp_token:
            out.append("draft-mtp")
    if not caps.has_fit:
        out.append("--fit")
    return out


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def update_offer(caps: Any | None, choice: DownloadChoice | None, gpu_idle: bool = False) -> str | None:
    """The sentence above the download button when a llama-server is already in use (None: no offer):
    what the newer build would add, as far as it is known which build added it."""
    if choice is None or caps is None:
        return None
    current = caps.build_number
    if current is None or current < choice.build:
        yours = f"b{current}" if current is not None else "build"
        lacks = missing_features(caps)
        gains = [f for f in lacks if f in FEATURE_SINCE and choice.build >= FEATURE_SINCE[f]]
        head = f"A newer llama.cpp is available: {choice.release.tag}"
        if gains:
            return f"{head}. It adds {_and(gains)} (your {yours} lacks {'it' if len(gains) == 1 else 'them'})."
        return f"{head} (yours is {yours})."
    if gpu_idle and choice.backend in ("cuda", "rocm", "vulkan", "metal"):
        return f"This llama-server does not use your GPU; the {choice.release.tag} release for {choice.target} does."
    return None
