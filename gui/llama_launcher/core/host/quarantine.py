"""macOS: take the quarantine mark off a llama.cpp build the launcher downloaded and checked itself.

macOS tags downloaded files with the ``com.apple.quarantine`` extended attribute; an unsigned binary
that carries it and is started from an app is killed by Gatekeeper ("Killed: 9"), a common
complaint against launchers. The launcher verified the build's size and SHA-256 digest itself, so
it removes the mark from the whole folder (``xattr -dr com.apple.quarantine``) before the first
start. This is the only place that does it; on other systems it does nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from llama_launcher.core.host.process_env import child_env, no_window_flags

ATTRIBUTE = "com.apple.quarantine"
XATTR = "/usr/bin/xattr"
IS_MACOS = sys.platform == "darwin"  # tests switch this on to drive the macOS path with a fake xattr


def clear(folder: Path) -> str | None:
    """Remove the quarantine mark from every file under ``folder``; the line for the log (None when
    the system has no such mark)."""
    if not IS_MACOS:
        return None
    exe = shutil.which("xattr") or XATTR
    try:
        run = subprocess.run(  # noqa: S603 - argv list, no shell
            [exe, "-dr", ATTRIBUTE, str(folder)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=child_env(), timeout=60, creationflags=no_window_flags(),
            text=True, errors="replace")
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not remove macOS's quarantine mark ({ATTRIBUTE}) from {folder}: {exc}; " \
               "macOS may refuse to start llama-server"
    out = run.stdout.strip()
    if run.returncode != 0 and "No such xattr" not in out:
        last = out.splitlines()[-1][:200] if out else f"exit {run.returncode}"
        return f"could not remove macOS's quarantine mark ({ATTRIBUTE}) from {folder}: {last}; " \
               "macOS may refuse to start llama-server"
    return f"removed macOS's quarantine mark ({ATTRIBUTE}) from the downloaded build, so macOS lets it start"
