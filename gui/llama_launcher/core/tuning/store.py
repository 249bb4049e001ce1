"""Measured speculative settings, stored per (model file, binary build, machine).

A fixed table cannot know that MTP is slower on some Macs or on small models; ``tune`` measures
it on the user's machine and the planner's Auto uses the fastest measured setting afterwards.
The file may be torn or edited by hand: it is validated on load, and a corrupt one is set aside
(with a notice) before a new result is written, so no earlier result is lost silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_launcher.core.host.identity import store_key
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.state import paths, state_files

STORE_VERSION = 2  # 2: methods as spec_methods ids, margin, draft model


def store_file() -> Path:
    return paths.data_dir() / "tuning.json"


def _validate(data: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict) or data.get("version") not in (1, STORE_VERSION):
        raise state_files.StateFileError("not a tuning store of a known version")
    results = data.get("results")
    if not isinstance(results, dict):
        raise state_files.StateFileError("results is not an object")
    for key, value in results.items():
        TunedChoice.from_dict(value)  # raises for a bad entry: the whole file is set aside, not half-used
        if not isinstance(key, str):
            raise state_files.StateFileError("a key is not text")
    return {k: v for k, v in results.items()}


def _load() -> dict[str, dict[str, Any]]:
    return state_files.read_json(store_file(), "the tuning results file", _validate) or {}


def lookup(model_path: str, build: int | str | None, machine: str | None = None) -> TunedChoice | None:
    hit = _load().get(store_key(model_path, build, machine))
    return TunedChoice.from_dict(hit) if hit is not None else None


def save(model_path: str, build: int | str | None, choice: TunedChoice, machine: str | None = None) -> Path | None:
    """Store one result beside the others (a corrupt file is set aside first by ``_load``); the file
    it is in, or None when it could not be saved (a notice says why)."""
    results = _load()
    results[store_key(model_path, build, machine)] = choice.to_dict()
    target = store_file()
    if not state_files.save_json(target, {"version": STORE_VERSION, "results": results}, "the tuning result",
                                 indent=1):
        return None
    return target
