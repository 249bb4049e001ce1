"""The LAN API key: generated once, kept in the config folder (owner-only), shown to the user."""

from __future__ import annotations

import os
import secrets
import sys

from llama_launcher.core import paths


def new_api_key() -> str:
    return "ll-" + secrets.token_urlsafe(24)


def _file():
    return paths.config_dir() / "api-key.txt"


def load_or_create() -> str:
    f = _file()
    try:
        key = f.read_text(encoding="utf-8").strip()
        if key:
            return key
    except OSError:
        pass
    return regenerate()


def regenerate() -> str:
    key = new_api_key()
    f = _file()
    try:
        paths.ensure(f.parent)
        f.write_text(key, encoding="utf-8")
        if sys.platform != "win32":
            os.chmod(f, 0o600)
    except OSError:
        pass
    return key
