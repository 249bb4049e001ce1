"""Unpacking llama.cpp's archives safely, by their real layouts.

Layouts (llama.cpp's ``release.yml``): a Linux or macOS tarball holds one top folder ``llama-bN/``
with the binaries and their shared libraries; the Linux CUDA runtime tarball holds one folder
``cudart-llama-bN-bin-ubuntu-cuda-<v>-<arch>/`` whose libraries must sit *next to* the binaries
(they find them through their ``$ORIGIN`` rpath); a Windows zip holds its files at the root (the
runtime zip too). :func:`add_runtime` puts a runtime archive's files beside llama-server.

Safety: no absolute paths, no ``..``, bounded entry count and size, and no entry is created
through a link. The last rule is what stops a chain of links, each lexically inside the folder
(``x/l1 -> ..``, then ``x/l1/l2 -> ..`` created *through* the first, one folder higher each time),
from reaching a user's file outside and replacing it: before anything is created or unlinked, every
folder on its way is checked not to be a link, and a link's target must resolve inside the folder.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from llama_launcher.core.llama_server.discovery import EXE
from llama_launcher.core.llama_server.fetch import CHUNK, DownloadError, disk_error, write_chunk

MAX_ENTRIES = 20_000
MAX_UNPACKED = 8 * 1024**3


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


def _no_link_on_the_way(archive: Path, root: Path, target: Path) -> None:
    """Refuse ``target`` when any folder between ``root`` and it is a link (or is not a folder)."""
    folder = root
    for part in target.relative_to(root).parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise DownloadError(f"{archive.name} holds an entry inside a link ({target.relative_to(root).as_posix()!r} "
                                f"passes through {folder.relative_to(root).as_posix()!r}); nothing was installed")
        if folder.exists() and not folder.is_dir():
            raise DownloadError(f"{archive.name} holds an entry inside a file "
                                f"({target.relative_to(root).as_posix()!r}); nothing was installed")


def _link_ok(root: Path, link_path: Path, target: str) -> bool:
    if not target or target.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", target):
        return False
    lexical = Path(os.path.normpath(str(link_path.parent / target)))
    real = Path(os.path.realpath(link_path.parent / target))
    return _inside(root, lexical) and _inside(Path(os.path.realpath(root)), real)


def _limits(archive: Path, count: int, total: int) -> None:
    if count > MAX_ENTRIES:
        raise DownloadError(f"{archive.name} holds {count:,} entries, more than a llama.cpp build has; refusing it")
    if total > MAX_UNPACKED:
        raise DownloadError(f"{archive.name} would unpack to {total / 1e9:,.1f} GB, more than a llama.cpp build "
                            "needs; refusing it")


def _copy_out(archive: Path, root: Path, src: IO[bytes], target: Path, mode: int | None) -> None:
    _no_link_on_the_way(archive, root, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        raise DownloadError(f"{archive.name} writes through a link ({target.name!r}); nothing was installed")
    with open(target, "wb") as out:
        while chunk := src.read(CHUNK):
            write_chunk(out, chunk)
    if mode is not None and sys.platform != "win32":
        os.chmod(target, (mode & 0o755) | 0o600)


def _mkdir(archive: Path, root: Path, target: Path) -> None:
    _no_link_on_the_way(archive, root, target)
    if target.is_symlink():
        raise DownloadError(f"{archive.name} holds a folder where a link is ({target.name!r}); nothing was installed")
    target.mkdir(parents=True, exist_ok=True)


def _unpack_zip(archive: Path, root: Path, links: list[tuple[Path, str]]) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        _limits(archive, len(infos), sum(i.file_size for i in infos))
        for info in infos:
            target = _member_path(archive, root, info.filename)
            mode = (info.external_attr >> 16) & 0xFFFF
            if stat.S_ISLNK(mode):
                links.append((target, zf.read(info)[:4096].decode("utf-8", "replace")))
            elif info.is_dir():
                _mkdir(archive, root, target)
            else:
                with zf.open(info) as src:
                    _copy_out(archive, root, src, target, mode if mode else None)


def _unpack_tar(archive: Path, root: Path, links: list[tuple[Path, str]]) -> None:
    with tarfile.open(archive, "r:gz") as tf:
        members = tf.getmembers()
        _limits(archive, len(members), sum(m.size for m in members if m.isreg()))
        for m in members:
            target = _member_path(archive, root, m.name)
            if m.isdir():
                _mkdir(archive, root, target)
            elif m.isreg():
                src = tf.extractfile(m)
                if src is None:
                    continue
                with src:
                    _copy_out(archive, root, src, target, m.mode)
            elif m.issym():
                links.append((target, m.linkname))
            elif m.islnk():  # a hard link names another member: copy it
                source = _member_path(archive, root, m.linkname)
                _no_link_on_the_way(archive, root, source)
                if not source.is_file() or source.is_symlink():
                    raise DownloadError(f"{archive.name} holds a link to a missing file ({m.linkname!r})")
                _no_link_on_the_way(archive, root, target)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            # devices, FIFOs and the like have no place in a llama.cpp build: skipped


def _make_link(archive: Path, root: Path, link: Path, target: str) -> None:
    _no_link_on_the_way(archive, root, link)  # the folder it goes in is real: nothing outside is touched
    if not _link_ok(root, link, target):
        raise DownloadError(f"{archive.name} holds a link that points outside the build ({target!r}); "
                            "nothing was installed")
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_dir() and not link.is_symlink():
        raise DownloadError(f"{archive.name} holds a link where a folder is ({link.name!r}); nothing was installed")
    if sys.platform == "win32":
        resolved = link.parent / target
        if resolved.is_file():
            shutil.copy2(resolved, link)
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(target, link)


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
        for link, target in links:
            _make_link(archive, root, link, target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, NotImplementedError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise DownloadError(f"{archive.name} is not a valid archive ({detail}); nothing was installed") from exc
    except OSError as exc:
        if type(exc).__name__ == "BadGzipFile":
            raise DownloadError(f"{archive.name} is not a valid archive ({exc}); nothing was installed") from exc
        disk = disk_error(exc, root)
        if disk is not None:
            raise disk from exc
        raise DownloadError(f"{archive.name} could not be unpacked: {exc.strerror or exc}") from exc


def server_in_archive(root: Path, max_depth: int = 3) -> Path | None:
    """The llama-server inside an unpacked build (at the top, or in its one folder)."""
    level = [root]
    for _ in range(max_depth + 1):
        for folder in level:
            exe = folder / EXE
            if exe.is_file() and not exe.is_symlink():
                return exe
        level = sorted(p for f in level for p in f.iterdir() if p.is_dir() and not p.is_symlink())
    return None


def _payload(root: Path) -> Path:
    """Where an unpacked runtime archive keeps its files: its one top folder, or the root (Windows)."""
    entries = list(root.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return root


def add_runtime(archive: Path, unpack_to: Path, server_dir: Path) -> list[str]:
    """Unpack a runtime archive (CUDA's cudart) into ``unpack_to``, then move its files next to
    llama-server in ``server_dir``; a file the build already has is never replaced. Returns the names."""
    unpack(archive, unpack_to)
    moved = []
    src = _payload(unpack_to)
    for item in sorted(src.iterdir()):
        dest = server_dir / item.name
        if item.is_dir() and not item.is_symlink():
            raise DownloadError(f"{archive.name} holds a folder ({item.name!r}) where the runtime's libraries "
                                "were expected; nothing was installed")
        if item.is_symlink() and re.search(r"[/\\]", os.readlink(item)):
            raise DownloadError(f"{archive.name} holds a link out of its folder ({item.name!r}); nothing was installed")
        if dest.exists() or dest.is_symlink():
            raise DownloadError(f"{archive.name} would replace {item.name} of the llama-server build; "
                                "nothing was installed")
        os.replace(item, dest)
        moved.append(item.name)
    shutil.rmtree(unpack_to, ignore_errors=True)
    return moved
