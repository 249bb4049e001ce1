"""Measured speculative settings, stored per (model file, binary build, machine).

A fixed table cannot know that MTP is slower on some Macs or on small models; ``tune`` measures
it on the user's machine and the planner's Auto uses the fastest measured setting afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core import paths

STORE_VERSION = 1


@dataclass
class TunedChoice:
    setting: str  # "off", "ngram", "mtp", "mtp+ngram"
    draft_n_max: int | None
    speedup: float  # decode t/s of the choice / decode t/s with speculation off
    measured_at: str = ""
    table: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        label = {"off": "off", "ngram": "ngram-mod", "mtp": "MTP", "mtp+ngram": "MTP + ngram-mod"}.get(self.setting, self.setting)
        if self.draft_n_max and "mtp" in self.setting:
            label += f" n={self.draft_n_max}"
        pct = (self.speedup - 1.0) * 100
        return f"measured: {label}, {pct:+.0f}% vs off"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def machine_id() -> str:
    """A stable, non-identifying id for 'this machine' (CPU model, cores, OS); computed once per process."""
    from llama_launcher.core.hardware import cpu_name

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


def _store_file() -> Path:
    return paths.data_dir() / "tuning.json"


def _load() -> dict[str, Any]:
    try:
        data = json.loads(_store_file().read_text(encoding="utf-8"))
        if data.get("version") == STORE_VERSION and isinstance(data.get("results"), dict):
            return dict(data["results"])
    except (OSError, ValueError, AttributeError):
        pass
    return {}


def lookup(model_path: str, build: int | str | None, machine: str | None = None) -> TunedChoice | None:
    hit = _load().get(store_key(model_path, build, machine))
    if not isinstance(hit, dict):
        return None
    try:
        return TunedChoice(**{k: v for k, v in hit.items() if k in TunedChoice.__dataclass_fields__})
    except TypeError:
        return None


def save(model_path: str, build: int | str | None, choice: TunedChoice, machine: str | None = None) -> Path:
    results = _load()
    results[store_key(model_path, build, machine)] = choice.to_dict()
    target = paths.ensure(paths.data_dir()) / "tuning.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": STORE_VERSION, "results": results}, indent=1), encoding="utf-8")
    os.replace(tmp, target)
    return target
