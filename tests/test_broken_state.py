"""Issue 12, items 12 and 13: a home that cannot be written, and state files that are broken.

The app must start and run with what it can write and say once what it cannot save; every state
file is validated when read, and a bad one is moved aside with a notice while defaults are used.
Commands run as a user runs them (a child process, the real llama-server where it matters).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from llama_launcher.core.llama_server.probe import PROBE_CACHE_VERSION
from llama_launcher.core.models.catalog import CACHE_VERSION
from llama_launcher.core.server import orphan_guard
from llama_launcher.core.state.state_files import drain_notices

from gguf_factory import write_model
from unwritable_home import KINDS, popen

HOSTILE_JSON = {
    "deep nesting": "[" * 200_000 + "]" * 200_000,
    "binary junk": bytes(range(256)) * 4,
    "a folder": None,
}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llama_launcher", *args], capture_output=True, text=True,
                          timeout=timeout)


def put(path: Path, content: str | bytes | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
        (path / "inside.txt").write_text("a folder where a state file should be")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def notes_of(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("note: ")]


def assert_set_aside(path: Path, notes: list[str], what: str) -> None:
    """One note about the state file ``what``, naming where the bad file went; it is there."""
    about = [n for n in notes if n.startswith(f"note: {what} ")]
    assert len(about) == 1, notes
    assert ("was corrupt" in about[0] and "using defaults" in about[0]) or "is a folder, not a file" in about[0]
    asides = list(path.parent.glob(path.name + ".corrupt-*"))
    assert len(asides) == 1 and str(asides[0]) in about[0], (asides, about)


# --- item 13: the model header cache ------------------------------------------------------------

def header_cache_variants(model: Path) -> dict[str, str | bytes | None]:
    good = {"size": model.stat().st_size, "mtime_ns": model.stat().st_mtime_ns}
    info = {"path": str(model), "name": "Cached", "file_name": model.name, "folder": str(model.parent)}
    return {
        "entry is a string": json.dumps({"version": CACHE_VERSION, "files": {str(model): "x"}}),
        "files is a list": json.dumps({"version": CACHE_VERSION, "files": ["x"]}),
        "name is a number": json.dumps({"version": CACHE_VERSION, "files": {str(model): {**good, "info": {**info, "name": 5}}}}),
        "size is text": json.dumps({"version": CACHE_VERSION, "files": {str(model): {"size": "big", "mtime_ns": 1, "info": info}}}),
        "parts is a string": json.dumps({"version": CACHE_VERSION, "files": {str(model): {**good, "info": {**info, "split_parts": "ab"}}}}),
        **HOSTILE_JSON,
    }


@pytest.mark.parametrize("variant", list(header_cache_variants(Path(__file__)).keys()))
def test_models_with_a_broken_header_cache(tmp_path: Path, isolated_home: Path, variant: str) -> None:
    model = write_model(tmp_path / "m" / "one.gguf", name="Real Name")
    cache = isolated_home / "cache" / "model-headers.json"
    put(cache, header_cache_variants(model)[variant])
    run = cli("models", "--json", str(tmp_path / "m"))
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    out = json.loads(run.stdout)
    assert [m["name"] for m in out["models"]] == ["Real Name"]  # read from the file, not the bad cache
    assert_set_aside(cache, notes_of(run.stderr), "the model header cache")
    saved = json.loads(cache.read_text())
    assert saved["version"] == CACHE_VERSION and saved["files"][str(model)]["info"]["name"] == "Real Name"
    again = cli("models", str(tmp_path / "m"))  # the fresh cache is good: no more notes
    assert again.returncode == 0 and notes_of(again.stderr) == [] and "Real Name" in again.stdout


@pytest.mark.integration
@pytest.mark.parametrize("command", ["plan", "serve"])
def test_plan_and_serve_with_a_broken_header_cache(tmp_path: Path, isolated_home: Path, llama_server: str,
                                                   mtp_models: dict, command: str) -> None:
    model = mtp_models["plain"]
    put(isolated_home / "cache" / "model-headers.json", json.dumps({"version": CACHE_VERSION, "files": {str(model): "x"}}))
    if command == "plan":
        run = cli("plan", str(model), "--binary", llama_server, "-t", "1")
        assert run.returncode == 0, run.stderr
        assert str(model) in run.stdout
        stderr = run.stderr
    else:
        proc, lines = start_serve([str(model), "--binary", llama_server, "-t", "1", "--quiet"])
        try:
            wait_ready(proc, lines)
        finally:
            stderr = stop_serve(proc)
    assert "Traceback" not in stderr
    assert_set_aside(isolated_home / "cache" / "model-headers.json", notes_of(stderr), "the model header cache")


# --- item 13: the probe cache ---------------------------------------------------------------------

PROBE_VARIANTS = {
    "a probe is a string": json.dumps({"version": PROBE_CACHE_VERSION, "probes": {"x|1|2": "x"}}),
    "path is a number": json.dumps({"version": PROBE_CACHE_VERSION, "probes": {"x|1|2": {"path": 5}}}),
    "options are a string": json.dumps({"version": PROBE_CACHE_VERSION, "probes": {"x|1|2": {"path": "x", "real_options": "--a"}}}),
    "probes is a list": json.dumps({"version": PROBE_CACHE_VERSION, "probes": []}),
    **HOSTILE_JSON,
}


@pytest.mark.integration
@pytest.mark.parametrize("variant", list(PROBE_VARIANTS))
def test_probe_with_a_broken_probe_cache(isolated_home: Path, llama_server: str, variant: str) -> None:
    cache = isolated_home / "cache" / "binary-probes.json"
    put(cache, PROBE_VARIANTS[variant])
    run = cli("probe", "--binary", llama_server, "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["build_number"] == 11434 and "Traceback" not in run.stderr
    assert_set_aside(cache, notes_of(run.stderr), "the llama-server probe cache")
    assert json.loads(cache.read_text())["version"] == PROBE_CACHE_VERSION


# --- item 13: the registry of running servers ---------------------------------------------------

def registry_record(**over) -> dict:
    rec = {"pid": 2**22 + 7, "create_time": 1.0, "exe": "/x/llama-server", "port": 8080, "launcher_pid": 2**22 + 9}
    rec.update(over)
    return rec


REGISTRY_VARIANTS = {
    "pid is text": json.dumps([registry_record(pid="abc")]),
    "pid is -1": json.dumps([registry_record(pid=-1)]),  # kill(-1) would signal every process
    "pid is 0": json.dumps([registry_record(pid=0)]),
    "launcher pid is true": json.dumps([registry_record(launcher_pid=True)]),
    "port is huge": json.dumps([registry_record(port=10**9)]),
    "create time is NaN": json.dumps([registry_record(create_time=float("nan"))]),
    "a record is a list": json.dumps([[1, 2, 3]]),
    "not a list": json.dumps({"pid": 5}),
    **HOSTILE_JSON,
}


@pytest.mark.parametrize("variant", list(REGISTRY_VARIANTS))
def test_the_sweep_with_a_broken_registry(isolated_home: Path, variant: str) -> None:
    registry = orphan_guard.registry_file()
    put(registry, REGISTRY_VARIANTS[variant])
    drain_notices()
    assert orphan_guard.sweep() == []
    notes = drain_notices()
    assert_set_aside(registry, [f"note: {n}" for n in notes], "the list of running servers")
    assert orphan_guard.record(os.getpid(), sys.executable, 9) is not None  # records work again afterwards
    assert json.loads(registry.read_text())[0]["pid"] == os.getpid()
    orphan_guard.forget(os.getpid())


@pytest.mark.integration
def test_serve_with_a_registry_that_names_pid_minus_one(isolated_home: Path, llama_server: str,
                                                         mtp_models: dict) -> None:
    registry = orphan_guard.registry_file()
    put(registry, REGISTRY_VARIANTS["pid is -1"])
    proc, lines = start_serve([str(mtp_models["plain"]), "--binary", llama_server, "-t", "1", "--quiet"])
    try:
        wait_ready(proc, lines)
    finally:
        stderr = stop_serve(proc)
    assert "Traceback" not in stderr
    assert_set_aside(registry, notes_of(stderr), "the list of running servers")


# --- item 12: a read-only or full home ------------------------------------------------------------

def start_serve(args: list[str], kind: str | None = None, base: Path | None = None):
    """``serve`` in a child process; its stdout lines arrive on a queue (a read never blocks the test)."""
    if kind is None:
        proc = subprocess.Popen([sys.executable, "-m", "llama_launcher", "serve", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    else:
        assert base is not None
        proc, _ = popen(kind, base, ["serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put("<eof>")

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def wait_ready(proc: subprocess.Popen[str], lines: queue.Queue[str], timeout: float = 60) -> tuple[str, float]:
    t = time.monotonic()
    deadline = t + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
        except queue.Empty:
            break
        if line.startswith("ready:"):
            return line, time.monotonic() - t
        assert line != "<eof>", f"serve ended before it was ready: {proc.stderr.read() if proc.stderr else ''}"
    raise AssertionError("serve was not ready in time")


def stop_serve(proc: subprocess.Popen[str]) -> str:
    """SIGTERM (a clean stop), then the whole of stderr; the process is always gone afterwards."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM if sys.platform != "win32" else signal.CTRL_BREAK_EVENT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    return err or ""


@pytest.mark.integration
@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM stops serve; Windows has none to send")
@pytest.mark.parametrize("kind", KINDS)
def test_serve_runs_with_a_home_it_cannot_write(tmp_path: Path, llama_server: str, mtp_models: dict,
                                                kind: str) -> None:
    proc, lines = start_serve([str(mtp_models["plain"]), "--binary", llama_server, "-t", "1", "--quiet"],
                              kind, tmp_path)
    try:
        ready, _seconds = wait_ready(proc, lines)  # it used to wait 30 s for a spawn it failed to record, then crash
        endpoint = ready.split()[1]
        with urllib.request.urlopen(endpoint + "/health", timeout=10) as resp:
            assert resp.status == 200
    finally:
        stderr = stop_serve(proc)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "Errno" not in stderr
    notes = notes_of(stderr)
    assert len(notes) == len(set(notes)), notes  # each said once
    for what in ("the list of running servers could not be saved", "the llama-server probe cache could not be saved",
                 "the llama-server log could not be written"):
        assert sum(what in n for n in notes) == 1, (what, notes)


@pytest.mark.parametrize("kind", KINDS)
def test_smoke_test_with_a_home_it_cannot_write(tmp_path: Path, kind: str, llama_server: str) -> None:
    # the window finds llama-server by discovery (the shared build cache), as a first start does
    proc, how = popen(kind, tmp_path, ["--smoke-test"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 0, (how, err)
    assert "smoke test: main window built; llama-server" in out, (how, out)
    assert "Traceback" not in err, (how, err)
    banner = [ln for ln in out.splitlines() if ln.startswith("smoke test: banner:")]
    assert len(banner) == len(set(banner)), banner
    for what in ("The llama-server probe cache could not be saved", "The model header cache could not be saved"):
        assert sum(what in ln for ln in banner) == 1, (how, what, banner)


def test_the_window_shows_what_it_cannot_save(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llama_launcher.ui.main_window import MainWindow

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("LLAMA_LAUNCHER_HOME", str(blocker / "home"))  # every mkdir fails: ENOTDIR
    drain_notices()
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.catalog is not None and "model header cache could not be saved" in w.banner.text(),
                    timeout=60_000)
    text = w.banner.text()
    assert w.banner.isVisible() and text.count("The model header cache could not be saved") == 1  # a sentence
    assert "Not a directory" in text
    w.shutdown()
