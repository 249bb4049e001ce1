"""The LAN API key: generated once, kept owner-only in the config folder, passed by file.

The key is what users hand to other devices, so it must not leak on this one: the file is created
with mode 0600 from its first byte (never written first and chmod-ed after), a readable-by-others
file is tightened or refused, and llama-server reads the key from the file (``--api-key-file``)
rather than from its command line, which every local user can read in ``ps``. A short,
hand-written or binary key is replaced by a strong one, with a notice.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from llama_launcher.core.state import paths, state_files
from llama_launcher.core.state.errors import UserFacing

MIN_KEY_LENGTH = 24
MAX_KEY_FILE_BYTES = 4096  # only this much of the key file is read
_KEY_RE = re.compile(r"^[A-Za-z0-9._~+/=-]+$")


class ApiKeyError(UserFacing):
    """One line: why the key cannot be used safely."""


@dataclass(frozen=True)
class ApiKey:
    key: str
    file: Path | None  # None: it could not be saved; it lives in memory for this session only


def new_api_key() -> str:
    return "ll-" + secrets.token_urlsafe(32)


def key_file() -> Path:
    return paths.config_dir() / "api-key.txt"


def weakness(key: str) -> str | None:
    """Why a key is not good enough, or None."""
    if len(key) < MIN_KEY_LENGTH:
        return f"it is only {len(key)} characters long (at least {MIN_KEY_LENGTH} are needed)"
    if not _KEY_RE.match(key):
        return "it contains characters other than letters, digits and -._~+/="
    return None


def _tighten(f: Path) -> None:
    """Owner-only or refuse: a key others can read is not a secret."""
    if sys.platform == "win32":
        return  # the per-user config folder is private on Windows
    mode = stat.S_IMODE(f.stat().st_mode)
    if mode & 0o077:
        try:
            os.chmod(f, 0o600)
        except OSError as exc:
            raise ApiKeyError(f"the API key file {f} is readable by other users (mode {mode:o}) and could not be "
                              f"made private ({exc.strerror}); fix its permissions or delete it") from exc
        state_files.notice(f"the API key file {f} was readable by other users (mode {mode:o}); it is now owner-only")


def _save(key: str) -> ApiKey:
    f = key_file()
    try:
        state_files.write_bytes(f, (key + "\n").encode("ascii"), private=True)
        return ApiKey(key, f)
    except OSError as exc:
        state_files.notice(f"the API key could not be saved to {f} ({state_files.reason(exc)}); it is used for "
                           "this session only", key=f"write:{f}")
        return ApiKey(key, None)


def load_or_create() -> ApiKey:
    """The stored key (checked and tightened), or a new strong one. Raises :class:`ApiKeyError`.

    A key file that is there but cannot be read is refused, never replaced: the key in it is the
    one other devices hold, and a new one would lock them out without a word."""
    f = key_file()
    try:
        st = os.lstat(f)
    except (FileNotFoundError, NotADirectoryError):  # none yet (or no config folder can exist): a new one
        return _save(new_api_key())
    except OSError as exc:
        raise _unreadable(f, exc) from exc
    if not stat.S_ISREG(st.st_mode):
        raise ApiKeyError(f"{f} is not a regular file; remove it so that the launcher can keep the API key there")
    try:
        _tighten(f)
        with open(f, "rb") as fh:
            raw = fh.read(MAX_KEY_FILE_BYTES)  # a key is one short line: never read a huge file whole
    except OSError as exc:
        raise _unreadable(f, exc) from exc
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        state_files.notice(f"the API key file {f} did not hold a readable key; a new key was generated")
        return _save(new_api_key())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    key = lines[0] if lines else ""
    why = weakness(key) if key else "it is empty"
    if why is None:
        return ApiKey(key, f)
    state_files.notice(f"the API key in {f} was not safe ({why}); a new key was generated")
    return _save(new_api_key())


def _unreadable(f: Path, exc: OSError) -> ApiKeyError:
    return ApiKeyError(f"the API key file {f} cannot be read ({exc.strerror or exc}); it is not replaced, because "
                       "other devices may use the key in it: make it readable by you only (chmod 600) or delete "
                       "it to get a new key")


def regenerate() -> ApiKey:
    return _save(new_api_key())
