"""The llama-server builds in the launcher's cache, side by side: what each is and can do, which one is
in use, switching between them and removing one.

Peers' users complain that an update installed a build with a regression and left no way back, and
llama.cpp's speculative decoding has regressed between builds before. So a newer build never
replaces the one in use: each build keeps its folder (``bN``, ``bN-release``), the previous one
stays until the user removes it, and switching is recording the choice (``discovery.choose_build``),
which discovery then prefers. What each build can do comes from probing it (``--help`` for MTP and
ngram-mod, ``--list-devices`` for the GPU backends it drives here), where it came from from its
``build_info.json``. This is the logic behind ``get-server --list/--use/--remove`` and the window's
installed-builds list; both only show what this returns.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core.host.hardware import parse_list_devices
from llama_launcher.core.llama_server import build_record
from llama_launcher.core.llama_server.discovery import (
    EXE,
    cache_source,
    cached_builds,
    choose_build,
    find_server,
    is_build_folder,
)
from llama_launcher.core.llama_server.probe import ProbeError, list_devices_text, probe
from llama_launcher.core.state import paths
from llama_launcher.core.state.errors import UserFacing


class BuildChoiceError(UserFacing, ValueError):
    """The build asked for cannot be used or removed; one line."""


@dataclass
class InstalledBuild:
    folder: str  # "b11434", "b11434-release"
    path: str  # its llama-server
    build: int | None  # the number llama-server reports (else the folder's)
    source: str  # "llama.cpp release b11434 (cuda), downloaded by the launcher", "built by the launcher (cpu)"
    backend: str | None  # as recorded when it was installed
    installed_at: str = ""
    in_use: bool = False
    version_line: str | None = None
    mtp: str | None = None  # its --spec-type token for MTP ("draft-mtp"), None: no MTP
    ngram_mod: str | None = None  # the ngram-mod option dialect, None: no ngram-mod
    devices: list[str] = field(default_factory=list)  # "CUDA: NVIDIA GeForce RTX 4090", as it lists them here
    problem: str | None = None  # why it cannot be probed (it does not run here)

    @property
    def backends(self) -> list[str]:
        seen: list[str] = []
        for d in self.devices:
            name = d.split(":", 1)[0]
            if name not in seen:
                seen.append(name)
        return seen

    def abilities(self) -> str:
        """What it can do, in words: "draft-mtp, ngram-mod; runs on CUDA"."""
        if self.problem:
            return f"does not run here: {self.problem}"
        can = [x for x in (self.mtp, "ngram-mod" if self.ngram_mod else None) if x]
        where = ("runs on " + ", ".join(self.backends)) if self.backends else "runs on the CPU here"
        return (", ".join(can) if can else "no MTP, no ngram-mod") + "; " + where

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "backends": self.backends}


def _describe(exe: Path, in_use: str | None, ask_devices: bool) -> InstalledBuild:
    folder = exe.parent.name
    info = build_record.read(exe.parent) or {}
    number = info.get("build") if isinstance(info.get("build"), int) else None
    if number is None:
        digits = folder[1:].split("-")[0]
        number = int(digits) if digits.isdigit() else None
    stamp = info.get("installed_at") or info.get("built_at")
    item = InstalledBuild(folder, str(exe), number, cache_source(exe),
                          info.get("backend") if isinstance(info.get("backend"), str) else None,
                          stamp if isinstance(stamp, str) else "")
    try:
        item.in_use = in_use is not None and os.path.samefile(exe, in_use)
    except OSError:
        item.in_use = False
    try:
        caps = probe(str(exe))
    except ProbeError as exc:
        item.problem = str(exc)
        return item
    item.build = caps.build_number or item.build
    item.version_line, item.mtp, item.ngram_mod = caps.version_line, caps.mtp_token, caps.ngram_mod_flavor
    if ask_devices and caps.has_list_devices:
        listed = parse_list_devices(list_devices_text(str(exe))) or []
        item.devices = [f"{d.backend}: {d.name}" for d in listed]
    return item


def list_builds(in_use: str | None = None, ask_devices: bool = True) -> list[InstalledBuild]:
    """Every build in the cache, newest first, each probed; ``in_use`` is the llama-server in use (default:
    the one discovery finds, as the command line uses)."""
    if in_use is None:
        found = find_server()
        in_use = found.path if found is not None else None
    return [_describe(exe, in_use, ask_devices) for exe in cached_builds()]


def _folder(name: str) -> Path:
    name = name.strip()
    if name.isdigit():
        name = f"b{name}"
    if not is_build_folder(name):
        raise BuildChoiceError(f"{name!r} is not an installed build's name (bNNNN or bNNNN-release); "
                               "'llama-launcher get-server --list' shows them")
    folder = paths.server_cache_dir() / name
    if not (folder / EXE).is_file():
        have = ", ".join(p.parent.name for p in cached_builds()) or "none"
        raise BuildChoiceError(f"no build {name} is installed (installed: {have})")
    return folder


def use_build(name: str) -> InstalledBuild:
    """Make the cached build ``name`` (``b11433``, ``11433``, ``b11434-release``) the one in use; it must
    run here. The one used before stays installed."""
    folder = _folder(name)
    item = _describe(folder / EXE, None, ask_devices=True)
    if item.problem:
        raise BuildChoiceError(f"{folder.name} cannot be used: {item.problem}")
    try:
        choose_build(folder.name)
    except OSError as exc:
        raise BuildChoiceError(f"the choice could not be saved in {folder.parent}: {exc.strerror or exc}") from exc
    item.in_use = True
    return item


def remove_build(name: str, in_use: str | None = None) -> Path:
    """Delete the cached build ``name``; never the one in use. Returns the folder removed."""
    folder = _folder(name)
    if in_use is None:
        found = find_server()
        in_use = found.path if found is not None else None
    try:
        busy = in_use is not None and os.path.samefile(folder / EXE, in_use)
    except OSError:
        busy = False
    if busy:
        raise BuildChoiceError(f"{folder.name} is the llama-server in use; switch to another build first "
                               "('llama-launcher get-server --use bNNNN')")
    gone = folder.with_name(f".staging-removing-{folder.name}-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(folder, gone)  # discovery never sees half a build
    except OSError as exc:
        raise BuildChoiceError(f"{folder.name} could not be removed: {exc.strerror or exc} "
                               "(is a llama-server from that folder still running?)") from exc
    shutil.rmtree(gone, ignore_errors=True)
    return folder
