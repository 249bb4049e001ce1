"""Extra arguments: split like the platform's shell, checked against the binary's own --help, never a shell.

``b11434-recorded.help.txt`` is the ``--help`` of the llama-server b11434 that ``get-server`` builds,
recorded verbatim, so the deny list below is derived from the real option table.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llama_launcher.core.llama_server.probe import capabilities_from_help
from llama_launcher.core.plan.extra_args import ExtraArgsError, parse_extra_args, split_args

from fake_server import HELP_DIR

REAL = capabilities_from_help("/bin/llama-server", (HELP_DIR / "b11434-recorded.help.txt").read_text(),
                              (HELP_DIR / "b11434-recorded.version.txt").read_text())


def test_posix_and_windows_splitting() -> None:
    assert split_args("--alias 'my model' -n 5", windows=False) == ["--alias", "my model", "-n", "5"]
    assert split_args(r'--alias "my model" --path C:\models\x', windows=True) == ["--alias", "my model", "--path", r"C:\models\x"]
    assert split_args(r'-p "say \"hi\""', windows=True) == ["-p", 'say "hi"']
    with pytest.raises(ExtraArgsError, match="^a quote in the extra arguments is not closed"):
        split_args('-p "oops', windows=True)
    with pytest.raises(ExtraArgsError, match="^a quote in the extra arguments is not closed"):
        split_args("-p 'oops", windows=False)


@pytest.mark.parametrize("text", ["-p a\x00b", "\x00", "--temp\x1b[31m 1"])
def test_control_characters_are_refused_at_parse_time(text: str) -> None:
    # a NUL used to reach Popen in the starter thread and leave the state at "starting" forever
    with pytest.raises(ExtraArgsError, match="contain (a NUL character|a control character)"):
        parse_extra_args(text, REAL, windows=False)


def test_key_value_negative_numbers_and_spec_flags() -> None:
    r = parse_extra_args("--temp=0.5 --threads -1 --spec-type ngram-mod", REAL, windows=False)
    assert r.flags == ["--temp", "--threads", "--spec-type"] and r.has_spec_flags
    assert r.spec_types == ["ngram-mod"] and r.values["--threads"] == "-1"
    assert parse_extra_args("--spec-default", REAL, windows=False).spec_types == ["ngram-mod"]
    assert parse_extra_args("--spec-type ngram-mod,draft-mtp", REAL, windows=False).spec_types == ["ngram-mod", "draft-mtp"]
    assert parse_extra_args("", REAL, windows=False).argv == []


@pytest.mark.parametrize("text,message", [
    ("--tmep 0.7", "this llama-server has no option --tmep — did you mean --temp?"),
    ("--temp hot", "--temp needs a number, not 'hot'"),
    ("--temp", "--temp needs a value"),
    ("--draft-max 3", "--draft-max was removed from this llama-server: use --spec-draft-n-max or --spec-ngram-mod-n-max"),
    ("--temp 0.7 -", "a lone '-' is not an option: remove it or finish the flag's name"),
    ("-- --temp 0.7", "a lone '--' is not an option: remove it or finish the flag's name"),
    ("0.7 --temp 1", "'0.7' is not an option: extra arguments start with a flag, e.g. --temp 0.7"),
])
def test_errors_read_in_plain_words(text: str, message: str) -> None:
    with pytest.raises(ExtraArgsError) as info:
        parse_extra_args(text, REAL, windows=False)
    assert str(info.value) == message


def test_values_that_are_not_numbers_where_the_help_allows_words() -> None:
    assert parse_extra_args("-ngl all --spec-draft-ngl auto", REAL, windows=False).values == {
        "-ngl": "all", "--spec-draft-ngl": "auto"}


@pytest.mark.parametrize("flag", [
    # every alias of an owned option, read from the help: --spec-draft-hf is an alias of -hfd
    "--spec-draft-hf org/m", "-hfd org/m", "--hf-repo-draft org/m", "-hf org/m", "--port=9000", "--host 0.0.0.0",
    "--api-key x", "--api-key-file f", "-m x.gguf", "--model x.gguf", "--mmproj p.gguf", "-mu http://x",
    # presets download from the internet and move the server to port 8011/8012
    "--fim-qwen-7b-default", "--fim-qwen-7b-spec", "--gpt-oss-20b-default", "--embd-gemma-default",
    "--vision-gemma-4b-default", "--fim-qwen-1.5b-default",
    "--webui-config-file f", "--path /", "--models-dir /",
])
def test_owned_and_downloading_options_are_refused_in_every_spelling(flag: str) -> None:
    with pytest.raises(ExtraArgsError, match="cannot be used in extra arguments"):
        parse_extra_args(flag, REAL, windows=False)
    with pytest.raises(ExtraArgsError, match="cannot be used in extra arguments"):
        parse_extra_args(flag, REAL, lan=True, windows=False)


@pytest.mark.parametrize("flag", ["--tools all", "--agent", "-ag", "--tools-runtime ssh:x", "--media-path /tmp",
                                  "--slot-save-path /tmp", "--props", "--mcp-servers-json {}"])
def test_tools_files_and_settings_are_refused_with_lan_and_warned_on_localhost(flag: str) -> None:
    with pytest.raises(ExtraArgsError, match="refused while LAN access is on"):
        parse_extra_args(flag, REAL, lan=True, windows=False)
    r = parse_extra_args(flag, REAL, lan=False, windows=False)
    assert r.warnings and "127.0.0.1" in r.warnings[0]


def test_switching_a_risky_option_off_is_always_fine() -> None:
    assert parse_extra_args("--no-agent", REAL, lan=True, windows=False).warnings == []


def test_without_a_probe_the_fixed_lists_still_apply() -> None:
    with pytest.raises(ExtraArgsError, match="^--port cannot be used"):
        parse_extra_args("--port=1234", windows=False)
    with pytest.raises(ExtraArgsError, match="refused while LAN"):
        parse_extra_args("--tools all", lan=True, windows=False)


# --- issue 19, item 18: options that make llama-server print and exit -------------------------------

EXITING = ["-h", "--help", "--usage", "--version", "-cl", "--cache-list", "--completion-bash", "--list-devices"]


def test_the_options_that_print_and_exit_are_read_from_the_real_help() -> None:
    """b11434's help has exactly these (common/arg.cpp exits after each); nothing else is caught."""
    assert sorted(k for k, why in REAL.denied.items() if "and exit instead of starting the server" in why) == \
        sorted(EXITING)


@pytest.mark.parametrize("flag", EXITING)
def test_options_that_print_and_exit_are_refused_with_a_sentence(flag: str) -> None:
    for caps in (REAL, None):  # from the probe, and from the fixed list before any probe
        with pytest.raises(ExtraArgsError) as info:
            parse_extra_args(f"--temp 0.7 {flag}", caps, windows=False)
        text = str(info.value)
        assert text.startswith(f"{flag} cannot be used in extra arguments: it makes llama-server ")
        assert text.endswith("and exit instead of starting the server (run it in a terminal for that)")
    assert str(info.value).count(" and exit") == 1  # "print usage and exit" is not said twice


def test_a_fork_s_own_print_and_exit_option_is_found_in_its_help() -> None:
    """The rule reads the help's words: a renamed or new option that prints and exits is refused too."""
    text = (HELP_DIR / "b11434-recorded.help.txt").read_text().replace("--list-devices", "--list-gpus")
    caps = capabilities_from_help("/bin/fork-server", text)
    with pytest.raises(ExtraArgsError, match="^--list-gpus cannot be used in extra arguments: it makes llama-server "
                                             "print list of available devices and exit instead"):
        parse_extra_args("--list-gpus", caps, windows=False)


@pytest.mark.integration
@pytest.mark.parametrize("command,flag", [("plan", "-h"), ("plan", "--list-devices"), ("serve", "--version"),
                                          ("serve", "--help")])
def test_plan_and_serve_refuse_them_before_anything_runs(llama_server: str, demo_model: Path, command: str,
                                                         flag: str) -> None:
    """``serve --extra-args --help`` used to start llama-server, which printed its help and exited 0,
    and the launcher reported a random help line as the failure."""
    run = subprocess.run([sys.executable, "-m", "llama_launcher", command, str(demo_model), "--binary", llama_server,
                          f"--extra-args={flag}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stdout == ""  # nothing planned, nothing started
    want = {"-h": "print usage", "--help": "print usage", "--version": "show version and build info",
            "--list-devices": "print list of available devices"}[flag]
    assert run.stderr.strip().splitlines() == [
        f"error: {flag} cannot be used in extra arguments: it makes llama-server {want} and exit instead of "
        "starting the server (run it in a terminal for that)"]
