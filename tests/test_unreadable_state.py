"""Issue 19, item 12: a state file that cannot be *read* (mode 000: EACCES) is never saved over.

Such a file is not corrupt: what it holds (your folders, tuning results, the API key other devices
use) comes back once its mode is fixed. So the launcher uses defaults for this run, says so, and
refuses to replace it. Each command runs as a user runs it, in a child process that meets file
modes as the user does (``file_modes``: root would read the file anyway); the file is checked
byte for byte afterwards.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from llama_launcher.core.models.catalog import CACHE_VERSION
from llama_launcher.core.settings.store import SETTINGS_VERSION
from llama_launcher.core.tuning.store import STORE_VERSION

import file_modes
from gguf_factory import write_model

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Windows has no mode 000 (only a read-only flag)")


def launcher(home: Path, *args: str, timeout: float = 240):
    env = dict(os.environ, LLAMA_LAUNCHER_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return file_modes.run([sys.executable, "-m", "llama_launcher", *args], env=env, timeout=timeout)


def locked(path: Path, content: str) -> bytes:
    """Write ``content`` at ``path`` and take every permission away; the bytes, to compare later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(0o000)
    return path.read_bytes()  # the test itself runs as the user (or root): it can still read it


def unlocked(path: Path) -> bytes:
    path.chmod(0o600)
    return path.read_bytes()


def notes_of(text: str, prefix: str = "note: ") -> list[str]:
    """The lines that start with ``prefix``, without it (and without the banner's "ℹ " mark)."""
    return [ln[len(prefix):].removeprefix("ℹ ") for ln in text.splitlines() if ln.startswith(prefix)]


def assert_said_unreadable(lines: list[str], what: str, path: Path) -> None:
    about = [ln for ln in lines if ln.startswith(what) and "could not be read" in ln]
    assert len(about) == 1, lines
    assert str(path) in about[0] and "Permission denied" in about[0] and "not overwritten" in about[0], about


def test_the_rule_in_state_files(tmp_path: Path) -> None:
    """read_json says the file cannot be read; save_json refuses to replace it and says why."""
    target = tmp_path / "state.json"
    before = locked(target, json.dumps({"kept": [1, 2, 3]}))
    code = ("import json, sys; from pathlib import Path; from llama_launcher.core.state import state_files as s; "
            "p = Path(sys.argv[1]); got = s.read_json(p, 'the test file', lambda d: d); "
            "saved = s.save_json(p, {'new': 1}, 'the test file'); "
            "print(json.dumps({'got': got, 'saved': saved, 'notices': s.drain_notices()}))")
    run = file_modes.run([sys.executable, "-c", code, str(target)], timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["got"] is None and out["saved"] is False
    read_note, save_note = out["notices"]
    assert_said_unreadable([read_note], "the test file", target)
    assert save_note.startswith("the test file was not saved") and "Permission denied" in save_note
    assert "this session only" in save_note
    assert unlocked(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary left, nothing set aside


def test_an_unreadable_settings_file_survives_a_window_start(tmp_path: Path, isolated_home: Path,
                                                             llama_server: str) -> None:
    """The window starts with defaults, says so in its banner, and its save on closing keeps your folders."""
    folder = tmp_path / "my-models"
    write_model(folder / "mine.gguf", name="Mine")
    settings = isolated_home / "config" / "settings.json"
    before = locked(settings, json.dumps({"version": SETTINGS_VERSION, "folders": [str(folder)], "models": {}}))
    run = launcher(isolated_home, "--smoke-test")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert_said_unreadable(notes_of(run.stdout, "smoke test: banner: "), "The settings file", settings)  # a sentence
    assert unlocked(settings) == before  # the closing save (window geometry) did not replace it
    assert json.loads(before)["folders"] == [str(folder)]


def test_an_unreadable_model_header_cache_is_not_replaced(tmp_path: Path, isolated_home: Path) -> None:
    write_model(tmp_path / "m" / "one.gguf", name="Real Name")
    cache = isolated_home / "cache" / "model-headers.json"
    before = locked(cache, json.dumps({"version": CACHE_VERSION, "files": {}}))
    run = launcher(isolated_home, "models", "--json", str(tmp_path / "m"))
    assert run.returncode == 0, run.stderr
    assert [m["name"] for m in json.loads(run.stdout)["models"]] == ["Real Name"]
    notes = notes_of(run.stderr)
    assert_said_unreadable(notes, "the model header cache", cache)
    assert sum(n.startswith("the model header cache was not saved") for n in notes) == 1, notes
    assert unlocked(cache) == before


@pytest.mark.integration
def test_unreadable_tuning_results_survive_a_new_tune(isolated_home: Path, llama_server: str,
                                                      demo_model: Path) -> None:
    store = isolated_home / "data" / "tuning.json"
    earlier = {"methods": ["mtp"], "draft_n_max": 3, "speedup": 1.4, "margin": 0.02}
    before = locked(store, json.dumps({"version": STORE_VERSION, "results": {"/models/other.gguf|b11434|m": earlier}}))
    run = launcher(isolated_home, "tune", str(demo_model), "--binary", llama_server, "--tokens", "32",
                   "--threads", "2", "--json", timeout=600)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    notes = notes_of(run.stderr)
    assert_said_unreadable(notes, "the tuning results file", store)
    assert sum(n.startswith("the tuning result was not saved") and "this session only" in n for n in notes) == 1, notes
    assert unlocked(store) == before  # the earlier result is still there


def test_an_unreadable_api_key_is_never_replaced(tmp_path: Path, isolated_home: Path) -> None:
    """The key in the file is the one other devices hold: a new one would lock them out without a word."""
    from fake_server import make_fake_server

    binary = make_fake_server(tmp_path / "bin", "b11434-current")
    model = write_model(tmp_path / "m" / "one.gguf")
    key_file = isolated_home / "config" / "api-key.txt"
    before = locked(key_file, "ll-" + "k" * 40 + "\n")
    run = launcher(isolated_home, "plan", str(model), "--binary", str(binary), "--lan")
    assert run.returncode == 2, (run.stdout, run.stderr)
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in run.stderr, run.stderr
    assert str(key_file) in errors[0] and "Permission denied" in errors[0] and "delete it" in errors[0]
    assert unlocked(key_file) == before


def test_an_unreadable_api_key_at_a_window_start_with_lan_on(isolated_home: Path, llama_server: str) -> None:
    settings = isolated_home / "config" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"version": SETTINGS_VERSION, "lan": True}))
    key_file = isolated_home / "config" / "api-key.txt"
    before = locked(key_file, "ll-" + "k" * 40 + "\n")
    run = launcher(isolated_home, "--smoke-test")
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    banner = [ln for ln in run.stdout.splitlines() if ln.startswith("smoke test: banner: ")]
    assert len(banner) == 1, run.stdout
    assert banner[0].startswith(f"smoke test: banner: ⚠ The API key file {key_file} cannot be read (Permission denied)")
    assert unlocked(key_file) == before
