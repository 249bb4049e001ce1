"""Fallback once (issue 22, item 5): a start that speculation crashed is retried once without it.

The rule is checked on b11434's own failure logs (tests/fixtures/failures/, recorded from the real
binary on files written by tests/synthetic_mtp.py: an MTP block missing a tensor, an incomplete
``mtp-`` head, MTP asked of a target that kept its nextn key but not its tensors) and on a healthy
start; ``serve`` is driven end to end against a fake llama-server that aborts as soon as it is given
a speculative flag (the real crashes are tests/test_split_mtp_real.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.probe import capabilities_from_help
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.fallback import fallback_for, without
from llama_launcher.core.plan.planner import plan_launch
from llama_launcher.core.server.failure_reasons import classify_exit, speculation_evidence
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative import fallback_store
from llama_launcher.core.speculative.methods import SpecMode
from serve_json import events_until, serve_json

from fake_server import HELP_DIR, make_fake_server
from synthetic_mtp import write_mimo2_model

FAILURES = Path(__file__).parent / "fixtures" / "failures"
REAL = capabilities_from_help("/bin/llama-server", (HELP_DIR / "b11434-recorded.help.txt").read_text(),
                              (HELP_DIR / "b11434-recorded.version.txt").read_text())
CPU_HW = Hardware("x86", 65536, 60000, False, [])


def log(name: str) -> list[str]:
    return (FAILURES / name).read_text().splitlines()


def model(path: str = "/models/m.gguf") -> ModelInfo:
    return ModelInfo(path=path, name="m", file_name=Path(path).name, folder=str(Path(path).parent),
                     file_size=5_000_000_000, architecture="mimo2", parameters=9_000_000_000,
                     trunk_parameters=9_000_000_000, context_length=4096, block_count=33, nextn_predict_layers=1,
                     is_mtp=True, arch_meta={"embedding_length": 4096, "attention.head_count": 32,
                                             "attention.head_count_kv": 8})


def chain_plan(**kw):
    return plan_launch("/bin/llama-server", model(), CPU_HW, REAL, PlanSettings(port=1, **kw))


@pytest.mark.parametrize("name,code", [
    ("b11434-builtin-mtp-block-incomplete.log", "corrupt_model"),
    ("b11434-mtp-head-incomplete.log", "draft_load_failed"),
    ("b11434-mtp-on-trunk-only-target.log", "internal_check"),
])
def test_b11434_speculation_crashes_point_at_speculation(name: str, code: str) -> None:
    lines = log(name)
    reason = classify_exit(-signal.SIGABRT if "trunk-only" in name else 1, lines)
    assert reason.code == code, reason
    plan = chain_plan()
    assert plan.speculative.methods == ["mtp", "ngram-mod"]
    fb = fallback_for(plan, False, reason, lines, -6 if "trunk-only" in name else 1, "/logs/x.log")
    assert fb is not None and fb.blamed == ("mtp",) and fb.methods == ("mtp", "ngram-mod")  # the log names MTP
    assert fb.evidence and all(e in lines for e in fb.evidence)
    assert fb.message() == ("MTP stopped the server from loading: started without it (and without ngram-mod). "
                            "Log: /logs/x.log")
    retry = without(PlanSettings(port=1), fb)
    assert retry.modes == {"mtp": SpecMode.OFF, "ngram-mod": SpecMode.OFF}


def test_a_healthy_start_and_other_failures_are_not_put_down_to_speculation() -> None:
    assert speculation_evidence(log("b11434-mtp-head-pair-healthy.log")) == []
    plan = chain_plan()
    port = ["E srv  llama_server: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080"]
    assert fallback_for(plan, False, classify_exit(1, port), port) is None
    oom = ["load_model: loading model 'm.gguf'", "creating MTP draft context against the target model 'm.gguf'",
           "ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 99999999999"]
    assert fallback_for(plan, False, classify_exit(1, oom), oom) is None  # the MTP line is not the failing one


def test_the_rule_holds_only_for_the_launchers_own_speculation_before_ready() -> None:
    lines = log("b11434-mtp-head-incomplete.log")
    reason = classify_exit(1, lines)
    assert fallback_for(chain_plan(), True, reason, lines) is None  # died while serving: not a start to retry
    user = chain_plan(extra_args="--spec-type draft-mtp")
    assert fallback_for(user, False, reason, lines) is None  # the user's own --spec-type is theirs
    off = chain_plan(modes={"mtp": SpecMode.OFF, "ngram-mod": SpecMode.OFF})
    assert fallback_for(off, False, reason, lines) is None


def test_a_crash_without_an_error_line_is_put_down_to_what_was_being_set_up() -> None:
    lines = ["I load_tensors: loading model tensors", "I common_speculative_init: adding speculative implementation "
             "'draft-mtp'", "I llama_context: constructing llama_context (ctx_type MTP)"]
    reason = classify_exit(-signal.SIGSEGV, lines)
    fb = fallback_for(chain_plan(), False, reason, lines, -signal.SIGSEGV)
    assert fb is not None and fb.blamed == ("mtp",) and "SIGSEGV" in fb.reason
    assert fallback_for(chain_plan(), False, reason, lines[:1], -signal.SIGSEGV) is None


# --- remembered until the binary changes -----------------------------------------------------------------

def test_auto_remembers_it_for_that_model_and_binary_until_the_binary_changes(tmp_path: Path) -> None:
    binary = tmp_path / "llama-server"
    binary.write_bytes(b"v1")
    other = tmp_path / "other-server"
    other.write_bytes(b"v1")
    fallback_store.remember("/models/m.gguf", str(binary), ["mtp"], "tensor 'blk.2.nextn.enorm.weight' not found",
                            ["E llama_model_load: ..."])
    avoid = fallback_store.avoided("/models/m.gguf", str(binary))
    assert set(avoid) == {"mtp"} and "stopped this model from loading" in avoid["mtp"]
    assert fallback_store.avoided("/models/other.gguf", str(binary)) == {}
    assert fallback_store.avoided("/models/m.gguf", str(other)) == {}
    p = plan_launch("/bin/llama-server", model(), CPU_HW, REAL, PlanSettings(port=1), avoid=avoid)
    assert p.speculative.methods == ["ngram-mod"] and p.speculative.auto_off["mtp"] == avoid["mtp"]
    forced = plan_launch("/bin/llama-server", model(), CPU_HW, REAL,
                         PlanSettings(port=1, modes={"mtp": SpecMode.ON}), avoid=avoid)
    assert "mtp" in forced.speculative.methods  # On tries again
    binary.write_bytes(b"v2, rebuilt")  # another size: another binary
    assert fallback_store.avoided("/models/m.gguf", str(binary)) == {}


def test_a_corrupt_fallback_file_is_set_aside_with_a_notice(tmp_path: Path) -> None:
    from llama_launcher.core.state.state_files import drain_notices

    drain_notices()
    path = fallback_store.store_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "entries": {"k": {"methods": ["warp-drive"], "reason": "x"}}}))
    binary = tmp_path / "srv"
    binary.write_bytes(b"x")
    assert fallback_store.avoided("/m.gguf", str(binary)) == {}
    assert any("speculation fallback file" in n for n in drain_notices())
    fallback_store.remember("/m.gguf", str(binary), ["mtp"], "r", [])
    assert set(fallback_store.avoided("/m.gguf", str(binary))) == {"mtp"}


# --- serve, end to end, against a server that aborts on speculative flags ------------------------------

def test_serve_falls_back_once_says_what_it_turned_off_and_auto_remembers(tmp_path: Path) -> None:
    binary = make_fake_server(tmp_path / "bin", "b11434-recorded", behaviour="spec-abort")
    target = write_mimo2_model(tmp_path / "m" / "tiny-MTP.gguf", with_mtp=True)
    proc = serve_json(binary, target, "--mtp", "on")
    try:
        events = events_until(proc, "ready")
        kinds = [e["event"] for e in events]
        assert kinds == ["starting", "fallback", "starting", "ready"], events
        first, fb, second = events[0], events[1], events[2]
        assert "draft-mtp" in first["argv"][first["argv"].index("--spec-type") + 1]
        assert fb["turned_off"] == ["mtp", "ngram-mod"] and fb["blamed"] == ["mtp"]
        assert fb["message"].startswith("MTP stopped the server from loading: started without it (and without "
                                        "ngram-mod). Log: ")
        assert Path(fb["message"].split("Log: ", 1)[1]).is_file()  # the failed start's own log
        assert any("MTP block missing nextn.eh_proj" in e for e in fb["evidence"])
        assert "--spec-type" not in second["argv"]  # the retry runs without speculation
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["event"] == "stopped"
    assert "note: MTP stopped the server from loading: started without it" in err
    # Auto remembers what the log pointed at, for this model and binary: MTP off and why; ngram-mod runs
    plan = subprocess.run([sys.executable, "-m", "llama_launcher", "plan", str(target), "--binary", str(binary),
                           "--json"], capture_output=True, text=True, timeout=60)
    data = json.loads(plan.stdout)
    assert data["speculative"]["methods"] == ["ngram-mod"]
    assert data["speculative"]["auto_off"]["mtp"].startswith("MTP stopped this model from loading with this "
                                                             "llama-server")
    # a new binary (here: the same script touched) is a new chance
    os.utime(binary, (time.time() + 10, time.time() + 10))
    assert fallback_store.avoided(str(target), str(binary)) == {}


def test_serve_does_not_retry_a_failure_that_is_not_speculations(tmp_path: Path) -> None:
    binary = make_fake_server(tmp_path / "bin", "b11434-recorded", behaviour="exit")
    target = write_mimo2_model(tmp_path / "m" / "tiny-MTP.gguf", with_mtp=True)
    env = {**os.environ, "FAKE_EXIT_LINE": "llama_model_load: error loading model: corrupted header"}
    proc = subprocess.run([sys.executable, "-m", "llama_launcher", "serve", str(target), "--binary", str(binary),
                           "--json", "--quiet", "--mtp", "on"], capture_output=True, text=True, timeout=90, env=env)
    kinds = [json.loads(line)["event"] for line in proc.stdout.splitlines()]
    assert proc.returncode == 1 and kinds == ["starting", "failed"], (proc.stdout, proc.stderr)
    assert "stopped the server from loading" not in proc.stderr

