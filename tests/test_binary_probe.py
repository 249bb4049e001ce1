"""The probe against recorded --help texts of each era (through a fake executable) and the real binary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llama_launcher.core.llama_server import probe as binary_probe
from llama_launcher.core.llama_server.probe import (
    ProbeError,
    capabilities_from_help,
    parse_help,
    parse_spec_types,
    probe,
)

from fake_server import HELP_DIR, make_fake_server


def caps_for(tmp_path: Path, era: str) -> binary_probe.Capabilities:
    exe = make_fake_server(tmp_path / era, era)
    return probe(str(exe))


def test_no_spec_type_era(tmp_path: Path) -> None:
    c = caps_for(tmp_path, "b5142-no-spec")
    assert c.build_number == 5142 and c.commit == "80f19b41"
    assert not c.speculative and c.spec_types == [] and c.mtp_token is None
    assert c.ngram_mod_flavor is None  # --draft-max exists but there is no --spec-ngram-size-n
    assert c.draft_n_max_flag == "--draft-max"
    assert not c.has_fit and c.has_metrics and c.has_jinja and not c.has_list_devices


def test_legacy_ngram_era(tmp_path: Path) -> None:
    c = caps_for(tmp_path, "b8000-legacy-ngram")
    assert c.speculative
    assert c.spec_types == ["none", "ngram-cache", "ngram-simple", "ngram-map-k", "ngram-map-k4v", "ngram-mod"]
    assert c.mtp_token is None
    assert c.ngram_mod_flavor == "legacy"
    assert c.draft_n_max_flag == "--draft-max"
    assert c.has_list_devices


def test_post_rename_without_mtp(tmp_path: Path) -> None:
    c = caps_for(tmp_path, "b9093-post-rename")
    assert c.build_number == 9093 and c.commit == "0f3e2d1c"
    assert "ngram-mod" in c.spec_types and c.mtp_token is None
    assert c.ngram_mod_flavor == "current"
    assert c.draft_n_max_flag == "--spec-draft-n-max"
    # removed-argument stubs are not real options
    assert "--draft-max" in c.removed_options and "--draft-max" not in c.real_options
    assert "--spec-ngram-size-n" in c.removed_options
    assert c.has_fit


def test_fork_with_mtp_token(tmp_path: Path) -> None:
    c = caps_for(tmp_path, "fork-mtp-token")
    assert c.mtp_token == "mtp"
    assert c.spec_types == ["none", "draft-simple", "mtp", "ngram-simple", "ngram-mod", "ngram-cache"]


def test_current_era(tmp_path: Path) -> None:
    c = caps_for(tmp_path, "b11434-current")
    assert c.mtp_token == "draft-mtp"
    assert c.ngram_mod_flavor == "current"
    assert c.draft_n_max_flag == "--spec-draft-n-max"
    assert c.has_fit and c.has_metrics and c.has_list_devices and c.has_jinja
    assert c.build_number == 11434
    assert c.spec_chains and c.jinja_default is True and "gemma" in c.builtin_templates and c.has_api_key_file
    # every method of the table, with its token and its flags in this binary's dialect
    assert c.method_tokens == {"mtp": "draft-mtp", "eagle3": "draft-eagle3", "dflash": "draft-dflash",
                               "dspark": "draft-dspark", "draft": "draft-simple", "ngram-mod": "ngram-mod",
                               "ngram-simple": "ngram-simple", "ngram-map-k": "ngram-map-k",
                               "ngram-map-k4v": "ngram-map-k4v", "ngram-cache": "ngram-cache"}
    assert c.dialects["draft"] == {"model": "--spec-draft-model", "gpu_layers": "--spec-draft-ngl",
                                   "draft_n_max": "--spec-draft-n-max"}


def test_older_eras_chain_or_not_and_jinja_defaults(tmp_path: Path) -> None:
    legacy = caps_for(tmp_path, "b8000-legacy-ngram")
    assert not legacy.spec_chains  # [a|b]: one type at a time
    assert legacy.dialects["ngram-mod"] == {"ngram_n_match": "--spec-ngram-size-n", "ngram_n_min": "--draft-min",
                                            "ngram_n_max": "--draft-max"}
    old = caps_for(tmp_path, "b5142-no-spec")
    assert old.jinja_default is False and "gemma" in old.builtin_templates
    assert old.dialects["draft"]["model"] == "--model-draft"  # -md / --model-draft before the rename


@pytest.mark.parametrize("era", ["fork-long-placeholder", "fork-types-in-description"])
def test_fork_help_layouts(tmp_path: Path, era: str) -> None:
    """A long placeholder sharing its line with the description, and types listed in the description."""
    c = caps_for(tmp_path, era)
    assert c.spec_types == ["none", "draft-simple", "draft-mtp", "ngram-simple", "ngram-mod", "ngram-cache"]
    assert c.mtp_token == "draft-mtp" and c.method_tokens["draft"] == "draft-simple" and c.spec_chains
    assert c.ngram_mod_flavor == "current"


def test_recorded_b11434_help_is_read_completely() -> None:
    """The real llama-server b11434 --help, recorded verbatim: every option and the deny list from it."""
    c = capabilities_from_help("x", (HELP_DIR / "b11434-recorded.help.txt").read_text(),
                               (HELP_DIR / "b11434-recorded.version.txt").read_text())
    assert c.build_number == 11434 and len(c.real_options) > 300
    assert c.method_tokens["mtp"] == "draft-mtp" and c.ngram_mod_flavor == "current" and c.spec_chains
    assert c.jinja_default is True and "gemma" in c.builtin_templates and c.has_api_key_file
    # aliases of owned options and presets that download are denied; tools are LAN-risky
    for flag in ("--spec-draft-hf", "-hfd", "--fim-qwen-7b-spec", "--gpt-oss-120b-default", "--port", "--host"):
        assert flag in c.denied, flag
    for flag in ("--tools", "-ag", "--agent", "--media-path", "--slot-save-path", "--props", "--tools-runtime"):
        assert flag in c.lan_risky, flag
    assert "--no-agent" not in c.lan_risky and "--temp" not in c.denied
    assert c.removed_hints["--draft-max"].startswith("use --spec-draft-n-max")


def test_help_parser_reads_aliases_placeholders_and_env() -> None:
    opts = parse_help((HELP_DIR / "b11434-current.help.txt").read_text())
    by = {a: o for o in opts for a in o.aliases}
    assert by["-c"].aliases == ["-c", "--ctx-size"] and by["-c"].placeholder == "N"
    assert by["-c"].env == "LLAMA_ARG_CTX_SIZE"
    assert by["-ngl"].aliases == ["-ngl", "--gpu-layers", "--n-gpu-layers"]
    assert by["--fit"].placeholder == "[on|off]"
    assert by["--spec-type"].placeholder.startswith("none,draft-simple")
    assert by["--draft-max"].removed and not by["--spec-draft-n-max"].removed
    assert by["--draft-max"].description.endswith("--spec-ngram-mod-n-max")
    assert not any(a.startswith("-----") for o in opts for a in o.aliases)


def test_padded_blank_line_inside_a_description_does_not_end_the_option() -> None:
    text = ("--spec-type none,ngram-mod,draft-mtp\n" + " " * 40 + "comma-separated list of types\n" + " " * 40 + "\n"
            + " " * 40 + "(env: LLAMA_ARG_SPEC_TYPE)\n--metrics" + " " * 31 + "enable metrics\n")
    opts = parse_help(text)
    assert [o.aliases for o in opts] == [["--spec-type"], ["--metrics"]]
    assert opts[0].env == "LLAMA_ARG_SPEC_TYPE"


@pytest.mark.parametrize("text,expected", [
    ("[none|ngram-mod]", ["none", "ngram-mod"]),
    ("none,draft-mtp,ngram-mod", ["none", "draft-mtp", "ngram-mod"]),
    (None, []),
])
def test_spec_type_lists(text: str | None, expected: list[str]) -> None:
    assert parse_spec_types(text) == expected


def test_probe_is_cached_and_reprobes_a_replaced_binary(tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "x", "b9093-post-rename")
    first = probe(str(exe))
    assert probe(str(exe)) is first  # memory cache
    binary_probe._memory_cache.clear()
    assert probe(str(exe)).build_number == 9093  # disk cache
    # replace the binary with a newer build: size and mtime change, so it is probed again
    newer = make_fake_server(tmp_path / "y", "b11434-current")
    exe.write_bytes(newer.read_bytes())
    import os
    os.utime(exe, (first_time := exe.stat().st_mtime + 5, first_time))
    again = probe(str(exe))
    assert again.build_number == 11434 and again.mtp_token == "draft-mtp"


def test_stale_llama_arg_variables_are_removed_for_the_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_ARG_DRAFT_MAX", "6")  # makes new builds fail even on --help
    exe = make_fake_server(tmp_path / "z", "b11434-current")
    assert probe(str(exe), use_cache=False).mtp_token == "draft-mtp"


def test_probe_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="not found"):
        probe(str(tmp_path / "nope"))
    plain = tmp_path / "plain-file"
    plain.write_text("not a program")
    with pytest.raises(ProbeError, match="not an executable"):
        probe(str(plain))


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX signal; Windows processes do not die of SIGILL")
def test_probe_names_sigill(tmp_path: Path) -> None:
    sigill = make_fake_server(tmp_path / "ill", "b11434-current", behaviour="sigill")
    with pytest.raises(ProbeError, match="SIGILL.*newer CPU"):
        probe(str(sigill), use_cache=False)


def test_probe_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binary_probe, "HELP_TIMEOUT_S", 1.0)
    hang = make_fake_server(tmp_path / "hang", "b11434-current", behaviour="hang")
    with pytest.raises(ProbeError, match="did not answer within"):
        binary_probe.run_binary(str(hang), ["--help"], timeout=1.0)


def test_capabilities_roundtrip() -> None:
    c = capabilities_from_help("/x", (HELP_DIR / "b11434-current.help.txt").read_text(), "version: 0.6.0-dev (build 1, commit a)")
    assert binary_probe.Capabilities.from_dict(c.to_dict()) == c


@pytest.mark.integration
def test_real_binary(llama_server: str) -> None:
    c = probe(llama_server, use_cache=False)
    assert c.speculative and c.mtp_token == "draft-mtp" and c.ngram_mod_flavor == "current"
    assert c.draft_n_max_flag == "--spec-draft-n-max"
    assert "--draft-max" in c.removed_options
    assert c.has_fit and c.has_metrics and c.has_list_devices and c.has_jinja
    assert c.build_number == 11434
