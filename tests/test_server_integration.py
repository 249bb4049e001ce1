"""The real llama-server, started with the planner's argv: it does what the plan says, fails as classified."""

from __future__ import annotations

import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.host.network import free_port
from llama_launcher.core.llama_server.probe import probe
from llama_launcher.core.models.model_info import read_model_info
from llama_launcher.core.plan.planner import plan_launch
from llama_launcher.core.server.chat_client import chat
from llama_launcher.core.server.process import ServerRunner, ServerState
from llama_launcher.core.server.speed_stats import LogSpeedParser, parse_metrics, speed_from_metrics
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.tuning.measure import CODE_PROMPT

from conftest import wait_for
from fake_server import make_fake_server

pytestmark = pytest.mark.integration
CPU = Hardware("test CPU", 16384, 12000, False, [])
THREADS = 2


def plan_for(binary: str, model_path: Path, **kw):
    modes = {k.replace("_", "-"): kw.pop(k) for k in list(kw) if k in ("mtp", "ngram_mod")}
    settings = PlanSettings(port=free_port(), threads=kw.pop("threads", THREADS), modes=modes, **kw)
    return plan_launch(binary, read_model_info(model_path), CPU, probe(binary), settings)


def start(runners: list, argv: list[str], timeout: float = 240.0) -> ServerRunner:
    r = ServerRunner(argv, ready_timeout=timeout)
    runners.append(r)
    r.start()
    r.wait_until((ServerState.READY, ServerState.FAILED, ServerState.STOPPED), timeout + 30)
    return r


def test_demo_model_end_to_end(llama_server: str, demo_model: Path, runners: list) -> None:
    plan = plan_for(llama_server, demo_model, mtp="off", ngram_mod="off")
    assert plan.argv[plan.argv.index("--host") + 1] == "127.0.0.1"
    r = start(runners, plan.argv)
    assert r.state == ServerState.READY, (r.reason, list(r.history)[-5:])
    with urllib.request.urlopen(r.base_url + "/health", timeout=10) as resp:
        assert resp.status == 200
    res = chat(r.base_url, [{"role": "user", "content": "Say hello in five words."}], max_tokens=24)
    assert res.timings is not None and res.timings["predicted_n"] > 0
    assert res.usage is not None and res.usage["completion_tokens"] > 0
    assert res.speed is not None and res.speed.decode_tps == res.timings["predicted_per_second"]
    # the same speed from /metrics counters and from the server's log line
    with urllib.request.urlopen(r.base_url + "/metrics", timeout=10) as resp:
        after = parse_metrics(resp.read().decode())
    m = speed_from_metrics({}, after)
    assert m is not None and m.predicted_n == res.timings["predicted_n"]
    def from_log() -> list:  # the timing lines are printed as the slot is released, which can follow the reply
        parser = LogSpeedParser()
        return [s for s in (parser.feed(line) for line in list(r.history)) if s is not None]

    assert wait_for(lambda: bool(from_log()), 60), "no timing lines in the server's log"  # a hang-catcher
    assert abs(from_log()[-1].decode_tps - res.speed.decode_tps) < 0.01
    pid = r.pid
    r.stop()
    assert r.state == ServerState.STOPPED
    r.stop()  # twice is harmless
    import psutil
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_streaming_reports_per_token_timings(llama_server: str, mtp_models: dict, runners: list) -> None:
    from llama_launcher.core.server.chat_client import chat_stream

    plan = plan_for(llama_server, mtp_models["plain"], threads=1)
    r = start(runners, plan.argv)
    assert r.state == ServerState.READY, r.reason
    seen: list = []
    res = chat_stream(r.base_url, [{"role": "user", "content": "hello world"}],
                      on_delta=lambda text, speed: seen.append((text, speed)), max_tokens=32)
    assert len([t for t, _ in seen if t]) > 5  # the reply arrived in pieces
    live = [sp for _, sp in seen if sp is not None and sp.decode_tps is not None]
    assert len(live) > 5  # per-token timings: numbers while the reply streams
    assert res.timings is not None and res.timings["predicted_n"] == 32
    assert res.usage is not None and res.usage["completion_tokens"] == 32
    assert res.speed is not None and res.speed.decode_tps == res.timings["predicted_per_second"]


def test_demo_model_with_ngram_mod_drafts(llama_server: str, demo_model: Path, runners: list) -> None:
    plan = plan_for(llama_server, demo_model)  # Auto on a model without MTP: ngram-mod
    assert plan.argv[plan.argv.index("--spec-type") + 1] == "ngram-mod"
    r = start(runners, plan.argv)
    assert r.state == ServerState.READY, r.reason
    res = chat(r.base_url, [{"role": "user", "content": CODE_PROMPT}], max_tokens=256)
    assert res.timings is not None and res.timings.get("draft_n", 0) > 0, res.timings
    assert res.timings["draft_n_accepted"] > 0


def test_synthetic_mtp_model_with_cpu_chain(llama_server: str, mtp_models: dict, runners: list) -> None:
    plan = plan_for(llama_server, mtp_models["mtp"], mtp="on", threads=1)
    # forced on (the model is tiny); CPU branch: the chain with ngram-mod
    assert plan.argv[plan.argv.index("--spec-type") + 1] == "ngram-mod,draft-mtp"
    assert plan.argv.count("--spec-type") == 1
    r = start(runners, plan.argv)
    assert r.state == ServerState.READY, (r.reason, list(r.history)[-5:])
    assert any("creating MTP draft context" in line for line in r.history)
    res = chat(r.base_url, [{"role": "user", "content": "hello world"}], max_tokens=256)
    assert res.timings is not None and res.timings.get("draft_n", 0) > 0 and res.timings["draft_n_accepted"] > 0


def test_mtp_forced_on_model_without_mtp_layers_fails_with_reason(llama_server: str, mtp_models: dict,
                                                                 runners: list) -> None:
    plan = plan_for(llama_server, mtp_models["plain"], mtp="on", ngram_mod="off", threads=1)
    assert any("no MTP layers" in w for w in plan.warnings) and "--spec-type" not in plan.argv  # never emitted
    # the user can still force it with their own flags: the server's refusal is classified
    plan = plan_for(llama_server, mtp_models["plain"], threads=1, extra_args="--spec-type draft-mtp")
    r = start(runners, plan.argv)
    assert r.state == ServerState.FAILED and r.reason is not None
    assert r.reason.code == "no_mtp_layers" and "model has no MTP layers" in r.reason.message
    assert any("doesn't contain MTP layers" in e for e in r.reason.evidence)


def _base(llama_server: str, model: Path, *extra: str) -> list[str]:
    return [llama_server, "-m", str(model), "--host", "127.0.0.1", "--port", str(free_port()), "-t", "1", *extra]


@pytest.mark.parametrize("extra,code", [
    (["--draft-max", "3"], "removed_argument"),
    (["--foo"], "unknown_argument"),
    (["--spec-type", "foo"], "unknown_spec_type"),
], ids=["removed", "unknown-arg", "unknown-spec-type"])
def test_argument_failures(llama_server: str, mtp_models: dict, runners: list, extra: list[str], code: str) -> None:
    r = start(runners, _base(llama_server, mtp_models["plain"], *extra), timeout=60)
    assert r.state == ServerState.FAILED and r.reason is not None and r.reason.code == code, r.reason


def test_model_missing_and_not_gguf(llama_server: str, tmp_path: Path, runners: list) -> None:
    r = start(runners, _base(llama_server, tmp_path / "missing.gguf"), timeout=60)
    assert r.reason is not None and r.reason.code == "model_missing", r.reason
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"hello, I am not a model")
    r = start(runners, _base(llama_server, bad), timeout=60)
    assert r.reason is not None and r.reason.code == "not_gguf", r.reason


def test_port_in_use(llama_server: str, mtp_models: dict, runners: list) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        argv = [llama_server, "-m", str(mtp_models["plain"]), "--host", "127.0.0.1", "--port", str(port), "-t", "1"]
        r = start(runners, argv, timeout=60)
    assert r.state == ServerState.FAILED and r.reason is not None and r.reason.code == "port_in_use"
    assert str(port) in r.reason.message


def test_out_of_memory(llama_server: str, demo_model: Path, runners: list) -> None:
    r = start(runners, _base(llama_server, demo_model, "-c", "50000000", "--fit", "off"), timeout=120)
    assert r.state == ServerState.FAILED and r.reason is not None and r.reason.code == "out_of_memory", r.reason


def test_binary_missing_and_not_executable(tmp_path: Path, runners: list) -> None:
    r = start(runners, [str(tmp_path / "llama-server"), "-m", "x"], timeout=5)
    assert r.state == ServerState.FAILED and r.reason.code == "binary_missing"
    f = tmp_path / "not-exec"
    f.write_text("#!/bin/sh\n")
    if sys.platform != "win32":
        r = start(runners, [str(f)], timeout=5)
        assert r.reason.code == "binary_not_executable"


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX signal; Windows processes do not die of SIGILL")
def test_sigill_from_a_fake_binary(tmp_path: Path, runners: list) -> None:
    ill = make_fake_server(tmp_path / "ill", "b11434-current", behaviour="sigill")
    r = start(runners, [str(ill), "--port", str(free_port())], timeout=10)
    assert r.state == ServerState.FAILED and r.reason.code == "signal" and "newer CPU" in r.reason.message


def test_timeout_from_a_fake_binary(tmp_path: Path, runners: list) -> None:
    hang = make_fake_server(tmp_path / "hang", "b11434-current", behaviour="hang")
    r = start(runners, [str(hang), "--port", str(free_port())], timeout=2)
    assert r.state == ServerState.FAILED and r.reason.code == "timeout"
    assert r.proc is not None and r.proc.wait(20) is not None  # the hung process was ended


def test_llama_arg_environment_is_cleared(llama_server: str, mtp_models: dict, runners: list,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_ARG_DRAFT_MAX", "6")  # would make this build refuse to start
    r = start(runners, _base(llama_server, mtp_models["plain"]), timeout=60)
    assert r.state == ServerState.READY, r.reason


def test_logs_are_written_and_lines_delivered(llama_server: str, mtp_models: dict, runners: list, tmp_path: Path) -> None:
    seen: list[str] = []
    from llama_launcher.core.server.process import RunnerEvents

    r = ServerRunner(_base(llama_server, mtp_models["plain"]), RunnerEvents(on_line=seen.append), ready_timeout=60,
                     log_folder=tmp_path / "logs")
    runners.append(r)
    r.start()
    assert r.wait_until((ServerState.READY, ServerState.FAILED), 90) == ServerState.READY
    r.stop()
    assert seen and any("listening" in s or "model loaded" in s for s in seen)
    assert r.log_path is not None and r.log_path.read_text(encoding="utf-8").splitlines() == seen
    assert list(r.history) == seen
