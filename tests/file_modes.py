"""Run a command that meets file modes as an ordinary user does, even when the tests run as root.

Root opens any file whatever its mode (the capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH),
so a test of a mode-000 file run as root would pass for the wrong reason. Under root the command
runs through ``setpriv`` with those two capabilities dropped from its bounding set: it keeps its
uid, so it still reads the checkout, the virtual environment and the test's own folders (root's
files, wherever they are, inside a 0700 folder such as ``mktemp -d`` makes too), while a file or
folder with mode 000 fails with EACCES exactly as it does for the user. (Running as another uid
instead made the checkout itself unreadable whenever it was cloned into a private folder.)

For any other user nothing needs dropping: the prefix is empty. Windows has no mode 000 (a file
is only marked read-only); the tests that use this are POSIX-only.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DROP = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


@functools.cache
def prefix() -> list[str]:
    """The argv prefix under which a command meets file modes (empty when it already does)."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        raise RuntimeError("the tests run as root and need setpriv (util-linux) to drop root's file access")
    with tempfile.TemporaryDirectory() as tmp:  # proof that it works here: a mode-000 file must not open
        locked = Path(tmp) / "locked"
        locked.write_text("x")
        locked.chmod(0)
        probe = subprocess.run([*DROP, sys.executable, "-c", "import sys; open(sys.argv[1]).read()", str(locked)],
                               capture_output=True, text=True, timeout=60)
    if "PermissionError" not in probe.stderr:
        raise RuntimeError(f"setpriv could not drop root's file access: {probe.stderr.strip()[-300:]}")
    return list(DROP)


def run(argv: list[str], **kw) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` of ``argv`` meeting file modes; text output captured unless told otherwise."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run([*prefix(), *argv], **kw)


def popen(argv: list[str], **kw) -> subprocess.Popen[str]:
    kw.setdefault("text", True)
    return subprocess.Popen([*prefix(), *argv], **kw)
