"""The headless CLI: human and JSON output, exit codes, and bench/tune against the real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fake_server import make_fake_server
from gguf_factory import write_model


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llama_launcher", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_version() -> None:
    from llama_launcher import __version__

    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"llama-launcher {__version__}"


def test_models_json_and_table(tmp_path: Path) -> None:
    write_model(tmp_path / "good.gguf", name="Good One")
    (tmp_path / "bad.gguf").write_bytes(b"nope")
    out = cli("models", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    by = {Path(m["path"]).name: m for m in data["models"]}
    assert by["good.gguf"]["name"] == "Good One" and by["good.gguf"]["error"] is None
    assert by["good.gguf"]["architecture"] == "llama" and by["good.gguf"]["parameters"] > 0
    assert by["good.gguf"]["is_mtp"] is False
    assert "not a GGUF" in by["bad.gguf"]["error"]
    table = cli("models", str(tmp_path))
    assert "Good One" in table.stdout and "error: This is not a GGUF model file" in table.stdout  # words first
    assert "(not a GGUF file (invalid magic))" in table.stdout  # the reader's detail after them
    missing = cli("models", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: folder not found")


def test_hardware_json_round_trip(tmp_path: Path) -> None:
    out = cli("hardware", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("cpu", "ram_total_mib", "ram_available_mib", "apple_silicon", "gpus"):
        assert key in data


def test_probe_json_with_fake_binary(tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "f", "b9093-post-rename")
    out = cli("probe", "--binary", str(exe), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["ngram_mod_flavor"] == "current" and data["mtp_token"] is None
    assert data["draft_n_max_flag"] == "--spec-draft-n-max" and data["speculative"] is True
    assert data["candidates"][0] == {"path": str(exe), "source": "--binary"}
    bad = cli("probe", "--binary", str(tmp_path / "none"))
    assert bad.returncode == 2 and bad.stderr.strip() == f"error: llama-server not found at {tmp_path / 'none'}"


def test_plan_json_for_hand_written_gpu_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = make_fake_server(tmp_path / "f", "b11434-current")
    model = write_model(tmp_path / "m" / "big-MTP.gguf", arch="qwen35", blocks=3, nextn=1)
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps({"cpu": "x", "ram_total_mib": 65536, "ram_available_mib": 60000, "apple_silicon": False,
                              "gpus": [{"name": "RTX 4090", "backend": "CUDA", "memory_total_mib": 24564,
                                        "memory_free_mib": 24000}]}))
    # the binary's own device list wins over the file: a CPU-only binary takes the CPU branch and says so
    cpu_only = json.loads(cli("plan", str(model), "--binary", str(exe), "--hardware", str(hw), "--json").stdout)
    assert cpu_only["gpu_branch"] is False and cpu_only["gpu_reason"] == "llama-server reports no GPU it can use"
    assert any(w.startswith("Your NVIDIA RTX 4090 is not used: this llama-server has no CUDA or Vulkan backend")
               for w in cpu_only["warnings"])
    monkeypatch.setenv("FAKE_DEVICES", "  CUDA0: NVIDIA GeForce RTX 4090 (24080 MiB, 23500 MiB free)")
    out = cli("plan", str(model), "--binary", str(exe), "--hardware", str(hw), "--mtp", "on", "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    argv = plan["argv"]
    assert argv[argv.index("--spec-type") + 1] == "draft-mtp" and argv[argv.index("--spec-draft-n-max") + 1] == "2"
    assert plan["gpu_branch"] is True and plan["warnings"]  # tiny model forced on: warned
    assert all(r["reason"] for r in plan["reasons"])
    lan = cli("plan", str(model), "--binary", str(exe), "--hardware", str(hw), "--lan", "--json")
    lan_plan = json.loads(lan.stdout)
    key_file = Path(lan_plan["argv"][lan_plan["argv"].index("--api-key-file") + 1])
    key = key_file.read_text().strip()
    assert "0.0.0.0" in lan_plan["argv"] and len(key) >= 24 and key not in lan.stdout
    if sys.platform != "win32":
        assert key_file.stat().st_mode & 0o077 == 0  # owner-only


@pytest.mark.parametrize("args,message", [
    (["--extra-args", "--port 1"], "error: --port cannot be used in extra arguments"),
    (["--extra-args", "'unbalanced"], "error: a quote in the extra arguments is not closed"),
    (["--draft-n-max", "40"], "error: llama-launcher plan: argument --draft-n-max: Draft length must be between 1 and 16"),
    (["--gpu-layers", "-5"], "error: llama-launcher plan: argument --gpu-layers: GPU layers must be between 0 and 999"),
    (["--ngram-n-min", "99", "--ngram-n-max", "50"], "error: ngram-mod n-min (99) must not exceed n-max (50)"),
    (["--extra-args", "--tmep 1"], "error: this llama-server has no option --tmep — did you mean --temp?"),
    (["--mtp", "maybe"], "error: llama-launcher plan: argument --mtp: invalid choice"),
    (["--ctx", "lots"], "error: llama-launcher plan: argument --ctx: 'lots' is not a whole number"),
    (["--bogus"], "error: llama-launcher: unrecognized arguments: --bogus"),
])
def test_plan_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    exe = make_fake_server(tmp_path / "f", "b11434-current")
    model = write_model(tmp_path / "m" / "big.gguf", arch="qwen35", blocks=3, nextn=1)
    out = cli("plan", str(model), "--binary", str(exe), "--mtp", "on", *args)
    assert out.returncode == 2 and out.stderr.startswith(message) and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr


def test_extra_args_may_start_with_a_dash(tmp_path: Path) -> None:
    """``--extra-args --spec-default`` used to fail in argparse with a multi-line usage message."""
    exe = make_fake_server(tmp_path / "f", "b11434-current")
    model = write_model(tmp_path / "m" / "big.gguf", arch="qwen35", blocks=3, nextn=1)
    for args in (["--extra-args", "--spec-default"], ["--extra-args=--spec-default"]):
        out = cli("plan", str(model), "--binary", str(exe), *args, "--json")
        assert out.returncode == 0, out.stderr
        plan = json.loads(out.stdout)
        assert plan["speculative"]["source"] == "user extra args" and plan["argv"][-1] == "--spec-default"


def test_plan_rejects_bad_model_and_hardware_files(tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "f", "b11434-current")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF")
    out = cli("plan", str(bad), "--binary", str(exe))
    assert out.returncode == 2 and "truncated" in out.stderr
    model = write_model(tmp_path / "m" / "ok.gguf")
    hw = tmp_path / "hw.json"
    hw.write_text("{not json")
    out = cli("plan", str(model), "--binary", str(exe), "--hardware", str(hw))
    assert out.returncode == 2 and "not valid JSON" in out.stderr


@pytest.mark.integration
def test_plan_argv_is_accepted_by_the_real_server(llama_server: str, demo_model: Path, mtp_models: dict,
                                                  runners: list) -> None:
    from llama_launcher.core.server.process import ServerRunner, ServerState

    for model in (demo_model, mtp_models["mtp"]):
        out = cli("plan", str(model), "--binary", llama_server, "--threads", "1", "--mtp", "on" if model != demo_model
                  else "auto", "--json")
        assert out.returncode == 0, out.stderr
        r = ServerRunner(json.loads(out.stdout)["argv"], ready_timeout=240)
        runners.append(r)
        r.start()
        assert r.wait_until((ServerState.READY, "failed"), 260) == ServerState.READY, r.reason
        r.stop()


@pytest.mark.integration
def test_bench_demo_model_off_versus_ngram(llama_server: str, demo_model: Path) -> None:
    results = {}
    for spec in ("off", "ngram"):
        out = cli("bench", str(demo_model), "--binary", llama_server, "--spec", spec, "--prompt", "code",
                  "--tokens", "160", "--runs", "1", "--threads", "2", "--json")
        assert out.returncode == 0, out.stderr
        results[spec] = json.loads(out.stdout)
    assert results["off"]["drafted"] == 0 and results["off"]["decode_tps"] > 0
    assert results["ngram"]["accepted"] > 0 and results["ngram"]["acceptance"] > 0
    assert "--spec-type" not in results["off"]["argv"] and "ngram-mod" in results["ngram"]["argv"]


@pytest.mark.integration
def test_bench_mtp_and_tune_then_plan_uses_the_measurement(llama_server: str, mtp_models: dict) -> None:
    model = str(mtp_models["mtp"])
    out = cli("bench", model, "--binary", llama_server, "--spec", "mtp", "--tokens", "128", "--runs", "1",
              "--threads", "1", "--json")
    assert out.returncode == 0, out.stderr
    b = json.loads(out.stdout)
    assert b["accepted"] > 0 and "draft-mtp" in b["argv"]
    tune = cli("tune", model, "--binary", llama_server, "--threads", "1", "--tokens", "96", "--json")
    assert tune.returncode == 0, tune.stderr
    t = json.loads(tune.stdout)
    table = t["best"]["table"]
    assert table[0]["setting"] == "off" and {"off", "ngram-mod"} <= {r["setting"] for r in table}
    mtp_rows = [r for r in table if "mtp" in r["methods"]]  # alone, or chained where ngram-mod helped
    assert mtp_rows and all(r["acceptance"] and r["acceptance"] > 0.5 for r in mtp_rows)  # stored, not null
    ngram_row = next(r for r in table if r["setting"] == "ngram-mod")
    assert ngram_row["acceptance"] is not None  # the figure bench reports is stored too
    assert t["servers"] <= 6 and "[1/" in tune.stderr  # at most half the 12 loads of a full sweep; progress shown
    plan = json.loads(cli("plan", model, "--binary", llama_server, "--json").stdout)
    assert plan["speculative"]["source"] == "measured"
    assert plan["speculative"]["summary"].endswith(t["in_effect"])  # each workload's ratio, as the window says it
    if t["best"]["methods"]:
        assert t["in_effect"] in " ".join(r["reason"] for r in plan["reasons"])


@pytest.mark.integration
def test_bench_with_a_draft_model_drafts_and_accepts(llama_server: str, tmp_path: Path) -> None:
    """draft-simple with a smaller model of the same vocabulary, found in the model's folder."""
    from synthetic_mtp import write_mimo2_model

    target = write_mimo2_model(tmp_path / "pair" / "target.gguf", with_mtp=False, hidden=128, n_trunk=4, ff=256,
                               name="target")
    small = write_mimo2_model(tmp_path / "pair" / "small.gguf", with_mtp=False, name="small")
    out = cli("bench", str(target), "--binary", llama_server, "--spec", "draft", "--tokens", "64", "--runs", "1",
              "--threads", "1", "--json")
    assert out.returncode == 0, out.stderr
    b = json.loads(out.stdout)
    assert b["argv"][b["argv"].index("--spec-type") + 1] == "draft-simple"
    assert b["argv"][b["argv"].index("--spec-draft-model") + 1] == str(small)
    assert b["drafted"] > 0 and b["accepted"] > 0
    # an explicit draft that does not fit is refused in one line
    other = write_model(tmp_path / "other" / "other.gguf", name="other", tokens=300)
    bad = cli("plan", str(target), "--binary", llama_server, "--draft-model", str(other))
    assert bad.returncode == 2 and "cannot draft for target" in bad.stderr and bad.stderr.count("\n") == 1
