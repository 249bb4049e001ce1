"""``llama-launcher serve --json`` in a child process, and its events read line by line.

The CLI prints one JSON object per event (``docs/cli.md``); tests that drive serve end to end read
them until the one they wait for.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def serve_json(binary: str | Path, model: Path, *extra: str, ready_timeout: int = 60) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "llama_launcher", "serve", str(model), "--binary", str(binary),
                             "--json", "--quiet", "--ready-timeout", str(ready_timeout), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def events_until(proc: subprocess.Popen[str], *until: str, timeout: float = 90) -> list[dict]:
    """The events up to and including the first whose name is in ``until`` (or all, if the output ends first)."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        got.append(json.loads(line))
        if got[-1]["event"] in until:
            break
    return got
