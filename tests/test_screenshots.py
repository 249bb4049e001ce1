"""scripts/screenshots.py runs in CI and the docs' pictures are its output (issue 24).

It drives the real window offscreen, with the real llama-server and the demo model: a first start on
an empty computer, a launch, the Live panel during another program's request, Try it, the logs and a
real Tune. This test runs it into a folder of its own and checks each picture is there, the size the
window had, and not blank; and that docs/screenshots holds exactly those pictures, at those sizes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "screenshots.py"
DOCS = ROOT / "docs" / "screenshots"
SIZES = {"launch-setup-1024": (1024, 640), "live-1024": (1024, 640)}
WINDOW = (1280, 820)


def script_names() -> list[str]:
    """The pictures the script promises (its NAMES), read from its source without running it."""
    text = SCRIPT.read_text(encoding="utf-8")
    start = text.index("NAMES = (")
    return [n.strip().strip('"') for n in text[start + 9: text.index(")", start)].replace("\n", " ").split(",")
            if n.strip()]


def colours(image: QImage) -> int:
    """Distinct colours on a grid of samples: a blank or one-colour grab has a handful."""
    seen = {image.pixel(x, y) for x in range(0, image.width(), 16) for y in range(0, image.height(), 16)}
    return len(seen)


def test_the_docs_pictures_are_the_scripts_output() -> None:
    names = script_names()
    assert "first-start" in names and "live-outside" in names and "tune-result" in names
    assert sorted(p.stem for p in DOCS.glob("*.png")) == sorted(names)
    for name in names:
        image = QImage(str(DOCS / f"{name}.png"))
        assert not image.isNull(), name
        if name != "tune-confirm":  # the question Tune asks is a dialog, not the window
            assert (image.width(), image.height()) == SIZES.get(name, WINDOW), name


@pytest.mark.integration
def test_the_screenshots_script_runs_offscreen(tmp_path: Path, llama_server: str, demo_model: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    out = tmp_path / "shots"
    run = subprocess.run([sys.executable, str(SCRIPT), str(out)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert "Traceback" not in run.stderr
    for name in script_names():
        path = out / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 10_000, name
        image = QImage(str(path))
        assert colours(image) > 20, name  # text, controls, a chart: not an empty grab
        if name != "tune-confirm":
            assert (image.width(), image.height()) == SIZES.get(name, WINDOW), name
