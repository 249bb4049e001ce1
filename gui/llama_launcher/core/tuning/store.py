"""Measured speculative settings, stored per (model file, binary build, machine).

A fixed table cannot know that MTP is slower on some Macs or on small models; ``tune`` measures
it on the user's machine and the planner's Auto uses the fastest measured setting afterwards.
The file may be torn or edited by hand: it is validated on load, and a corrupt one is set aside
(with a notice) before a new result is written, so no earlier result is lost silently.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core.speculative.methods import combo_label, parse_combo
from llama_launcher.core.state import paths, state_files

STORE_VERSION = 2  # 2: methods as spec_methods ids, margin, draft model


@dataclass
class TunedChoice:
    methods: tuple[str, ...]  # spec_methods ids; () is "off"
    draft_n_max: int | None
    speedup: float  # decode t/s of the choice / decode t/s with speculation off
    margin: float = 0.0  # the measurement noise of that ratio (± this much)
    # Always None: tune measures the drafter the plan picks, and a launch picks it again (no file is
    # stored). Kept because stored results and `tune --json` (docs/cli.md) have carried the key.
    draft_model: str | None = None
    measured_at: str = ""
    table: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""  # e.g. "MTP n=2 was as fast within the noise: the simpler ngram-mod is used"

    def label(self) -> str:
        return combo_label(self.methods, self.draft_n_max)

    @property
    def off_tps(self) -> float | None:
        """The decode t/s measured without speculation, where the table has it."""
        off = next((r.get("mean_tps") for r in self.table if r.get("setting") == "off"), None)
        return float(off) if isinstance(off, (int, float)) and not isinstance(off, bool) else None

    def describe(self) -> str:
        pct = (self.speedup - 1.0) * 100
        margin = f" ± {self.margin * 100:.0f}%" if self.margin >= 0.005 else ""
        return f"measured: {self.label()}, {pct:+.0f}%{margin} vs off"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["methods"] = list(self.methods)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> TunedChoice:
        """Validate one stored result; raises ValueError/TypeError/KeyError when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("a stored result is not an object")
        if "methods" in data:
            methods = data["methods"]
            if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
                raise ValueError("methods must be a list of names")
            ids = parse_combo("+".join(methods))
        else:  # version 1: "off", "ngram", "mtp", "mtp+ngram"
            ids = parse_combo(str(data["setting"]))
        n = data.get("draft_n_max")
        speedup = data["speedup"]
        if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
            raise ValueError("draft_n_max must be a whole number")
        if isinstance(speedup, bool) or not isinstance(speedup, (int, float)) or not math.isfinite(speedup):
            raise ValueError("speedup must be a number")
        margin = data.get("margin", 0.0)
        margin = float(margin) if isinstance(margin, (int, float)) and not isinstance(margin, bool) else 0.0
        table = data.get("table", [])
        draft = data.get("draft_model")
        return cls(ids, n, float(speedup), margin if math.isfinite(margin) else 0.0,
                   draft if isinstance(draft, str) else None, str(data.get("measured_at", "")),
                   [r for r in table if isinstance(r, dict)] if isinstance(table, list) else [],
                   str(data.get("note", "")))


@functools.lru_cache(maxsize=1)
def machine_id() -> str:
    """A stable, non-identifying id for 'this machine' (CPU model, cores, OS); computed once per process."""
    from llama_launcher.core.host.hardware import cpu_name

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


def save(model_path: str, build: int | str | None, choice: TunedChoice, machine: str | None = None) -> Path:
    """Store one result beside the others (a corrupt file is set aside first by ``_load``)."""
    results = _load()
    results[store_key(model_path, build, machine)] = choice.to_dict()
    target = store_file()
    state_files.save_json(target, {"version": STORE_VERSION, "results": results}, "the tuning result", indent=1)
    return target
