"""The real b11434 with MTP heads in their own files (issue 22's proof), launched through the launcher.

The tiny mimo2 MTP model of tests/synthetic_mtp.py is split the way llama.cpp's converter splits a
model (``write_mimo2_split``: a ``--no-mtp`` target and an ``mtp-`` head, the very same tensors);
``llama-launcher serve`` finds the head beside the target, plans ``-md <head> --spec-type draft-mtp``,
and the server's own numbers (``timings`` of the reply, ``/metrics``) show drafts accepted. The
fallback is proven on b11434's real crashes: an incomplete head, and MTP on a target that kept its
nextn key but not its tensors; the user's own ``--spec-type draft-mtp`` on a model without MTP is not
the launcher's to retry.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from llama_launcher.core.host.network import free_port
from llama_launcher.core.server.chat_client import chat
from serve_json import events_until, serve_json

from synthetic_mtp import write_mimo2_model, write_mimo2_split

pytestmark = pytest.mark.integration


def _serve(llama_server: str, model: Path, *extra: str) -> subprocess.Popen[str]:
    return serve_json(llama_server, model, "--threads", "1", "--ctx", "2048", "--port", str(free_port()), *extra,
                      ready_timeout=240)


def _until(proc: subprocess.Popen[str], event: str, timeout: float = 300) -> list[dict]:
    return events_until(proc, event, "failed", timeout=timeout)


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate(timeout=30)


def test_serve_runs_the_split_pair_as_draft_mtp_and_the_server_accepts_drafts(llama_server: str,
                                                                             tmp_path: Path) -> None:
    target, head = write_mimo2_split(tmp_path / "pair")
    proc = _serve(llama_server, target, "--mtp", "on")
    try:
        events = _until(proc, "ready")
        assert [e["event"] for e in events] == ["starting", "ready"], events
        argv = events[0]["argv"]
        assert argv[argv.index("--spec-draft-model") + 1] == str(head)
        assert "draft-mtp" in argv[argv.index("--spec-type") + 1].split(",")
        assert "head mtp-tiny-mimo2.gguf" in events[0]["speculative"]
        res = chat(events[1]["endpoint"], [{"role": "user", "content": "hello world"}], max_tokens=64,
                   temperature=0.0)
        assert res.timings is not None and res.timings["predicted_n"] == 64
        assert res.timings["draft_n"] > 0 and res.timings["draft_n_accepted"] > 0, res.timings  # the server's own
        acceptance = _until(proc, "acceptance", timeout=60)[-1]
        assert acceptance["event"] == "acceptance" and acceptance["steps"] > 0 and acceptance["accepted"] > 0
        assert acceptance["positions"][0]["position"] == 1 and acceptance["positions"][0]["accepted_steps"] > 0
    finally:
        out, err = _stop(proc)
    assert proc.returncode == 0, err


def test_a_target_that_kept_its_nextn_key_runs_mtp_from_its_head(llama_server: str, tmp_path: Path) -> None:
    """llama.cpp's other layout ("trunk_only"): MTP from the file itself aborts; from the head it runs."""
    target, head = write_mimo2_split(tmp_path / "pair", target_keeps_key=True)
    proc = _serve(llama_server, target, "--mtp", "on")
    try:
        events = _until(proc, "ready")
        assert [e["event"] for e in events] == ["starting", "ready"], events
        assert str(head) in events[0]["argv"]
        res = chat(events[1]["endpoint"], [{"role": "user", "content": "hello world"}], max_tokens=48,
                   temperature=0.0)
        assert res.timings is not None and res.timings["draft_n_accepted"] > 0, res.timings
    finally:
        _stop(proc)


def test_an_incomplete_head_crashes_the_start_and_serve_falls_back_once(llama_server: str, tmp_path: Path) -> None:
    target, head = write_mimo2_split(tmp_path / "pair", head_lacks=("blk.2.nextn.enorm.weight",))
    proc = _serve(llama_server, target, "--mtp", "on")
    try:
        events = _until(proc, "ready")
        kinds = [e["event"] for e in events]
        assert kinds == ["starting", "fallback", "starting", "ready"], events
        fb = events[1]
        assert fb["blamed"] == ["mtp"] and fb["message"].startswith("MTP stopped the server from loading: "
                                                                    "started without it")
        assert any("failed to load draft model" in e or "nextn.enorm" in e for e in fb["evidence"]), fb
        log = Path(fb["log"])
        assert log.is_file() and "nextn.enorm.weight" in log.read_text(errors="replace")
        assert "--spec-type" not in events[2]["argv"]
        res = chat(events[3]["endpoint"], [{"role": "user", "content": "hello world"}], max_tokens=16,
                   temperature=0.0)
        assert res.timings is not None and res.timings["predicted_n"] == 16 and not res.timings.get("draft_n")
    finally:
        out, err = _stop(proc)
    assert proc.returncode == 0, err


def test_the_users_own_mtp_on_a_model_without_mtp_layers_is_not_retried(llama_server: str, tmp_path: Path) -> None:
    plain = write_mimo2_model(tmp_path / "m" / "plain.gguf", with_mtp=False)
    proc = _serve(llama_server, plain, "--extra-args", "--spec-type draft-mtp")
    events = _until(proc, "ready")
    out, err = proc.communicate(timeout=60)  # it ends by itself
    assert [e["event"] for e in events] == ["starting", "failed"], events
    assert events[1]["code"] == "no_mtp_layers" and proc.returncode == 1
    assert "stopped the server from loading" not in err
