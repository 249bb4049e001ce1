"""Which model file and which machine a stored result belongs to.

Tuning results and memory measurements are only true for one model file, one llama-server build
and one machine; both stores key their entries the same way, defined here once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
from pathlib import Path

from llama_launcher.core.host.hardware import cpu_name


@functools.lru_cache(maxsize=1)
def machine_id() -> str:
    """A stable, non-identifying id for 'this machine' (CPU model, cores, OS); computed once per process."""
    raw = f"{cpu_name()}|{os.cpu_count()}|{platform.system()}|{platform.machine()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def model_key(model_path: str) -> str:
    p = Path(model_path)
    try:
        st = p.stat()
        return f"{p.resolve()}|{st.st_size}"
    except OSError:
        return str(p)


def store_key(model_path: str, build: int | str | None, machine: str | None = None) -> str:
    return f"{model_key(model_path)}|b{build}|{machine or machine_id()}"
