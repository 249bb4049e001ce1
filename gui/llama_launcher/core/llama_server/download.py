"""Download, verify, unpack, probe and install one llama.cpp release build, beside the others.

Nothing half-done is ever left where discovery looks. Every byte goes to a staging folder
(``.staging-bN-*`` beside the installed builds, so the final rename stays on one disk) that records
the process that owns it; each archive must have exactly the size the release lists and, when the
release lists a digest, that SHA-256 (a digest that is listed but cannot be read is refused; the
SHA-256 computed is always recorded); unpacking goes by the real layouts and refuses anything that
would leave the folder (``archive.py``); on macOS the quarantine mark is removed; the llama-server
inside must answer ``--version`` and ``--help`` here; only then is the folder renamed to ``bN``.
A failure or a cancel removes the staging folder and leaves ``bN`` as it was; a staging folder
left by a run that was killed (no live owner) is removed by the next download, which says so.

Builds live side by side, one folder per build number, so a newer one never replaces the one in
use and going back is a switch (``installed.py``). A ``bN`` that holds the launcher's own source
build is never replaced by a download: the release goes beside it, to ``bN-release``.
Cancelling is a flag (a ``CancelToken`` or ``threading.Event``) checked between chunks, so any thread may cancel at once.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_launcher.core.host import quarantine
from llama_launcher.core.host.owner_mark import folder_bytes, mark_owner, owner_alive
from llama_launcher.core.llama_server import build_record
from llama_launcher.core.llama_server.archive import add_runtime, server_in_archive, unpack
from llama_launcher.core.llama_server.discovery import EXE, RELEASE_SUFFIX
from llama_launcher.core.llama_server.fetch import (
    DownloadCancelled,
    DownloadError,
    Meter,
    Progress,
    check_digest_listed,
    check_url,
    disk_error,
    download_asset,
)
from llama_launcher.core.llama_server.probe import Capabilities, ProbeError, probe
from llama_launcher.core.llama_server.releases import DownloadChoice
from llama_launcher.core.state import paths
from llama_launcher.core.state.cancel import Cancellable

__all__ = ["DownloadCancelled", "DownloadError", "InstallResult", "clean_stale", "install", "make_staging",
           "place_build", "release_dir"]

SPACE_FACTOR = 3  # the archive plus what it unpacks to (CUDA's DLLs compress about 2:1)
SPACE_MARGIN = 64 * 1024 * 1024


@dataclass
class InstallResult:
    path: Path  # the installed llama-server
    release: str
    build: int
    backend: str
    capabilities: Capabilities

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "release": self.release, "build": self.build, "backend": self.backend,
                "source": build_record.RELEASE_SOURCE, "version_line": self.capabilities.version_line,
                "mtp": self.capabilities.mtp_token}


def check_space(root: Path, choice: DownloadChoice) -> None:
    need = choice.total_size * SPACE_FACTOR + SPACE_MARGIN
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return
    if free < need:
        raise DownloadError(f"not enough free disk space in {root}: llama.cpp {choice.release.tag} needs about "
                            f"{need / 1e6:,.0f} MB, {free / 1e6:,.0f} MB are free")


# --- staging folders --------------------------------------------------------------------------

def make_staging(root: Path, prefix: str) -> Path:
    """A new ``.staging-<prefix>-*`` folder in ``root`` that records this process as its owner."""
    folder = Path(tempfile.mkdtemp(prefix=f".staging-{prefix}-", dir=root))
    mark_owner(folder)
    return folder


def clean_stale(root: Path) -> list[str]:
    """Remove staging folders no live process owns (a download or build that was killed) and finish a
    replacement that was cut off (``.old-bN-*``: put back when ``bN`` is missing). Returns what it did."""
    done: list[str] = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return done
    for p in entries:
        if p.is_symlink() or not p.is_dir():
            continue
        if p.name.startswith(".staging-") and not owner_alive(p):
            size = folder_bytes(p)
            shutil.rmtree(p, ignore_errors=True)
            if not p.exists():
                done.append(f"removed {p.name}, an unfinished download or build left by a run that was stopped "
                            f"({size / 1e6:,.0f} MB)")
        elif p.name.startswith(".old-") and "-" in p.name[5:]:
            name = p.name[5:].rsplit("-", 1)[0]
            dest = root / name
            if not dest.exists() and not dest.is_symlink():
                os.replace(p, dest)
                done.append(f"put {name} back: replacing it had been cut off")
            else:
                shutil.rmtree(p, ignore_errors=True)
    return done


# --- install ------------------------------------------------------------------------------------

def release_dir(build: int, root: Path | None = None) -> Path:
    """The folder llama.cpp's release ``bN`` is installed in: ``bN``, or ``bN-release`` when ``bN``
    holds the launcher's own source build (which a download never replaces)."""
    root = root or paths.server_cache_dir()
    plain = root / f"b{build}"
    return root / f"b{build}{RELEASE_SUFFIX}" if build_record.is_source_build(build_record.read(plain)) else plain


def place_build(src: Path, dest: Path) -> None:
    """Rename the verified build to ``dest``; an existing build is replaced only after that worked."""
    old = None
    try:
        if dest.exists():
            old = dest.with_name(f".old-{dest.name}-{uuid.uuid4().hex[:8]}")
            os.replace(dest, old)
        try:
            os.replace(src, dest)
        except OSError:
            if old is not None:
                os.replace(old, dest)
                old = None
            raise
    except OSError as exc:
        raise DownloadError(f"the new build could not be put in place at {dest}: {exc.strerror or exc} "
                            "(is a llama-server from that folder still running?)") from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _unpack_all(choice: DownloadChoice, archives: list[Path], staging: Path, progress: Progress | None,
                cancelled: Any) -> Path:
    """Unpack the server archive, then each runtime archive next to its llama-server; the server's path."""
    payload = staging / "unpacked"
    unpack(archives[0], payload)
    archives[0].unlink()
    server = server_in_archive(payload)
    if server is None:
        raise DownloadError(f"{archives[0].name} holds no {EXE}; nothing was installed")
    for i, archive in enumerate(archives[1:], 1):
        cancelled()
        moved = add_runtime(archive, staging / f"runtime-{i}", server.parent)
        archive.unlink()
        if progress:
            progress(f"{archive.name}: {len(moved)} files placed next to {EXE}", 0.92)
    return server


def install(choice: DownloadChoice, progress: Progress | None = None, cancel: Cancellable | None = None,
            root: Path | None = None) -> InstallResult:
    """Download ``choice``'s assets and install them as ``<server cache>/bN`` (or ``bN-release``, see
    :func:`release_dir`); see the module docstring."""
    root = paths.ensure(root or paths.server_cache_dir())

    def cancelled() -> None:
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled("download cancelled; nothing was installed")

    for asset in choice.assets:
        check_url(asset.url)
        check_digest_listed(asset)
    for line in clean_stale(root):
        if progress:
            progress(line, 0.0)
    check_space(root, choice)
    staging = make_staging(root, choice.release.tag)
    try:
        meter = Meter(progress, choice.total_size, (0.0, 0.9))
        archives, digests = [], []
        for asset in choice.assets:
            cancelled()
            archive = staging / asset.name
            digests.append(download_asset(asset, archive, meter, cancel))
            archives.append(archive)
        if progress:
            how = "checked against the release's SHA-256 digests" if all(a.sha256 for a in choice.assets) else \
                "size checked (the release lists no digest)"
            progress(f"downloaded {', '.join(a.name for a in choice.assets)}: {how}; unpacking", 0.9)
        cancelled()
        server = _unpack_all(choice, archives, staging, progress, cancelled)
        if sys.platform != "win32":
            os.chmod(server, server.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        said = quarantine.clear(server.parent)
        if said and progress:
            progress(said, 0.94)
        cancelled()
        if progress:
            progress(f"checking that {EXE} runs on this machine", 0.95)
        try:
            caps = probe(str(server), use_cache=False)
        except ProbeError as exc:
            raise DownloadError(f"the downloaded llama-server does not run on this machine ({exc}); "
                                "nothing was installed") from exc
        try:
            build_record.write(server.parent, {
                "source": build_record.RELEASE_SOURCE, "release": choice.release.tag, "build": choice.build,
                "backend": choice.backend, "target": choice.target, "reported_build": caps.build_number,
                "assets": [{"name": a.name, "size": a.size, "sha256": d, "listed_digest": a.digest, "url": a.url}
                           for a, d in zip(choice.assets, digests, strict=True)],
                "installed_at": time.strftime("%Y-%m-%d %H:%M:%S")})
        except OSError as exc:
            disk = disk_error(exc, staging)
            raise (disk or DownloadError(f"could not record the build: {exc.strerror or exc}")) from exc
        cancelled()
        dest = release_dir(choice.build, root)
        if progress and dest.name != f"b{choice.build}":
            progress(f"b{choice.build} holds the launcher's own source build; the release goes beside it, "
                     f"in {dest.name}", 0.98)
        place_build(server.parent, dest)
        if progress:
            progress(f"installed llama.cpp {choice.release.tag} ({choice.backend}) in {dest}", 1.0)
        caps.path = str(dest / EXE)
        return InstallResult(dest / EXE, choice.release.tag, choice.build, choice.backend, caps)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
