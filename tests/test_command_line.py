"""Issue 19, item 19: the command shown is the command run, every character visible.

A model file whose name holds terminal escape codes used to be shown with the codes stripped, so
the preview and ``plan`` named a file that does not exist. The POSIX line is checked by the shell
that reads it (bash splits it back into the argv), the Windows line by the splitting rules every
Windows program applies to its command line (``split_windows``, tested against
CommandLineToArgvW's documented cases in test_extra_args).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llama_launcher.core.plan.extra_args import split_windows
from llama_launcher.core.state.command_line import command_line, shown_command_line

from gguf_factory import write_model

HOSTILE_ARGS = [
    "evil\x1b[31mred\x1b[0m.gguf", "osc\x1b]0;title\x07.gguf", "line\nbreak", "tab\there", "cr\rhere",
    "it's", 'say "hi"', "back\\slash\\", "$HOME `id` $(id) !!", "right\u202eto-left", "zero\u200bwidth",
    "c1\x9bcsi", "", "with space", "modèle 日本.gguf", "-m", "--ctx-size=8192", "~user", "a*b?[c]",
    "\x1bc", "\x1b" + "1f",  # ESC then hex digits: an escape must not swallow them
]
BYTES_NAME = b"bad-\xff\xfe.gguf".decode("utf-8", "surrogateescape")  # a file name that is not UTF-8
BASH = shutil.which("bash")


def bash_argv(line: str) -> list[bytes]:
    """What bash makes of ``line`` as a command's arguments (each one's bytes)."""
    assert BASH is not None
    out = subprocess.run([BASH, "-c", 'printf "%s\\0" ' + line], capture_output=True, timeout=30,
                         env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert out.returncode == 0, out.stderr
    return out.stdout.split(b"\0")[:-1]


@pytest.mark.skipif(BASH is None, reason="needs bash to read the line back")
def test_the_posix_line_is_exactly_the_argv_when_bash_reads_it() -> None:
    argv = [*HOSTILE_ARGS, BYTES_NAME]
    line = command_line(argv, windows=False)
    assert line.isprintable() and "'modèle 日本.gguf'" in line  # visible; printable non-ASCII stays itself
    assert bash_argv(line) == [os.fsencode(a) for a in argv]
    assert shown_command_line(argv, windows=False) == line  # on POSIX the shown line is the copied one
    assert "$'evil\\x1b[31mred\\x1b[0m.gguf'" in line and "$'right\\u202eto-left'" in line
    assert "$'bad-\\xff\\xfe.gguf'" in line and "$'\\x1b1f'" in line


def test_plain_commands_read_as_before() -> None:
    argv = ["/usr/bin/llama-server", "-m", "/models/x-Q4_K_M.gguf", "--port", "8080", "--spec-type", "ngram-mod,draft-mtp"]
    assert command_line(argv, windows=False) == " ".join(argv)
    assert command_line(["/My Models/x.gguf", "--alias", "it's"], windows=False) == \
        "'/My Models/x.gguf' --alias 'it'\"'\"'s'"
    assert command_line([r"C:\Program Files\llama\llama-server.exe", "-m", r"C:\m\x.gguf"], windows=True) == \
        r'"C:\Program Files\llama\llama-server.exe" -m C:\m\x.gguf'


def test_the_windows_line_splits_back_into_the_argv() -> None:
    argv = [r"C:\Program Files\llama-server.exe", "", 'say "hi"', "back\\slash\\", 'ends\\"quote', "a&b|c<d>e^f",
            "100%", "x,y;z=w", "(x)", "!", "with space\\", r"\\server\share\m.gguf", "right\u202eto-left"]
    line = command_line(argv, windows=True)
    assert split_windows(line) == argv
    assert '"a&b|c<d>e^f"' in line and '"100%"' in line  # cmd.exe acts on these outside quotes
    shown = shown_command_line(argv, windows=True)
    assert shown.isprintable() and "right\\u202eto-left" in shown and "\u202e" in line


@pytest.mark.skipif(sys.platform == "win32", reason="Windows file names cannot hold control characters")
@pytest.mark.skipif(BASH is None, reason="needs bash to read the line back")
def test_plan_prints_the_exact_path_of_a_file_named_with_escape_codes(tmp_path: Path, llama_server: str) -> None:
    model = write_model(tmp_path / "m" / "evil\x1b[2J\x1b[31mname\u202e.gguf", name="Evil")
    run = subprocess.run([sys.executable, "-m", "llama_launcher", "plan", str(model), "--binary", llama_server],
                         capture_output=True, text=True, timeout=120, errors="surrogateescape")
    assert run.returncode == 0, run.stderr
    first = run.stdout.splitlines()[0]
    assert first.isprintable() and "\x1b" not in run.stdout
    assert f"-m $'{tmp_path / 'm'}/evil\\x1b[2J\\x1b[31mname\\u202e.gguf'" in first
    as_json = subprocess.run([sys.executable, "-m", "llama_launcher", "plan", str(model), "--binary", llama_server,
                              "--json"], capture_output=True, text=True, timeout=120)
    argv = json.loads(as_json.stdout)["argv"]
    port = argv.index("--port") + 1  # each plan picks a free port of its own
    shown = bash_argv(first)
    assert len(shown) == len(argv) and shown[argv.index("-m") + 1] == os.fsencode(str(model))
    assert [s for i, s in enumerate(shown) if i != port] == [os.fsencode(a) for i, a in enumerate(argv) if i != port]
    assert any(ln.startswith("  -m $'") for ln in run.stdout.splitlines())  # the flag's row, quoted alike


@pytest.mark.skipif(sys.platform == "win32", reason="Windows file names cannot hold control characters")
@pytest.mark.skipif(BASH is None, reason="needs bash to read the line back")
def test_the_window_preview_and_copy_name_the_real_file(qtbot, tmp_path: Path, llama_server: str) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from window_helpers import open_window

    folder = tmp_path / "models"
    model = write_model(folder / "evil\x1b[2J\x1b[31mname.gguf", name="Evil")
    w = open_window(qtbot, llama_server, folder)
    assert w.planner.plan is not None and w.planner.plan.argv[w.planner.plan.argv.index("-m") + 1] == str(model)
    p = w.launch_panel
    rows = [p.preview.tree.topLevelItem(i) for i in range(p.preview.tree.topLevelItemCount())]
    shown = [r.text(0) for r in rows if r is not None and r.data(0, Qt.ItemDataRole.UserRole)[:1] == ["-m"]]
    assert shown == [f"-m $'{folder}/evil\\x1b[2J\\x1b[31mname.gguf'"]  # the file that exists, codes visible
    p.preview.copy_cmd.click()
    copied = QApplication.clipboard().text()
    assert copied == p.preview.command_text() and copied.isprintable()
    assert bash_argv(copied) == [os.fsencode(a) for a in w.planner.plan.redacted_argv()]  # pasted, it runs this argv
