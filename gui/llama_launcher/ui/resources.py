"""Find icons and styles in a development checkout, an installed wheel, or a frozen app.

The wheel carries ``resources/`` as ``llama_launcher/resources``; a checkout keeps it at the
repository root; a PyInstaller bundle puts it under ``sys._MEIPASS``.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtGui import QIcon


@lru_cache(maxsize=1)
def resources_dir() -> Path:
    package = Path(__file__).resolve().parent.parent  # llama_launcher/
    candidates = [package / "resources", package.parent.parent / "resources"]
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        candidates.insert(0, Path(frozen) / "resources")
    for c in candidates:
        if (c / "icons" / "app.svg").is_file():
            return c
    raise FileNotFoundError("the launcher's resources folder is missing (looked in: "
                            + ", ".join(str(c) for c in candidates) + ")")


def icon(name: str) -> QIcon:
    path = resources_dir() / "icons" / f"{name}.svg"
    if not path.is_file():
        raise FileNotFoundError(f"icon {name} is missing: {path}")
    return QIcon(str(path))


def stylesheet() -> str:
    return (resources_dir() / "styles" / "app.qss").read_text(encoding="utf-8")
