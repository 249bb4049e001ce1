"""Failure classification from recorded log lines of the real binary (exact messages)."""

from __future__ import annotations

import signal

import pytest

from llama_launcher.core.server.failure_reasons import classify_exit, classify_log, signal_reason

CASES = [
    ("port_in_use", ["E srv  llama_server: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080"], "port 8080"),
    ("removed_argument", ['error while handling argument "--draft-max": the argument has been removed. use --spec-draft-n-max '
                          "or --spec-ngram-mod-n-max"], "--draft-max"),
    ("unknown_spec_type", ['error while handling argument "--spec-type": unknown speculative type: foo'], "'foo'"),
    ("unknown_argument", ["error: invalid argument: --foo"], "--foo"),
    ("no_mtp_layers", ["W llama_init_from_model: context type MTP requested but model doesn't contain MTP layers",
                       "E common_speculative_init_result: failed to create MTP context"], "no MTP layers"),
    ("not_gguf", ["E gguf_init_from_reader: invalid magic characters: 'hell', expected 'GGUF'",
                  "E llama_model_load: error loading model: llama_model_loader: failed to load model from /tmp/bad.gguf"], "not a GGUF"),
    ("model_missing", ["E gguf_init_from_file: failed to open GGUF file '/tmp/x.gguf' (No such file or directory)"], "missing"),
    ("out_of_memory", ["ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 99999999999"], "out of memory"),
]


@pytest.mark.parametrize("code,lines,fragment", CASES, ids=[c[0] for c in CASES])
def test_log_classification(code: str, lines: list[str], fragment: str) -> None:
    r = classify_log(["I srv  llama_server: initializing ...", *lines, "I cleaning up before exit..."])
    assert r is not None and r.code == code and fragment in r.message
    assert r.evidence and all(e in lines for e in r.evidence)
    assert "\n" not in r.message


def test_signals_are_named() -> None:
    r = classify_exit(-signal.SIGILL, ["loading"])
    assert r.code == "signal" and "SIGILL" in r.message and "newer CPU" in r.message
    assert "SIGSEGV" in classify_exit(-signal.SIGSEGV, []).message
    assert "SIGKILL" in signal_reason(signal.SIGKILL)
    assert "SIGILL" in classify_exit(128 + signal.SIGILL, []).message  # a shell's 132


def test_plain_exit_quotes_the_last_line() -> None:
    r = classify_exit(3, ["a", "something odd happened", ""])
    assert r.code == "exited" and "status 3" in r.message and "something odd happened" in r.message
