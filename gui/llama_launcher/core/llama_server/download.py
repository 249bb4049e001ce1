"""Download, verify, unpack, probe and install one llama.cpp release build.

Nothing half-done is ever left where discovery looks. Every byte goes to a staging folder
(``.staging-bN-*`` beside the installed builds, so the final rename stays on one disk); each
archive must have exactly the size the release lists and, when the release lists one, its
SHA-256 digest; unpacking refuses absolute paths, ``..`` and links that leave the folder; the
llama-server inside must answer ``--version`` and ``--help`` here; only then is the folder renamed
to ``bN``. A failure or a cancel removes the staging folder and leaves ``bN`` as it was. A ``bN``
that holds the launcher's own source build of that number is never replaced by a download: the
release goes beside it, to ``bN-release`` (:func:`release_dir`).
Cancelling is a ``threading.Event`` checked between chunks, so any thread may cancel at once.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import ipaddress
import json
import os
import re
import shutil
import socket
import stat
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from llama_launcher import __version__
from llama_launcher.core.llama_server import build_record
from llama_launcher.core.llama_server.discovery import EXE, RELEASE_SUFFIX
from llama_launcher.core.llama_server.probe import Capabilities, ProbeError, probe
from llama_launcher.core.llama_server.releases import (
    RELEASES_API,
    CatalogError,
    DownloadChoice,
    Release,
    parse_releases,
)
from llama_launcher.core.state import paths

Progress = Callable[[str, "float | None"], None]  # (message, fraction 0..1 or None), as provisioning's

CHUNK = 256 * 1024
API_MAX_BYTES = 16 * 1024 * 1024
SPACE_FACTOR = 3  # the archive plus what it unpacks to (CUDA's DLLs compress about 2:1)
SPACE_MARGIN = 64 * 1024 * 1024
MAX_ENTRIES = 20_000
MAX_UNPACKED = 8 * 1024**3
TIMEOUT_S = 30.0
RELEASES_URL_ENV = "LLAMA_LAUNCHER_RELEASES_URL"  # another API answer (a mirror, a test server); "off": none


class DownloadError(Exception):
    """The download or install failed; one line for the user. Nothing was installed."""


class DownloadCancelled(DownloadError):
    """The user cancelled; nothing was installed."""


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


# --- network ----------------------------------------------------------------------------------

def releases_url() -> str | None:
    """The release API to ask (None when the user or a test switched checking off)."""
    value = os.environ.get(RELEASES_URL_ENV)
    if value is None:
        return RELEASES_API
    return None if value.strip().lower() in ("", "off", "0", "none") else value.strip()


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> None:
    """Only https, or http to this machine (a test server, a local mirror)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname)):
        return
    raise DownloadError(f"refusing to download from {url}: only https addresses are used")


def _net_error(exc: BaseException, url: str) -> DownloadError:
    host = urllib.parse.urlsplit(url).hostname or url
    if isinstance(exc, urllib.error.HTTPError):
        detail = ""
        try:
            body = json.loads(exc.read(64 * 1024).decode("utf-8", "replace"))
            detail = f": {body['message']}" if isinstance(body, dict) and isinstance(body.get("message"), str) else ""
        except (ValueError, OSError, KeyError):
            pass
        return DownloadError(f"{host} answered HTTP {exc.code} {exc.reason}{detail} for {url}")
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        return DownloadError(f"cannot reach {host} ({text}); check the network connection")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return DownloadError(f"{host} did not answer within {TIMEOUT_S:.0f} s")
    return DownloadError(f"the connection to {host} failed: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")


def _open(url: str, accept: str, timeout: float = TIMEOUT_S) -> Any:
    check_url(url)
    req = urllib.request.Request(url, headers={"User-Agent": f"llama-launcher/{__version__}", "Accept": accept})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - scheme checked above
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _net_error(exc, url) from exc
    final = resp.geturl()
    if final != url:
        try:
            check_url(final)
        except DownloadError:
            resp.close()
            raise
    return resp


def fetch_release(url: str | None = None, tag: str | None = None, timeout: float = TIMEOUT_S) -> Release:
    """The newest llama.cpp build in the API answer at ``url`` (or the build ``tag``)."""
    url = url or releases_url()
    if url is None:
        raise DownloadError(f"checking for llama.cpp releases is switched off ({RELEASES_URL_ENV}=off)")
    with _open(url, "application/vnd.github+json", timeout) as resp:
        try:
            raw = resp.read(API_MAX_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise _net_error(exc, url) from exc
    if len(raw) > API_MAX_BYTES:
        raise DownloadError(f"the release list at {url} is larger than {API_MAX_BYTES // 2**20} MiB; refusing it")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DownloadError(f"the answer from {url} is not JSON") from exc
    try:
        if tag is None:
            return parse_releases(data)
        items = data if isinstance(data, list) else [data]
        wanted = [i for i in items if isinstance(i, dict) and i.get("tag_name") == tag]
        if not wanted:
            if isinstance(data, list) and "/releases" in url:  # not among the newest: ask for the tag itself
                tag_url = url.split("?", 1)[0].rstrip("/") + f"/tags/{tag}"
                try:
                    return fetch_release(tag_url, None, timeout)
                except DownloadError as exc:
                    if "HTTP 404" in str(exc):
                        raise DownloadError(f"llama.cpp release {tag} was not found ({tag_url} answered 404)") from exc
                    raise
            raise DownloadError(f"llama.cpp release {tag} was not found at {url}")
        return parse_releases(wanted)
    except CatalogError as exc:
        raise DownloadError(str(exc)) from exc


# --- download and verify ------------------------------------------------------------------------

def _write(fh: IO[bytes], chunk: bytes) -> None:
    fh.write(chunk)


def _disk_error(exc: OSError, where: Path) -> DownloadError | None:
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DownloadError(f"the disk is full: llama.cpp could not be written to {where}; free some space and "
                             "try again (nothing was installed)")
    return None


def check_space(root: Path, choice: DownloadChoice) -> None:
    need = choice.total_size * SPACE_FACTOR + SPACE_MARGIN
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return
    if free < need:
        raise DownloadError(f"not enough free disk space in {root}: llama.cpp {choice.release.tag} needs about "
                            f"{need / 1e6:,.0f} MB, {free / 1e6:,.0f} MB are free")


class _Meter:
    """Progress over all assets, at most ten reports a second."""

    def __init__(self, progress: Progress | None, total: int, span: tuple[float, float]) -> None:
        self.progress, self.total, self.span = progress, max(total, 1), span
        self.done, self._last = 0, 0.0

    def add(self, n: int, name: str) -> None:
        self.done += n
        now = time.monotonic()
        if self.progress is None or (now - self._last < 0.1 and self.done < self.total):
            return
        self._last = now
        frac = min(self.span[0] + (self.span[1] - self.span[0]) * self.done / self.total, self.span[1])  # no 0.9000001
        self.progress(f"downloading {name}: {self.done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB", frac)


def download_asset(asset: Any, dest: Path, meter: _Meter, cancel: threading.Event | None) -> None:
    """Stream ``asset`` to ``dest``; size must match exactly, and the digest when one is listed."""
    digest = hashlib.sha256()
    got = 0
    with _open(asset.url, "application/octet-stream") as resp:
        try:
            with open(dest, "wb") as fh:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelled("download cancelled; nothing was installed")
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > asset.size:
                        raise DownloadError(f"{asset.name} is larger than the {asset.size:,} bytes the release lists; "
                                            "the download is corrupt (nothing was installed)")
                    _write(fh, chunk)
                    digest.update(chunk)
                    meter.add(len(chunk), asset.name)
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
            raise DownloadError(f"the download of {asset.name} was interrupted after {got:,} of {asset.size:,} bytes "
                                f"({type(exc).__name__}); try again") from exc
        except OSError as exc:
            disk = _disk_error(exc, dest.parent)
            if disk is not None:
                raise disk from exc
            raise DownloadError(f"{asset.name} could not be saved to {dest.parent}: {exc.strerror or exc}") from exc
    if got != asset.size:
        raise DownloadError(f"the download of {asset.name} was cut short ({got:,} of {asset.size:,} bytes); try again")
    if asset.sha256 is not None and digest.hexdigest() != asset.sha256:
        raise DownloadError(f"{asset.name} does not match the SHA-256 digest the release lists (got "
                            f"{digest.hexdigest()[:16]}…, expected {asset.sha256[:16]}…): the download is corrupt; "
                            "nothing was installed")


# --- unpack safely ------------------------------------------------------------------------------

def _inside(root: Path, target: Path) -> bool:
    root_s = os.path.normcase(os.path.normpath(str(root)))
    t = os.path.normcase(os.path.normpath(str(target)))
    return t == root_s or t.startswith(root_s + os.sep)


def _member_path(archive: Path, root: Path, name: str) -> Path:
    clean = name.replace("\\", "/")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in parts or not parts:
        if not parts and not clean.startswith("/"):
            return root
        raise DownloadError(f"{archive.name} holds an unsafe path ({name!r}); nothing was installed")
    target = root.joinpath(*parts)
    if not _inside(root, target):
        raise DownloadError(f"{archive.name} holds an unsafe path ({name!r}); nothing was installed")
    return target


def _link_ok(root: Path, link_path: Path, target: str) -> bool:
    if not target or target.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", target):
        return False
    return _inside(root, Path(os.path.normpath(str(link_path.parent / target))))


def _limits(archive: Path, count: int, total: int) -> None:
    if count > MAX_ENTRIES:
        raise DownloadError(f"{archive.name} holds {count:,} entries, more than a llama.cpp build has; refusing it")
    if total > MAX_UNPACKED:
        raise DownloadError(f"{archive.name} would unpack to {total / 1e9:,.1f} GB, more than a llama.cpp build "
                            "needs; refusing it")


def _copy_out(src: IO[bytes], target: Path, mode: int | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        while chunk := src.read(CHUNK):
            _write(out, chunk)
    if mode is not None and sys.platform != "win32":
        os.chmod(target, (mode & 0o755) | 0o600)


def _unpack_zip(archive: Path, root: Path, links: list[tuple[Path, str]]) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        _limits(archive, len(infos), sum(i.file_size for i in infos))
        for info in infos:
            target = _member_path(archive, root, info.filename)
            mode = (info.external_attr >> 16) & 0xFFFF
            if stat.S_ISLNK(mode):
                links.append((target, zf.read(info).decode("utf-8", "replace")))
            elif info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                with zf.open(info) as src:
                    _copy_out(src, target, mode if mode else None)


def _unpack_tar(archive: Path, root: Path, links: list[tuple[Path, str]]) -> None:
    with tarfile.open(archive, "r:gz") as tf:
        members = tf.getmembers()
        _limits(archive, len(members), sum(m.size for m in members if m.isreg()))
        for m in members:
            target = _member_path(archive, root, m.name)
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif m.isreg():
                src = tf.extractfile(m)
                if src is None:
                    continue
                with src:
                    _copy_out(src, target, m.mode)
            elif m.issym():
                links.append((target, m.linkname))
            elif m.islnk():  # a hard link names another member: copy it
                source = _member_path(archive, root, m.linkname)
                if not source.is_file():
                    raise DownloadError(f"{archive.name} holds a link to a missing file ({m.linkname!r})")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            # devices, FIFOs and the like have no place in a llama.cpp build: skipped


def unpack(archive: Path, root: Path) -> None:
    """Unpack a .zip or .tar.gz into ``root``; every path and link must stay inside it."""
    root.mkdir(parents=True, exist_ok=True)
    links: list[tuple[Path, str]] = []
    try:
        if archive.name.endswith(".zip"):
            _unpack_zip(archive, root, links)
        elif archive.name.endswith((".tar.gz", ".tgz")):
            _unpack_tar(archive, root, links)
        else:
            raise DownloadError(f"{archive.name} is neither a .zip nor a .tar.gz archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, NotImplementedError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise DownloadError(f"{archive.name} is not a valid archive ({detail}); nothing was installed") from exc
    except OSError as exc:
        if type(exc).__name__ == "BadGzipFile":
            raise DownloadError(f"{archive.name} is not a valid archive ({exc}); nothing was installed") from exc
        disk = _disk_error(exc, root)
        if disk is not None:
            raise disk from exc
        raise DownloadError(f"{archive.name} could not be unpacked: {exc.strerror or exc}") from exc
    for link, target in links:
        if not _link_ok(root, link, target):
            raise DownloadError(f"{archive.name} holds a link that points outside the build ({target!r}); "
                                "nothing was installed")
        link.parent.mkdir(parents=True, exist_ok=True)
        if sys.platform == "win32":
            resolved = link.parent / target
            if resolved.is_file():
                shutil.copy2(resolved, link)
        else:
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(target, link)


def server_in_archive(root: Path, max_depth: int = 3) -> Path | None:
    """The llama-server inside an unpacked build (at the top, or in its one folder)."""
    level = [root]
    for _ in range(max_depth + 1):
        for folder in level:
            exe = folder / EXE
            if exe.is_file():
                return exe
        level = sorted(p for f in level for p in f.iterdir() if p.is_dir() and not p.is_symlink())
    return None


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


def install(choice: DownloadChoice, progress: Progress | None = None, cancel: threading.Event | None = None,
            root: Path | None = None) -> InstallResult:
    """Download ``choice``'s assets and install them as ``<server cache>/bN`` (or ``bN-release``, see
    :func:`release_dir`); see the module docstring."""
    root = paths.ensure(root or paths.server_cache_dir())

    def cancelled() -> None:
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled("download cancelled; nothing was installed")

    for asset in choice.assets:
        check_url(asset.url)
    check_space(root, choice)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{choice.release.tag}-", dir=root))
    try:
        meter = _Meter(progress, choice.total_size, (0.0, 0.9))
        archives = []
        for asset in choice.assets:
            cancelled()
            archive = staging / asset.name
            download_asset(asset, archive, meter, cancel)
            archives.append(archive)
        if progress:
            progress(f"verified {', '.join(a.name for a in choice.assets)}; unpacking", 0.9)
        payload = staging / "unpacked"
        server: Path | None = None
        for i, archive in enumerate(archives):
            cancelled()
            unpack(archive, payload if server is None else server.parent)
            archive.unlink()
            if i == 0:
                server = server_in_archive(payload)
                if server is None:
                    raise DownloadError(f"{archive.name} holds no {EXE}; nothing was installed")
        assert server is not None
        if sys.platform != "win32":
            os.chmod(server, server.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
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
                "assets": [{"name": a.name, "size": a.size, "sha256": a.sha256, "url": a.url} for a in choice.assets],
                "installed_at": time.strftime("%Y-%m-%d %H:%M:%S")})
        except OSError as exc:
            disk = _disk_error(exc, staging)
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
