"""Issue 12, items 9 and 10: bad numbers get one clear line; what the CLI prints is safe for a terminal."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llama_launcher.core.state.safe_text import safe_text

from gguf_factory import write_model
from synthetic_mtp import write_mimo2_model

EVIL = "Evil\x1b]0;pwned\x07\x1b[2J\x1b[31mRed\nready: http://attacker:1/\r\u202edcba\x9b1m\x00"
ESC_FREE = ("\x1b", "\x07", "\x9b", "\u202e", "\x00", "\r")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llama_launcher", *args], capture_output=True, text=True,
                          timeout=timeout, errors="surrogateescape")


# --- item 10: safe_text --------------------------------------------------------------------------

def test_safe_text_drops_escape_sequences_and_shows_control_characters() -> None:
    assert safe_text(EVIL) == "EvilRed\\nready: http://attacker:1/\\r\\u202edcba\\x00"
    assert safe_text("plain name 1.5B Q4_K_M") == "plain name 1.5B Q4_K_M"
    assert safe_text("Gemma 3 ✓ 日本語") == "Gemma 3 ✓ 日本語"  # printable Unicode stays
    assert safe_text("tab\there") == "tab here"
    assert safe_text("line\u2028sep") == "line\\u2028sep"
    assert safe_text("x" * 50, max_len=10) == "x" * 9 + "…"


def test_safe_text_shows_undecodable_file_names_instead_of_crashing() -> None:
    name = b"model-\xff\xfe.gguf".decode("utf-8", "surrogateescape")  # how Python sees such a file name
    with pytest.raises(UnicodeEncodeError):
        name.encode("utf-8")  # what print() would have raised
    assert safe_text(name) == "model-\\xff\\xfe.gguf"
    safe_text(name).encode("utf-8")


# --- item 10: the CLI's output ------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="Windows file names cannot hold control characters")
def test_models_prints_hostile_names_and_file_names_safely(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write_model(folder / "Evil\x1b[31m\nnext.gguf", name=EVIL)
    (folder / "broken\x1b[2J.gguf").write_bytes(b"not a gguf")
    (folder.joinpath(b"bad-\xff.gguf".decode("utf-8", "surrogateescape"))).write_bytes(b"nope")
    run = cli("models", str(folder))
    assert run.returncode == 0, run.stderr
    assert not any(c in run.stdout + run.stderr for c in ESC_FREE)
    rows = run.stdout.splitlines()
    assert len(rows) == 2 + 3  # header, rule, one row per file: no forged lines
    assert any(r.startswith("EvilRed\\nready: http://attacker:1/") for r in rows)
    assert any("broken.gguf" in r for r in rows) and any("bad-\\xff.gguf" in r for r in rows)
    as_json = cli("models", "--json", str(folder))  # JSON escapes control characters itself
    assert as_json.returncode == 0 and "\x1b" not in as_json.stdout
    assert EVIL in [m["name"] for m in json.loads(as_json.stdout)["models"]]


@pytest.mark.integration
@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM stops serve; Windows has none to send")
def test_serve_prints_the_servers_lines_safely(tmp_path: Path, llama_server: str) -> None:
    # the real llama-server echoes the model's path into its log ("load_model: loading model '...'")
    model = write_mimo2_model(tmp_path / "evil\x1b]0;pwned\x07\x1b[2Jname.gguf", with_mtp=False, name=EVIL)
    proc = subprocess.Popen([sys.executable, "-m", "llama_launcher", "serve", str(model), "--binary", llama_server,
                             "-t", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="surrogateescape")
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if not line:
                break
            seen.append(line)
            if line.startswith("ready:"):
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate(timeout=30)
    output = "".join(seen) + (rest or "")
    assert any(s.startswith("ready:") for s in seen), output[-2000:]
    assert not any(c in output for c in ESC_FREE)
    loading = [ln for ln in output.splitlines() if "load_model: loading model" in ln]
    assert len(loading) == 1 and loading[0].endswith(f"'{tmp_path / 'evilname.gguf'}'")  # the server's own line
    starting = [ln for ln in output.splitlines() if ln.startswith("starting: ")]
    # the launcher's own line names the real file, its escape codes shown (issue 19, item 19)
    assert len(starting) == 1 and f"-m $'{tmp_path}/evil\\x1b]0;pwned\\x07\\x1b[2Jname.gguf'" in starting[0]


# --- item 9: numbers that are not numbers -------------------------------------------------------

HARDWARE = {"cpu": "test", "ram_total_mib": 16384, "ram_available_mib": 12000, "apple_silicon": False, "gpus": []}


@pytest.mark.parametrize("text,message", [
    ('{"cpu": "t", "ram_total_mib": 1e999, "ram_available_mib": 1, "apple_silicon": false}',
     "hardware description has a bad value for 'ram_total_mib': inf (not a finite number)"),
    ('{"cpu": "t", "ram_total_mib": NaN, "ram_available_mib": 1, "apple_silicon": false}',
     "hardware description has a bad value for 'ram_total_mib': nan (not a finite number)"),
    ('{"cpu": "t", "ram_total_mib": -5, "ram_available_mib": 1, "apple_silicon": false}',
     "hardware description has a bad value for 'ram_total_mib': -5 (must be between 0 and 1099511627776 MiB)"),
    ('{"cpu": "t", "ram_total_mib": 100, "ram_available_mib": 1, "apple_silicon": false, '
     '"gpus": [{"name": "g", "memory_total_mib": -Infinity}]}',
     "hardware description has a bad value for 'memory_total_mib': -inf (not a finite number)"),
    ('{"cpu": "t", "ram_total_mib": 100, "ram_available_mib": 1, "apple_silicon": "yes"}',
     "hardware description has a bad value for 'apple_silicon': 'yes' (expected true or false)"),
    ('{"cpu": "t", "ram_total_mib": 100, "ram_available_mib": 1, "apple_silicon": false, "gpus": "none"}',
     "hardware description has a bad value for 'gpus': 'none' (expected a list)"),
    ('{"cpu": "t", "ram_total_mib": 100, "ram_available_mib": 1, "apple_silicon": false, "physical_cores": 1e999}',
     "hardware description has a bad value for 'physical_cores': inf (not a finite number)"),
    ("[" * 100_000 + "]" * 100_000, "is nested too deeply to be a hardware description"),
    ('{"cpu": "t"}', "hardware description lacks the key 'ram_total_mib'"),
])
def test_hardware_files_with_bad_numbers_get_one_line(tmp_path: Path, text: str, message: str) -> None:
    hw = tmp_path / "hw.json"
    hw.write_text(text)
    model = write_model(tmp_path / "m.gguf")
    from fake_server import make_fake_server

    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    run = cli("plan", str(model), "--binary", str(exe), "--hardware", str(hw))
    assert run.returncode == 2, run.stdout
    assert run.stderr.splitlines() == [f"error: {message}" if message.startswith("hardware") else
                                       f"error: {hw} {message}"]


@pytest.mark.integration
def test_plan_with_the_real_server_and_an_infinite_memory_size(tmp_path: Path, llama_server: str) -> None:
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps(HARDWARE).replace("16384", "1e999"))
    run = cli("plan", str(write_model(tmp_path / "m.gguf")), "--binary", llama_server, "--hardware", str(hw))
    assert run.returncode == 2
    assert run.stderr.splitlines() == ["error: hardware description has a bad value for 'ram_total_mib': inf "
                                       "(not a finite number)"]


@pytest.mark.parametrize("value,why", [
    ("nan", "'nan' must be a number of seconds above 0 and at most a week"),
    ("inf", "'inf' must be a number of seconds above 0 and at most a week"),
    ("-1", "'-1' must be a number of seconds above 0 and at most a week"),
    ("0", "'0' must be a number of seconds above 0 and at most a week"),
    ("1e999", "'1e999' must be a number of seconds above 0 and at most a week"),
    ("soon", "'soon' is not a number of seconds"),
])
def test_ready_timeout_must_be_a_real_number_of_seconds(tmp_path: Path, value: str, why: str) -> None:
    run = cli("serve", str(tmp_path / "m.gguf"), f"--ready-timeout={value}")
    assert run.returncode == 2
    assert run.stderr == f"error: llama-launcher serve: argument --ready-timeout: {why}\n"  # one line
    assert "Traceback" not in run.stderr


def test_the_runner_refuses_a_timeout_that_never_ends() -> None:
    from llama_launcher.core.server.process import ServerRunner

    for bad in (float("nan"), float("inf"), 0, -3):
        with pytest.raises(ValueError, match="ready_timeout must be a positive number of seconds"):
            ServerRunner(["/bin/true"], ready_timeout=bad)
