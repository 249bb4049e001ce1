"""The frozen app (PyInstaller) carries every resource, Qt plugin and data file: it passes --smoke-test."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.packaging


def test_icons_are_rendered_from_the_svg(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "packaging" / "make_icons.py"), str(tmp_path)], check=True, timeout=120)
    ico = (tmp_path / "app.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", ico)
    assert (reserved, kind, count) == (0, 1, 7)
    first_offset = struct.unpack_from("<I", ico, 6 + 12)[0]
    assert ico[first_offset:first_offset + 8] == b"\x89PNG\r\n\x1a\n"
    icns = (tmp_path / "app.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack_from(">I", icns, 4)[0] == len(icns)
    assert b"ic10" in icns and b"\x89PNG" in icns[8:24]


def test_frozen_app_smoke_test_with_bundled_server(tmp_path: Path, llama_server: str) -> None:
    pytest.importorskip("PyInstaller", reason="PyInstaller is a dev dependency: pip install -e '.[dev]'")
    out = subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--dist", str(tmp_path / "dist"),
                          "--work", str(tmp_path / "work"), "--bundle-server", llama_server],
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "smoke test: main window built; llama-server" in out.stdout
    bundled = tmp_path / "dist" / "llama-launcher" / "_internal" / "llama-server"
    assert str(bundled) in out.stdout  # the app prefers the llama-server shipped inside it
    assert "build 11434" in out.stdout
    assert (tmp_path / "dist" / "llama-launcher" / "_internal" / "resources" / "icons" / "app.svg").is_file()
    # the CLI imports each command when it runs: the frozen app must carry every command's module
    frozen = tmp_path / "dist" / "llama-launcher" / ("llama-launcher.exe" if sys.platform == "win32" else "llama-launcher")
    listed = subprocess.run([str(frozen), "probe", "--json"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and '"build_number": 11434' in listed.stdout, listed.stderr[-2000:]
