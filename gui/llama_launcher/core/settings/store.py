"""Settings that survive restarts: global ones (folders, binary, network, window) and per-model ones.

One JSON file in the config folder, written atomically. The file is user-editable, so every field
is parsed with its type checked: ``"lan": "false"`` is not true, it is a wrong value that falls back
to the default with a notice. A file that cannot be parsed at all is moved aside
(``settings.json.corrupt-<time>``) before anything is written over it, and the window says where.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core.settings.launch import AUTO_PORT, ModelSettings, load_fields
from llama_launcher.core.state import paths, state_files

SETTINGS_VERSION = 2  # 2: speculative modes per method (was mtp / ngram_mod fields)
MAX_MODELS = 10_000


@dataclass
class AppSettings:
    folders: list[str] = field(default_factory=list)
    binary: str | None = None
    lan: bool = False
    port: int = AUTO_PORT  # AUTO_PORT: Auto (the port below while it is free); else this number, every time
    auto_port: int = 0  # the port Auto used last (0: none yet): kept across starts while it is free
    window_geometry: str | None = None  # base64 of QWidget.saveGeometry()
    window_state: str | None = None
    last_model: str | None = None
    models: dict[str, ModelSettings] = field(default_factory=dict)

    def model(self, path: str) -> ModelSettings:
        return dataclasses.replace(self.models.get(path) or ModelSettings())

    def set_model(self, path: str, settings: ModelSettings) -> None:
        self.models[path] = dataclasses.replace(settings)


def settings_file() -> Path:
    return paths.config_dir() / "settings.json"


def _migrate_model(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 stored ``mtp`` and ``ngram_mod`` as fields of their own."""
    if "modes" in data or not ({"mtp", "ngram_mod"} & set(data)):
        return data
    out = {k: v for k, v in data.items() if k not in ("mtp", "ngram_mod")}
    out["modes"] = {mid: data[key] for key, mid in (("mtp", "mtp"), ("ngram_mod", "ngram-mod"))
                    if isinstance(data.get(key), str) and data[key] != "auto"}
    return out


class _Loaded:
    """The validator's result: the settings and the one-line problems found on the way."""

    def __init__(self, settings: AppSettings, problems: list[str]) -> None:
        self.settings, self.problems = settings, problems


def _validate(data: Any) -> _Loaded:
    if not isinstance(data, dict):
        raise state_files.StateFileError("not a settings object")
    raw_models = data.get("models", {})
    top = {k: v for k, v in data.items() if k not in ("models", "version")}
    settings, problems = load_fields(AppSettings, top, "settings")
    if not 0 <= settings.port <= 65535:
        problems.append(f"settings: port {settings.port} is not a port; Auto is used")
        settings.port = AUTO_PORT
    if not 0 <= settings.auto_port <= 65535:
        problems.append(f"settings: auto_port {settings.auto_port} is not a port; Auto picks a new one")
        settings.auto_port = 0
    settings.models = {}
    if not isinstance(raw_models, dict):
        problems.append("settings: the per-model settings are not an object; they are reset")
        raw_models = {}
    for path, ms in list(raw_models.items())[:MAX_MODELS]:
        if not isinstance(path, str):
            continue
        model, bad = load_fields(ModelSettings, _migrate_model(ms) if isinstance(ms, dict) else ms,
                                 f"settings for {Path(path).name}")
        settings.models[path] = model
        problems += bad
    return _Loaded(settings, problems)


def load() -> AppSettings:
    """The stored settings; what had to be set aside or reset is queued as notices (state_files)."""
    loaded = state_files.read_json(settings_file(), "the settings file", _validate)
    if loaded is None:
        return AppSettings()
    for problem in loaded.problems:
        state_files.notice(problem)
    return loaded.settings


def to_json(settings: AppSettings) -> dict[str, Any]:
    return {"version": SETTINGS_VERSION, **dataclasses.asdict(settings)}


def save(settings: AppSettings) -> bool:
    """Write the settings; False (with a notice, once) when the folder cannot be written."""
    return state_files.save_json(settings_file(), to_json(settings), "your settings", indent=1)
