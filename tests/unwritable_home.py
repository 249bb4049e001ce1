"""Run a launcher command with a home folder it cannot write: read-only, or on a full disk.

Where the kernel allows it (Linux, as root: a private mount namespace), the home is a real
tmpfs, remounted read-only (EROFS) or filled to the last byte (ENOSPC), visible only to that
one command. Elsewhere: a read-only folder (chmod 0555, which binds any user but root), or a
home below a regular *file*, where every mkdir fails (ENOTDIR) - the one stand-in that works
for everyone on every system. ``how`` says which was used, so a test can name it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

KINDS = ("read-only", "full")

_READ_ONLY = 'mount -t tmpfs -o size=4m,mode=0755 llama-home "$0" && mount -o remount,ro "$0" && exec "$@"'
_FULL = ('mount -t tmpfs -o size=64k,mode=0755 llama-home "$0" && '
         '{ cat /dev/zero > "$0/filler" 2>/dev/null; true; } && exec "$@"')


@functools.cache
def mount_namespaces() -> bool:
    """Whether ``unshare -m`` can give one command its own mounts (Linux, root)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def prepare(kind: str, base: Path) -> tuple[Path, list[str], str]:
    """(the home to set as LLAMA_LAUNCHER_HOME, an argv prefix to run the command under, how)."""
    home = base / "home"
    if mount_namespaces():
        home.mkdir(parents=True, exist_ok=True)
        script = _READ_ONLY if kind == "read-only" else _FULL
        how = "a read-only tmpfs (EROFS)" if kind == "read-only" else "a full tmpfs (ENOSPC)"
        return home, ["unshare", "-m", "sh", "-c", script, str(home)], how
    if kind == "read-only" and os.name == "posix" and os.geteuid() != 0:
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o555)
        return home, [], "a folder with mode 0555 (EACCES)"
    blocker = base / "a-file"
    blocker.write_text("a regular file where the home's parent should be\n")
    return blocker / "home", [], "a home below a regular file (ENOTDIR)"


def popen(kind: str, base: Path, args: list[str], **kw) -> tuple[subprocess.Popen[str], str]:
    home, prefix, how = prepare(kind, base)
    env = dict(os.environ, LLAMA_LAUNCHER_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "llama_launcher", *args], env=env, text=True, **kw)
    return proc, how
