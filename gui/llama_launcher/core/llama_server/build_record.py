"""The record beside each llama-server in the launcher's cache: ``build_info.json``.

``get-server --build`` (``core/llama_server/provisioning.py``) and the release download
(``core/llama_server/download.py``) write it; discovery (``core/llama_server/discovery.py``) reads it to say
where a cached build came from. Reading goes through :func:`state_files.read_json`: bounded in
size, validated, and a corrupt record is moved aside with a notice. A record says which of the
two made the build: a release download has ``"source": "llama.cpp release"``; anything else
(including records written before that key existed) is the launcher's own source build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_launcher.core.state import state_files

BUILD_INFO = "build_info.json"
WHAT = "the llama-server build record"
MAX_BYTES = 1024 * 1024  # a record is a few hundred bytes; the asset list of a release is the biggest part
RELEASE_SOURCE = "llama.cpp release"
SOURCE_BUILD = "built from source"


def record_path(folder: Path) -> Path:
    return folder / BUILD_INFO


def _valid(data: Any) -> dict[str, Any]:
    return dict(state_files.expect(data, dict, BUILD_INFO))


def read(folder: Path) -> dict[str, Any] | None:
    """The record in ``folder`` (None when there is none; a corrupt one is moved aside with a notice)."""
    return state_files.read_json(record_path(folder), WHAT, _valid, max_bytes=MAX_BYTES)


def write(folder: Path, info: dict[str, Any]) -> None:
    """Write the record into ``folder`` atomically; raises ``OSError``."""
    state_files.write_json(record_path(folder), info, indent=1)


def save(folder: Path, info: dict[str, Any]) -> bool:
    """:func:`write` that reports a failure as a notice instead of raising."""
    return state_files.save_json(record_path(folder), info, WHAT, indent=1)


def is_release(info: dict[str, Any] | None) -> bool:
    """True for a record written by the release download."""
    return info is not None and info.get("source") == RELEASE_SOURCE


def is_source_build(info: dict[str, Any] | None) -> bool:
    """True for a record written by ``get-server --build`` (a missing record says nothing: False)."""
    return info is not None and not is_release(info)
