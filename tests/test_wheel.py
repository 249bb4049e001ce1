"""The built wheel works on its own: resources inside, entry point, --version, get-server, --smoke-test."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)], check=True,
                   timeout=600)
    wheels = list(out.glob("llama_launcher-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_contains_package_and_resources(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "llama_launcher/resources/icons/app.svg" in names
    assert "llama_launcher/resources/styles/app.qss" in names
    assert "llama_launcher/core/plan/planner.py" in names and "llama_launcher/ui/main_window.py" in names
    assert not any(n.endswith((".gguf", "llama-server")) for n in names)


@pytest.mark.slow
def test_installed_wheel_runs_in_a_fresh_virtual_environment(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / ("python.exe" if os.name == "nt" else "python")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], check=True,
                   timeout=900)
    exe = bindir / ("llama-launcher.exe" if os.name == "nt" else "llama-launcher")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONPATH", None)
    cwd = tmp_path  # not the checkout: resources must come from the installed wheel
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("llama-launcher ")
    located = subprocess.run([str(py), "-c", "import llama_launcher.ui.resources as r; print(r.resources_dir())"],
                             capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    assert str(env_dir) in located.stdout, located.stdout + located.stderr
    server = subprocess.run([str(exe), "get-server"], capture_output=True, text=True, env=env, cwd=cwd, timeout=1800)
    assert server.returncode == 0, server.stderr
    assert "llama-server" in server.stdout
    smoke = subprocess.run([str(exe), "--smoke-test"], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert smoke.returncode == 0, smoke.stderr
    assert "main window built" in smoke.stdout
