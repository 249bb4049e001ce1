"""Per-user folders of the launcher (platformdirs), with one override for tests and portable use.

``LLAMA_LAUNCHER_HOME`` puts every folder under one directory, so a test session (or a user who
wants a portable install) never touches the real per-user folders. The llama-server build cache
has its own override, ``LLAMA_LAUNCHER_SERVER_CACHE``, because rebuilding takes minutes.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from llama_launcher import APP_NAME


def _home() -> Path | None:
    value = os.environ.get("LLAMA_LAUNCHER_HOME")
    return Path(value) if value else None


def _dir(kind: str) -> Path:
    home = _home()
    if home is not None:
        path = home / kind
    else:
        path = Path(
            {
                "config": platformdirs.user_config_dir(APP_NAME, appauthor=False),
                "data": platformdirs.user_data_dir(APP_NAME, appauthor=False),
                "cache": platformdirs.user_cache_dir(APP_NAME, appauthor=False),
                "logs": platformdirs.user_log_dir(APP_NAME, appauthor=False),
                "state": platformdirs.user_state_dir(APP_NAME, appauthor=False),
            }[kind]
        )
    return path


def config_dir() -> Path:
    return _dir("config")


def data_dir() -> Path:
    return _dir("data")


def cache_dir() -> Path:
    return _dir("cache")


def log_dir() -> Path:
    return _dir("logs")


def state_dir() -> Path:
    return _dir("state")


def server_cache_dir() -> Path:
    """Where ``get-server`` installs the llama-server it builds (kept across test sessions)."""
    value = os.environ.get("LLAMA_LAUNCHER_SERVER_CACHE")
    if value:
        return Path(value)
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "llama-server"


def demo_model_dir() -> Path:
    value = os.environ.get("LLAMA_LAUNCHER_DEMO_DIR")
    if value:
        return Path(value)
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "demo-model"


def ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
