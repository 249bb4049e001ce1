"""What speculation stopped from loading: remembered per (model file, llama-server binary) until the binary changes.

When a launch only came up once speculation was turned off (``core/plan/fallback.py``), Auto must not
walk into the same crash at the next launch; a new llama-server may well have fixed it, so the entry
holds the binary's size and modification time and counts only while they are the same. The user's
On still tries again (an explicit choice beats the memory). The file is a state file like the
others: validated on load, a corrupt one set aside with a notice.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core.speculative.methods import BY_ID, combo_label
from llama_launcher.core.state import paths, state_files
from llama_launcher.core.state.typed_json import check_value

STORE_VERSION = 1
MAX_ENTRIES = 500  # oldest dropped beyond this: a file that grows with every model ever tried stays bounded


@dataclass
class Remembered:
    methods: list[str]
    reason: str  # the failure in one line ("tensor 'blk.2.nextn.enorm.weight' not found")
    when: str
    binary_size: int
    binary_mtime_ns: int
    evidence: list[str] = field(default_factory=list)


def store_file() -> Path:
    return paths.data_dir() / "speculation-fallbacks.json"


def _key(model_path: str, binary: str) -> str:
    return f"{os.path.realpath(model_path)}|{os.path.realpath(binary)}"


def _fingerprint(binary: str) -> tuple[int, int] | None:
    try:
        st = os.stat(binary)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _validate(data: Any) -> dict[str, Remembered]:
    if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
        raise state_files.StateFileError("not a speculation fallback file of a known version")
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise state_files.StateFileError("entries is not an object")
    out = {}
    for key, value in entries.items():
        try:
            entry = check_value("an entry", Remembered, value)
        except ValueError as exc:
            raise state_files.StateFileError(str(exc)) from None
        if not all(m in BY_ID for m in entry.methods):
            raise state_files.StateFileError("an entry names an unknown speculative method")
        out[key] = entry
    return out


def _load() -> dict[str, Remembered]:
    return state_files.read_json(store_file(), "the speculation fallback file", _validate) or {}


def remember(model_path: str, binary: str, methods: list[str], reason: str, evidence: list[str]) -> None:
    """Keep that ``methods`` stopped ``model_path`` from loading with ``binary`` (a failed write: a notice)."""
    fp = _fingerprint(binary)
    if fp is None or not methods:
        return
    entries = _load()
    entries[_key(model_path, binary)] = Remembered(list(methods), reason[:300], time.strftime("%Y-%m-%d %H:%M"),
                                                   fp[0], fp[1], [e[:300] for e in evidence[:3]])
    kept = sorted(entries.items(), key=lambda kv: kv[1].when)[-MAX_ENTRIES:]
    state_files.save_json(store_file(), {"version": STORE_VERSION,
                                         "entries": {k: vars(v) for k, v in kept}},
                          "the speculation fallback file", indent=1)


def avoided(model_path: str, binary: str) -> dict[str, str]:
    """The methods Auto leaves off for this model and binary, each with the reason in words; empty when
    nothing is remembered or the binary changed since."""
    entry = _load().get(_key(model_path, binary))
    if entry is None or _fingerprint(binary) != (entry.binary_size, entry.binary_mtime_ns):
        return {}
    what = combo_label(entry.methods)
    why = (f"{what} stopped this model from loading with this llama-server ({entry.when}: {entry.reason}); Auto "
           "leaves it off until llama-server changes — set it On to try again")
    return {m: why for m in entry.methods}


def forget(model_path: str, binary: str) -> None:
    entries = _load()
    if entries.pop(_key(model_path, binary), None) is not None:
        state_files.save_json(store_file(), {"version": STORE_VERSION,
                                             "entries": {k: vars(v) for k, v in entries.items()}},
                              "the speculation fallback file", indent=1)
