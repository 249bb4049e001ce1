"""Settings that survive restarts: global ones (folders, binary, window) and per-model ones.

One JSON file in the config folder, written atomically. A corrupt file never costs the user their
settings silently: it is moved aside (``settings.json.corrupt-<time>``), defaults are used, and the
window shows a notice naming the moved file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core import paths

SETTINGS_VERSION = 1


@dataclass
class ModelSettings:
    """What the user chose for one model file."""

    mtp: str = "auto"
    ngram_mod: str = "auto"
    draft_n_max: int | None = None
    ngram_n_match: int = 24
    ngram_n_min: int = 48
    ngram_n_max: int = 64
    ctx: int | None = None
    threads: int | None = None
    gpu_layers: int | None = None
    extra_args: str = ""
    vision: bool = False


@dataclass
class AppSettings:
    folders: list[str] = field(default_factory=list)
    binary: str | None = None
    lan: bool = False
    window_geometry: str | None = None  # base64 of QWidget.saveGeometry()
    window_state: str | None = None
    last_model: str | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    def model(self, path: str) -> ModelSettings:
        data = self.models.get(path) or {}
        known = {k: v for k, v in data.items() if k in ModelSettings.__dataclass_fields__}
        try:
            return ModelSettings(**known)
        except TypeError:
            return ModelSettings()

    def set_model(self, path: str, settings: ModelSettings) -> None:
        self.models[path] = asdict(settings)


def settings_file() -> Path:
    return paths.config_dir() / "settings.json"


def _valid_model_settings(data: Any) -> bool:
    return isinstance(data, dict) and all(isinstance(k, str) and isinstance(v, dict) for k, v in data.items())


def load() -> tuple[AppSettings, str | None]:
    """(settings, notice). The notice is a one-line message when the file had to be set aside."""
    f = settings_file()
    try:
        raw = f.read_text(encoding="utf-8")
    except FileNotFoundError:
        return AppSettings(), None
    except OSError as exc:
        return AppSettings(), f"settings could not be read ({exc.strerror or exc}); using defaults"
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        s = AppSettings()
        folders = data.get("folders", [])
        if not isinstance(folders, list) or not all(isinstance(x, str) for x in folders):
            raise ValueError("folders")
        s.folders = folders
        for key in ("binary", "window_geometry", "window_state", "last_model"):
            v = data.get(key)
            if v is not None and not isinstance(v, str):
                raise ValueError(key)
            setattr(s, key, v)
        s.lan = bool(data.get("lan", False))
        models = data.get("models", {})
        if not _valid_model_settings(models):
            raise ValueError("models")
        s.models = models
        return s, None
    except (ValueError, TypeError):
        aside = f.with_name(f"settings.json.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(f, aside)
            where = f"moved to {aside}"
        except OSError:
            where = "left in place"
        return AppSettings(), f"the settings file was corrupt and has been {where}; using defaults"


def save(settings: AppSettings) -> None:
    target = paths.ensure(paths.config_dir()) / "settings.json"
    data = {"version": SETTINGS_VERSION, **asdict(settings)}
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, target)
