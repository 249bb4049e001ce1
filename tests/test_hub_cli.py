"""``llama-launcher search`` and ``download`` as a user runs them (a subprocess, HF_ENDPOINT at the fake
Hub), with the real llama-server's abilities where one is installed; the download killed at 40% and
run again fetches only what was missing (counted at the server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from test_hub import GPU_8GB, GPU_24GB

from conftest import wait_for
from fake_hub import TOKEN

TINY = "tiny/Tiny-GGUF"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llama_launcher", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def test_search_table_and_json(fake_hub) -> None:
    out = cli("search", "gguf")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["repository", "downloads", "likes", "updated"]
    assert lines[2].split()[:4] == ["big/Big-14B-GGUF", "90,000", "400", "2026-10-01"]
    assert lines[3].split()[:3] == ["tiny/Tiny-GGUF", "5,000", "10"] and "\\n" not in out.stdout
    data = json.loads(cli("search", "tiny", "--json").stdout)
    assert data == [{"repo": TINY, "downloads": 5000, "likes": 10, "updated": "2026-10-01", "gated": None,
                     "private": False}]


def test_search_offline_is_one_line(fake_hub) -> None:
    fake_hub.stop()
    out = cli("search", "qwen")
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "cannot reach 127.0.0.1" in out.stderr


def test_download_dry_run_shows_the_verdicts_for_a_described_machine(fake_hub, tmp_path) -> None:
    hw = tmp_path / "gpu8.json"
    hw.write_text(json.dumps(GPU_8GB))
    out = cli("download", "big/Big-14B-GGUF", "--hardware", str(hw), "--dry-run")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[1] if line.startswith("*") else line.split()[0]: line for line in out.stdout.splitlines()[2:6]}
    assert rows["Q2_K"].startswith("* Q2_K") and "fits on the GPU" in rows["Q2_K"]
    assert "partly on the GPU (slower)" in rows["Q8_0"] and "\\n" not in out.stdout
    assert "recommended: Q2_K is the largest quant that fits fully on the GPU" in out.stdout
    hw.write_text(json.dumps(GPU_24GB))
    lines = [json.loads(x) for x in cli("download", "big/Big-14B-GGUF", "--hardware", str(hw), "--dry-run",
                                         "--json").stdout.splitlines()]
    assert [x["event"] for x in lines] == ["repo", "plan"]
    assert lines[0]["recommended"] == "Q8_0" and lines[1]["quant"] == "Q8_0"
    assert [f["role"] for f in lines[1]["files"]] == ["model", "MTP head", "projector"]
    assert lines[0]["header_bytes_read"] < 10 * 1024 * 1024


def test_download_into_a_folder_with_progress_lines_then_the_catalog_lists_it(fake_hub, tmp_path) -> None:
    out = cli("download", f"{TINY}:Q6_K", "--no-mtp-head", "--to", str(tmp_path / "models"), "--json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(x) for x in out.stdout.splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["fraction"] == 1.0 and events[-1]["event"] == "done"
    assert [f["path"] for f in events[1]["files"]] == ["Q6_K/tiny-Q6_K-00001-of-00002.gguf",
                                                       "Q6_K/tiny-Q6_K-00002-of-00002.gguf", "mmproj-tiny-F16.gguf"]
    listed = json.loads(cli("models", str(tmp_path / "models"), "--json").stdout)
    model = next(m for m in listed["models"] if m["split_count"] == 2)
    assert model["launchable"] and model["path"] == events[-1]["path"] and model["mmproj"]


def test_a_download_killed_at_40_percent_resumes_without_fetching_again(fake_hub) -> None:
    path = "tiny-F16.gguf"
    f = fake_hub.repos[TINY].files[path]
    fake_hub.behaviour.pause_at[f.sha256] = int(f.size * 0.4)
    proc = subprocess.Popen([sys.executable, "-m", "llama_launcher", "download", f"{TINY}:F16", "--no-mtp-head",
                             "--no-mmproj", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    partial = Path(fake_hub.cache_dir) / "models--tiny--Tiny-GGUF" / "blobs" / f"{f.sha256}.{path}.llpartial"
    try:
        assert fake_hub.paused.wait(60)
        assert wait_for(lambda: partial.exists() and partial.stat().st_size >= int(f.size * 0.35), 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    fake_hub.behaviour.pause_at.clear()
    fake_hub.release.set()  # the killed client's request ends (its late bytes are not the second run's)
    kept = partial.stat().st_size
    assert int(f.size * 0.35) <= kept <= int(f.size * 0.4)
    fake_hub.reset_counts()
    out = cli("download", f"{TINY}:F16", "--no-mtp-head", "--no-mmproj")
    assert out.returncode == 0, out.stderr
    download = [(start, sent) for sha, start, sent in fake_hub.transfers if sha == f.sha256 and start >= 1 << 20]
    assert download == [(kept, f.size - kept)]  # from where it stopped, and only the rest
    header = [sent for sha, start, sent in fake_hub.transfers if sha == f.sha256 and start < 1 << 20]
    assert sum(header) <= (1 << 20) + 8  # the header read: at most the first MiB (and the 8 bytes of the magic)
    assert "ready: " in out.stdout and not partial.exists()


def test_gated_words_and_the_token_never_printed(fake_hub, monkeypatch) -> None:
    fake_hub.repos[TINY].gated = "manual"
    out = cli("download", TINY, "--dry-run")
    assert out.returncode == 1 and "is gated: accept its terms at" in out.stderr and "hf auth login" in out.stderr
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    out = cli("download", TINY, "--dry-run", "--json")
    assert out.returncode == 0, out.stderr
    out2 = cli("download", TINY, "--dry-run")
    assert "token: the HF_TOKEN environment variable" in out2.stderr
    assert TOKEN not in out.stdout + out.stderr + out2.stdout + out2.stderr


def test_the_login_saved_by_hf_auth_login_is_used_and_named(fake_hub) -> None:
    fake_hub.repos[TINY].gated = "manual"
    token_file = Path(os.environ["HF_HOME"]) / "token"  # where `hf auth login` saves it (HF_TOKEN_PATH)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(TOKEN)
    out = cli("download", TINY, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert f"token: the login saved by `hf auth login` ({token_file})" in out.stderr
    assert TOKEN not in out.stdout + out.stderr
    fake_hub.behaviour.granted = False  # logged in, but the terms were not accepted for this account
    out = cli("download", TINY, "--dry-run")
    assert out.returncode == 1 and "is gated: accept its terms at" in out.stderr


def test_bad_input_is_a_usage_error(fake_hub) -> None:
    out = cli("download", "not-a-repo")
    assert out.returncode == 2 and "write OWNER/NAME" in out.stderr
    out = cli("download", f"{TINY}:Q3_K_S", "--dry-run")
    assert out.returncode == 2 and "has no quant 'Q3_K_S'" in out.stderr


@pytest.mark.integration
def test_a_downloaded_mtp_model_launches_with_the_real_server(fake_hub, llama_server, mtp_models, runners) -> None:
    """The whole way: found on the Hub, judged, downloaded into the cache, planned and run by the real
    llama-server, and its MTP layers draft tokens."""
    from llama_launcher.core.server.chat_client import chat
    from llama_launcher.core.server.process import ServerState
    from test_server_integration import plan_for, start

    from fake_hub import FakeRepo, real

    fake_hub.repos["tiny/Mimo-MTP-GGUF"] = FakeRepo(
        {"tiny-mimo2-MTP-Q8_0.gguf": real(mtp_models["mtp"].read_bytes())}, commit="5" * 40)
    out = cli("download", "tiny/Mimo-MTP-GGUF", "--json", "--binary", llama_server)
    assert out.returncode == 0, out.stderr
    events = [json.loads(x) for x in out.stdout.splitlines()]
    repo = events[0]
    assert repo["quants"][0]["nextn_predict_layers"] == 1
    assert repo["quants"][0]["speculative"].startswith("MTP: the file has 1 MTP layer(s)")
    path = Path(events[-1]["path"])
    assert "snapshots" in str(path) and path.read_bytes() == mtp_models["mtp"].read_bytes()
    plan = plan_for(llama_server, path, mtp="on", threads=1)
    r = start(runners, plan.argv)
    assert r.state == ServerState.READY, (r.reason, list(r.history)[-5:])
    res = chat(r.base_url, [{"role": "user", "content": "hello world"}], max_tokens=64)
    assert res.timings is not None and res.timings.get("draft_n_accepted", 0) > 0


@pytest.mark.integration
def test_a_downloaded_target_and_its_mtp_head_launch_as_draft_mtp(fake_hub, llama_server, tmp_path, runners) -> None:
    """A repository as llama.cpp's converter publishes one now: a --no-mtp target and an mtp- head.
    The download brings the head along; the catalog pairs it with the target; the plan runs it as
    -md <head> --spec-type draft-mtp, and the real server accepts drafts."""
    from llama_launcher.core.models.catalog import scan
    from llama_launcher.core.server.chat_client import chat
    from llama_launcher.core.server.process import ServerState
    from test_server_integration import start

    from fake_hub import FakeRepo, real
    from synthetic_mtp import write_mimo2_split

    target, head = write_mimo2_split(tmp_path / "made")
    fake_hub.repos["tiny/Mimo-split-GGUF"] = FakeRepo(
        {"tiny-mimo2-Q8_0.gguf": real(target.read_bytes()), f"mtp-{target.name}": real(head.read_bytes())},
        commit="6" * 40)
    out = cli("download", "tiny/Mimo-split-GGUF", "--json", "--binary", llama_server)
    assert out.returncode == 0, out.stderr
    events = [json.loads(x) for x in out.stdout.splitlines()]
    placed = Path(events[-1]["path"])
    assert (placed.parent / f"mtp-{target.name}").is_file()  # the head came along, beside the target
    found = scan([], include_defaults=True)  # the Hugging Face cache is one of the usual places
    model = next(m for m in found.models if m.path == str(placed))
    assert any(Path(h).name == f"mtp-{target.name}" for h in model.heads)
    assert not any(m.file_name == f"mtp-{target.name}" for m in found.models)  # a head is not a model
    planned = cli("plan", str(placed), "--binary", llama_server, "--mtp", "on", "-t", "1", "--json")
    assert planned.returncode == 0, planned.stderr
    argv = json.loads(planned.stdout)["argv"]  # as `plan` (and the window) pair it: from the catalog
    assert argv[argv.index("--spec-draft-model") + 1].endswith(f"mtp-{target.name}")
    assert "draft-mtp" in argv[argv.index("--spec-type") + 1].split(",")
    r = start(runners, argv)
    assert r.state == ServerState.READY, (r.reason, list(r.history)[-5:])
    res = chat(r.base_url, [{"role": "user", "content": "hello world"}], max_tokens=64)
    assert res.timings is not None and res.timings.get("draft_n_accepted", 0) > 0, res.timings
