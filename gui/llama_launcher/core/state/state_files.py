"""Reading and writing the launcher's own state files: atomic, bounded, and never silently lossy.

Every state file (settings, tuning results, caches, the server registry, the API key) may be
corrupt, huge, a folder, or on a read-only or full disk. The rules, in one place:

- a write goes to a temporary file in the same folder (created owner-only when ``private``),
  is flushed to disk, then replaces the target in one step: a crash leaves the old file or the
  new one, never half of either;
- a read is bounded in size and nesting; a file that cannot be parsed or fails its validator is
  moved aside (``NAME.corrupt-<time>``) *before* anything new is written over it, and a one-line
  notice says where it went; only the newest few set-aside copies of a file are kept, so a file
  that keeps coming back bad cannot fill the folder;
- a file that exists but cannot be *read* (mode 000, a file of another user) is not corrupt: what
  it holds comes back once its permissions are fixed. Defaults are used for this run, and no
  write ever replaces it (``write_bytes`` checks that the old file can be opened first);
- a failure to write is reported once per file as a notice, and the caller carries on with what
  it has in memory.

Notices collect here; the window shows them in its banner and the CLI prints them as ``note:``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from llama_launcher.core.state.errors import UserFacing

T = TypeVar("T")
MAX_STATE_BYTES = 32 * 1024 * 1024  # the biggest legitimate state file (header cache of 10k models) is ~20 MB

_lock = threading.Lock()
_notices: list[str] = []
_reported: set[str] = set()


def notice(text: str, key: str | None = None) -> None:
    """Queue a one-line notice; with ``key``, only the first notice for that key is kept."""
    with _lock:
        if key is not None:
            if key in _reported:
                return
            _reported.add(key)
        _notices.append(" ".join(text.split()))


def drain_notices() -> list[str]:
    with _lock:
        out = list(_notices)
        _notices.clear()
        return out


def reason(exc: BaseException) -> str:
    """Why an operation failed, in a few words for a notice: the OS's words for an OSError."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


class UnreadableFile(OSError):
    """The file at a state path exists but cannot be read: replacing it would lose what it holds."""


def check_replaceable(path: Path) -> None:
    """Raise :class:`UnreadableFile` when a file is at ``path`` but cannot be opened for reading.

    Nothing there (or a folder that cannot be searched, or a folder where the file belongs) is left
    to the write itself, which fails with its own reason if it must."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):  # Windows cannot open a folder: it would read as unreadable
            return
    except OSError:
        return
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:  # a symlink to nothing, or gone since: nothing to lose
        return
    except OSError as exc:
        raise UnreadableFile(exc.errno, exc.strerror or type(exc).__name__, str(path)) from exc
    os.close(fd)


def write_bytes(path: Path, data: bytes, private: bool = False) -> None:
    """Atomically replace ``path`` with ``data``. Raises ``OSError`` (:class:`UnreadableFile` when
    the old file cannot be read); never leaves a temporary file."""
    check_replaceable(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if private and sys.platform != "win32":
            os.chmod(tmp, 0o600)  # O_TRUNC of a leftover temp keeps its old mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json(path: Path, data: Any, private: bool = False, indent: int | None = None) -> None:
    write_bytes(path, json.dumps(data, indent=indent).encode("utf-8"), private=private)


def save_json(path: Path, data: Any, what: str, private: bool = False, indent: int | None = None) -> bool:
    """``write_json`` that reports a failure as a notice (once per file) instead of raising."""
    try:
        write_json(path, data, private=private, indent=indent)
        return True
    except UnreadableFile as exc:
        notice(f"{what} was not saved: {path} cannot be read ({reason(exc)}) and saving would replace what it "
               "holds; it is kept for this session only (make the file readable again, or move it away)",
               key=f"write:{path}")
        return False
    except (OSError, ValueError, TypeError) as exc:
        notice(f"{what} could not be saved to {path} ({reason(exc)}); it is kept for this session only",
               key=f"write:{path}")
        return False


KEEP_SET_ASIDE = 3  # set-aside copies kept per state file: enough to recover from, never a folder full


def set_aside(path: Path) -> Path | None:
    """Move a corrupt file out of the way (``NAME.corrupt-<time>``); None if it could not be moved.

    Only the newest :data:`KEEP_SET_ASIDE` copies of one file are kept: a file that comes back bad
    at every start (a bug, a broken disk) must not add a copy each time, without end."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    copies = _set_aside_copies(path)
    first = max((order[1] + 1 for order, _ in copies if order[0] == stamp), default=0)  # after any this second
    for n in range(first, first + 100):
        aside = path.with_name(f"{path.name}.corrupt-{stamp}" + (f"-{n}" if n else ""))
        if os.path.lexists(aside):
            continue
        try:
            os.replace(path, aside)
        except OSError:
            return None
        for _, old in sorted(copies)[:max(len(copies) + 1 - KEEP_SET_ASIDE, 0)]:
            try:
                os.unlink(old)
            except OSError:
                pass
        return aside
    return None


def _set_aside_copies(path: Path) -> list[tuple[tuple[str, int], str]]:
    """The set-aside copies of ``path`` that are files, each with its (time, number) order."""
    pattern = re.compile(re.escape(path.name) + r"\.corrupt-(\d{8}-\d{6})(?:-(\d+))?")
    copies = []
    try:
        for entry in os.scandir(path.parent):
            m = pattern.fullmatch(entry.name)
            if m and entry.is_file(follow_symlinks=False):  # a folder set aside is yours to look at: kept
                copies.append(((m.group(1), int(m.group(2) or 0)), entry.path))
    except OSError:
        pass
    return copies


class StateFileError(UserFacing, ValueError):
    """Raised by a validator: the file's content is not what the launcher writes."""


def read_json(path: Path, what: str, validate: Callable[[Any], T], max_bytes: int = MAX_STATE_BYTES) -> T | None:
    """Read and validate a state file. Missing: None. Corrupt or invalid: set aside, notice, None.

    ``validate`` turns the parsed JSON into the caller's value and raises ``StateFileError``,
    ``ValueError``, ``TypeError``, ``KeyError`` or ``AttributeError`` when the content is wrong.
    """
    try:
        if path.is_dir():
            aside = set_aside(path)
            notice(f"{what} at {path} is a folder, not a file; "
                   + (f"it was moved to {aside}" if aside else "it is ignored"), key=f"read:{path}")
            return None
        size = path.stat().st_size
        if size > max_bytes:
            raise StateFileError(f"{size:,} bytes is more than this file can legitimately hold")
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # not there (a home under a file has nothing to read)
        return None
    except StateFileError as exc:
        _corrupt(path, what, str(exc))
        return None
    except OSError as exc:  # it is there but unreadable: not corrupt, so it is kept as it is (see write_bytes)
        notice(f"{what} could not be read from {path} ({reason(exc)}); using defaults, and the file is not "
               "overwritten (make it readable again, or move it away)", key=f"read:{path}")
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
        return validate(data)
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError) as exc:
        detail = "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else \
            "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:120] if str(exc) else \
            type(exc).__name__
        _corrupt(path, what, detail)
        return None


def _corrupt(path: Path, what: str, detail: str) -> None:
    aside = set_aside(path)
    where = f"moved to {aside}" if aside else "left in place (it could not be moved)"
    notice(f"{what} was corrupt ({detail}) and has been {where}; using defaults", key=f"corrupt:{path}")


# --- validators shared by the stores ----------------------------------------------------------

def expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it has the JSON type ``kind`` (bool is not an int here), else StateFileError."""
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise StateFileError(f"{what} must not be true/false")
    if not isinstance(value, kind):
        raise StateFileError(f"{what} has the wrong type ({type(value).__name__})")
    return value
