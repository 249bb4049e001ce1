"""Which process works in a folder: a mark that tells an abandoned folder from one in use.

A download or build that was killed leaves its folder behind; the next start must tell it apart
from the same work still going on in another launcher. The folder records its owner (pid and
create time, so a reused pid does not count); an owner that is gone means the folder is abandoned.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil

OWNER_FILE = ".owner.json"
OWNERLESS_STALE_S = 3600  # a folder without a mark (older launchers): abandoned after an hour


def folder_bytes(folder: Path) -> int:
    """What an abandoned folder takes on disk (links are counted as links, never followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def mark_owner(folder: Path) -> None:
    me = psutil.Process()
    (folder / OWNER_FILE).write_text(json.dumps({"pid": me.pid, "create_time": me.create_time()}), encoding="utf-8")


def unmark(folder: Path) -> None:
    """The folder is no longer work in progress (it became an installed build)."""
    (folder / OWNER_FILE).unlink(missing_ok=True)


def release(folder: Path) -> None:
    """Nobody works in the folder any more, but it is kept (an interrupted build, resumable)."""
    (folder / OWNER_FILE).write_text(json.dumps({"released": True}), encoding="utf-8")


def owner_alive(folder: Path, ownerless_grace: float = OWNERLESS_STALE_S) -> bool:
    """Whether the process that marked ``folder`` still runs (an unreadable mark: it does not; no mark:
    only while the folder is younger than ``ownerless_grace`` seconds)."""
    try:
        owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
        if isinstance(owner, dict) and owner.get("released") is True:
            return False
        pid, created = owner["pid"], owner["create_time"]
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(created, (int, float)):
            return False
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime < ownerless_grace
        except OSError:
            return False
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unreadable: not a folder any live launcher wrote
    try:
        return abs(psutil.Process(pid).create_time() - float(created)) < 1.0
    except (psutil.Error, OSError):
        return False
