"""Drafters in their own files, as models are published today (issue 22, item 1 and 2).

The pairs are written the way llama.cpp's converter writes them (tests/published_pairs.py says from
where): a ``--no-mtp`` target beside its ``mtp-`` head, a Gemma 4 target beside its assistant. The
plans are made against the real b11434 ``--help`` (tests/fixtures/help/b11434-recorded.help.txt).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llama_launcher.core.host.hardware import GPU, Hardware
from llama_launcher.core.llama_server.probe import capabilities_from_help
from llama_launcher.core.memory.estimate import MIB, kv_bytes
from llama_launcher.core.models.catalog import HeaderCache, scan
from llama_launcher.core.models.model_info import read_model_info
from llama_launcher.core.plan.flags import PlanError
from llama_launcher.core.plan.planner import plan_launch
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.methods import SpecMode
from llama_launcher.core.speculative.pairing import draft_options

from fake_server import HELP_DIR
from gguf_factory import write_model
from published_pairs import (
    write_gemma4_assistant,
    write_gemma4_target,
    write_qwen35_head,
    write_qwen35_target,
)

REAL = capabilities_from_help("/bin/llama-server", (HELP_DIR / "b11434-recorded.help.txt").read_text(),
                              (HELP_DIR / "b11434-recorded.version.txt").read_text())
GPU_HW = Hardware("x86", 65536, 60000, False, [GPU("RTX 4090", "CUDA", 24564, 24000)], backend_devices=None)
CPU_HW = Hardware("x86", 65536, 60000, False, [])


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("published")
    write_qwen35_target(folder / "qwen" / "Qwen3.6-8B-Q4_K_M.gguf")
    write_qwen35_target(folder / "qwen" / "Qwen3.6-8B-Q8_0.gguf")
    write_qwen35_head(folder / "qwen" / "mtp-Qwen3.6-8B-Q8_0.gguf")
    write_gemma4_target(folder / "gemma" / "gemma-4-31B-it-Q4_K_M.gguf")
    write_gemma4_assistant(folder / "gemma" / "mtp-gemma-4-31B-it-Q8_0.gguf")
    return folder


def catalog(folder: Path):
    return scan([folder], include_defaults=False, cache=HeaderCache(folder.parent / f"{folder.name}-cache.json"))


def planned(folder: Path, name: str, hw: Hardware = GPU_HW, **kw):
    res = catalog(folder)
    model = next(m for m in res.models if m.file_name == name)
    return model, plan_launch("/bin/llama-server", model, hw, REAL, PlanSettings(port=1, **kw), None,
                              draft_options(model, res.drafters()))


def spec(argv: list[str]) -> list[str]:
    i = argv.index("--spec-type")
    j = next((k for k in range(i, len(argv)) if argv[k] == "-c"), len(argv))
    return argv[i:j]


# --- the listing -------------------------------------------------------------------------------------

def test_a_head_is_listed_under_each_target_it_fits_and_not_as_a_model(published: Path) -> None:
    res = catalog(published)
    names = sorted(m.file_name for m in res.models)
    assert names == ["Qwen3.6-8B-Q4_K_M.gguf", "Qwen3.6-8B-Q8_0.gguf", "gemma-4-31B-it-Q4_K_M.gguf"]
    heads = {h.file_name: h for h in res.heads}
    assert set(heads) == {"mtp-Qwen3.6-8B-Q8_0.gguf", "mtp-gemma-4-31B-it-Q8_0.gguf"}
    qwen_head, gemma_head = heads["mtp-Qwen3.6-8B-Q8_0.gguf"], heads["mtp-gemma-4-31B-it-Q8_0.gguf"]
    assert qwen_head.head == "mtp" and not qwen_head.launchable and not qwen_head.is_mtp
    assert gemma_head.head == "gemma4-assistant" and not gemma_head.launchable
    for m in res.models:
        want = gemma_head.path if m.architecture == "gemma4" else qwen_head.path
        assert m.heads == [want], m.file_name
        assert m.launchable and m.nextn_predict_layers == 0  # the --no-mtp targets


def test_the_tensors_decide_not_the_name(tmp_path: Path) -> None:
    # a whole model called mtp-*: a model; a NextN-only file without the prefix: a head
    write_model(tmp_path / "mtp-whole.gguf", arch="qwen35", blocks=3, nextn=1, tokens=8)
    write_qwen35_head(tmp_path / "Qwen3.6-8B-draft.gguf")
    write_qwen35_target(tmp_path / "Qwen3.6-8B-Q4_K_M.gguf")
    res = catalog(tmp_path)
    assert sorted(m.file_name for m in res.models) == ["Qwen3.6-8B-Q4_K_M.gguf", "mtp-whole.gguf"]
    assert [h.file_name for h in res.heads] == ["Qwen3.6-8B-draft.gguf"]
    whole = next(m for m in res.models if m.file_name == "mtp-whole.gguf")
    assert whole.is_mtp and whole.head is None and whole.launchable
    target = next(m for m in res.models if m.file_name.startswith("Qwen"))
    assert target.heads == [str(tmp_path / "Qwen3.6-8B-draft.gguf")]  # same general.name: it pairs


@pytest.mark.parametrize("change,why", [
    ({"salt": "other"}, "a different tokenizer"),
    ({"layers": 40}, "made for a model with 40 layers, this one has 36"),
    ({"hidden": 2048}, "hidden size 2048"),
    ({"name": "Other Model"}, "its name does not match"),
], ids=["vocabulary", "layers", "hidden", "name"])
def test_a_head_that_does_not_fit_is_not_paired_and_says_why(tmp_path: Path, change: dict, why: str) -> None:
    target = write_qwen35_target(tmp_path / "Qwen3.6-8B-Q4_K_M.gguf")
    head = write_qwen35_head(tmp_path / ("mtp-Other-Q8_0.gguf" if "name" in change else "mtp-Qwen3.6-8B-Q8_0.gguf"),
                             **change)
    res = catalog(tmp_path)
    assert res.models[0].heads == [] and [h.path for h in res.heads] == [str(head)]
    opts = draft_options(read_model_info(target), res.drafters())
    assert len(opts) == 1 and not opts[0].ok and why in opts[0].reason, opts[0].reason
    plan = plan_launch("/bin/llama-server", res.models[0], GPU_HW, REAL,
                       PlanSettings(port=1, modes={"mtp": SpecMode.ON}), None, opts)
    assert "draft-mtp" not in plan.argv
    assert any("MTP is on, but" in w and why in w for w in plan.warnings), plan.warnings


def test_a_head_is_refused_alone_with_one_sentence(published: Path) -> None:
    res = catalog(published)
    head = next(h for h in res.heads if h.head == "mtp")
    with pytest.raises(PlanError) as exc:
        plan_launch("/bin/llama-server", head, GPU_HW, REAL, PlanSettings(port=1))
    assert str(exc.value).startswith("mtp-Qwen3.6-8B-Q8_0.gguf is an MTP head: it drafts")
    assert "cannot run on its own" in str(exc.value) and "\n" not in str(exc.value)


# --- the plan -----------------------------------------------------------------------------------------

def test_auto_runs_mtp_from_the_head_file_on_a_gpu(published: Path) -> None:
    _, p = planned(published / "qwen", "Qwen3.6-8B-Q4_K_M.gguf")
    head = str(published / "qwen" / "mtp-Qwen3.6-8B-Q8_0.gguf")
    assert spec(p.argv) == ["--spec-type", "draft-mtp", "--spec-draft-model", head, "--spec-draft-ngl", "all",
                            "--spec-draft-n-max", "2"]
    assert "ngram-mod" not in p.argv[p.argv.index("--spec-type") + 1]  # never draft-simple, never a chained mod
    assert "MTP head" in p.reason_for("--spec-draft-model")
    assert p.speculative.to_dict()["head"]["path"] == head


@pytest.mark.parametrize("hw", [CPU_HW], ids=["cpu"])
def test_auto_on_cpu_chains_ngram_mod_with_mtp_from_the_head(published: Path, hw: Hardware) -> None:
    _, p = planned(published / "qwen", "Qwen3.6-8B-Q8_0.gguf", hw)
    head = str(published / "qwen" / "mtp-Qwen3.6-8B-Q8_0.gguf")
    assert spec(p.argv)[:4] == ["--spec-type", "ngram-mod,draft-mtp", "--spec-draft-model", head]
    assert "--spec-draft-ngl" not in p.argv and p.argv.count("--spec-type") == 1


def test_the_head_is_counted_by_its_own_tensors_not_as_a_second_model(published: Path) -> None:
    target, p = planned(published / "qwen", "Qwen3.6-8B-Q4_K_M.gguf", CPU_HW, ctx=32768)
    head = read_model_info(published / "qwen" / "mtp-Qwen3.6-8B-Q8_0.gguf")
    mem = p.memory
    assert mem is not None and mem.draft_model_mib == 0
    assert mem.head_mib == round(head.file_size / MIB) and mem.head_file == head.file_name
    # its draft context: one NextN layer of KV at the target's context (f16), not 37 layers of a second model
    one_layer = kv_bytes(head, 32768, include_mtp=True) - kv_bytes(head, 32768)
    assert one_layer > 0 and abs(mem.draft_mib * MIB - one_layer) < 0.2 * one_layer + 64 * MIB
    as_model = kv_bytes(target, 32768)  # what counting it as a draft model would add for its KV alone
    assert mem.draft_mib * MIB < as_model / 4
    assert "MTP head" in mem.describe() and "draft model" not in mem.describe()


def test_the_drafters_kv_type_follows_the_setting_and_changes_its_memory(published: Path) -> None:
    _, f16 = planned(published / "qwen", "Qwen3.6-8B-Q4_K_M.gguf", CPU_HW, ctx=32768)
    _, q8 = planned(published / "qwen", "Qwen3.6-8B-Q4_K_M.gguf", CPU_HW, ctx=32768, draft_cache_type="q8_0")
    assert "--spec-draft-type-k" not in f16.argv
    i = q8.argv.index("--spec-draft-type-k")
    assert q8.argv[i:i + 4] == ["--spec-draft-type-k", "q8_0", "--spec-draft-type-v", "q8_0"]
    assert q8.memory is not None and f16.memory is not None and q8.memory.draft_mib < f16.memory.draft_mib


def test_gemma4_target_and_assistant_plan_draft_mtp_and_the_assistant_has_no_kv_of_its_own(published: Path) -> None:
    target, p = planned(published / "gemma", "gemma-4-31B-it-Q4_K_M.gguf", CPU_HW, ctx=32768)
    assistant = str(published / "gemma" / "mtp-gemma-4-31B-it-Q8_0.gguf")
    assert spec(p.argv)[:4] == ["--spec-type", "ngram-mod,draft-mtp", "--spec-draft-model", assistant]
    assert "Gemma 4 assistant" in p.reason_for("--spec-draft-model")
    mem = p.memory
    assert mem is not None and mem.head_mib > 0
    plain = plan_launch("/bin/llama-server", target, CPU_HW, REAL,
                        PlanSettings(port=1, ctx=32768, modes={"mtp": SpecMode.OFF}))
    assert plain.memory is not None
    # the assistant reads the target's cache: what it adds is its weights and its compute, never KV
    assert mem.kv_mib == plain.memory.kv_mib and mem.draft_mib < 64


def test_gemma4_kv_uses_the_sliding_window_head_width_and_the_window(published: Path) -> None:
    target = read_model_info(published / "gemma" / "gemma-4-31B-it-Q4_K_M.gguf")
    assert target.arch_meta["attention.key_length_swa"] == 256 and target.arch_meta["attention.key_length"] == 512
    # 50 sliding-window layers: 16 KV heads x 256 x (K+V) f16, at most 1024 x 4 slots + 512 cells;
    # 10 full layers: 4 KV heads x 512 x (K+V) f16 at every cell
    swa = 50 * (1024 * 4 + 512) * 16 * 256 * 2 * 2
    full = 10 * 32768 * 4 * 512 * 2 * 2
    assert kv_bytes(target, 32768) == swa + full


# --- the CLI --------------------------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # the fake binary's --list-devices names the GPU of GPU_HW (the binary's own device list wins)
    env = {**os.environ, "FAKE_DEVICES": "  CUDA0: NVIDIA GeForce RTX 4090 (24564 MiB, 24000 MiB free)"}
    return subprocess.run([sys.executable, "-m", "llama_launcher", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_models_json_and_table_show_the_pairing(published: Path) -> None:
    out = _cli("models", str(published / "qwen"), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    head = str(published / "qwen" / "mtp-Qwen3.6-8B-Q8_0.gguf")
    assert [m["heads"] for m in data["models"]] == [[head], [head]]
    assert [h["path"] for h in data["heads"]] == [head]
    assert data["heads"][0]["kind"] == "MTP head" and data["heads"][0]["launchable"] is False
    assert sorted(data["heads"][0]["drafts_for"]) == sorted(m["path"] for m in data["models"])
    assert data["heads"][0]["shown_as"].startswith("MTP head: mtp-Qwen3.6-8B-Q8_0.gguf, 1.5 GiB")
    text = _cli("models", str(published / "qwen")).stdout
    lines = text.splitlines()
    rows = [i for i, ln in enumerate(lines) if ln.startswith("Qwen3.6 8B")]
    assert len(rows) == 2 and all(lines[i + 1].lstrip().startswith("└ mtp-Qwen3.6-8B-Q8_0.gguf") for i in rows)
    assert "not launchable" in lines[rows[0] + 1]


def test_plan_json_shows_the_head_and_plan_of_a_head_is_one_error_line(published: Path, tmp_path: Path) -> None:
    from fake_server import make_fake_server

    binary = make_fake_server(tmp_path / "bin", "b11434-recorded")
    hw = tmp_path / "hw.json"
    hw.write_text(GPU_HW.to_json())
    target = published / "qwen" / "Qwen3.6-8B-Q4_K_M.gguf"
    out = _cli("plan", str(target), "--binary", str(binary), "--hardware", str(hw), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    head = str(published / "qwen" / "mtp-Qwen3.6-8B-Q8_0.gguf")
    assert data["speculative"]["head"] == {"path": head, "kind": "MTP head", "bytes": Path(head).stat().st_size}
    assert data["speculative"]["types"] == ["draft-mtp"] and head in data["argv"]
    assert data["memory"]["head_mib"] > 0 and data["memory"]["draft_model_mib"] == 0
    out = _cli("plan", head, "--binary", str(binary), "--hardware", str(hw))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("error: mtp-Qwen3.6-8B-Q8_0.gguf is an MTP head: it drafts for Qwen3.6-8B-Q4_K_M.gguf")
    assert len(out.stderr.strip().splitlines()) == 1
