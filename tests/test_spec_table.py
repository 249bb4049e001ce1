"""The method table grown to what b11434 lists (issue 22, items 3 and 4), planned over its real ``--help``.

Every row reads tests/fixtures/help/b11434-recorded.help.txt, the ``--help`` of the llama-server that
``get-server`` builds: the four newer ngram types with their knobs, the drafters' knobs (n-min, p-min,
sampling, KV type), llama.cpp's chaining rule (one model-based type), the DFlash/DSpark block clamp,
and the warning when a binary lists ngram-mod without its knobs (Unsloth Studio's resolver cases
D01/D02: a fork era that has MTP, on CPU and on a Mac).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from llama_launcher.core.host.hardware import GPU, Hardware
from llama_launcher.core.llama_server.probe import Capabilities, capabilities_from_help
from llama_launcher.core.models.model_info import ModelInfo, read_model_info
from llama_launcher.core.plan.flags import PlanError
from llama_launcher.core.plan.planner import plan_launch
from llama_launcher.core.settings.launch import (
    MODEL_SETTINGS,
    ModelSettings,
    PlanSettings,
    check_model_settings,
)
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.methods import BY_ID, SpecMode
from llama_launcher.core.speculative.pairing import draft_options

from fake_server import HELP_DIR
from gguf_factory import write_model

REAL = capabilities_from_help("/bin/llama-server", (HELP_DIR / "b11434-recorded.help.txt").read_text(),
                              (HELP_DIR / "b11434-recorded.version.txt").read_text())
GPU_HW = Hardware("x86", 65536, 60000, False, [GPU("RTX 4090", "CUDA", 24564, 24000)], backend_devices=None)
CPU_HW = Hardware("x86", 65536, 60000, False, [])
MAC_HW = Hardware("Apple M3 Max", 65536, 50000, True, [GPU("Apple M3 Max GPU", "Metal", 65536, 50000, source="Apple")])
MOD_KNOBS = ["--spec-ngram-mod-n-match", "24", "--spec-ngram-mod-n-min", "48", "--spec-ngram-mod-n-max", "64"]


def model(params: float = 9e9, mtp_layers: int = 1, **kw) -> ModelInfo:
    return ModelInfo(path="/models/m.gguf", name="m", file_name="m.gguf", folder="/models",
                     file_size=int(params * 0.6), architecture="qwen35", parameters=int(params),
                     trunk_parameters=int(params), context_length=32768, block_count=32 + mtp_layers,
                     nextn_predict_layers=mtp_layers, is_mtp=mtp_layers > 0,
                     arch_meta={"embedding_length": 4096, "attention.head_count": 32, "attention.head_count_kv": 8,
                                "attention.key_length": 128, "attention.value_length": 128}, **kw)


def plan(m: ModelInfo, hw: Hardware = CPU_HW, caps: Capabilities = REAL, tuned: TunedChoice | None = None,
         drafts=None, **kw):
    modes = {k.replace("_", "-"): SpecMode(kw.pop(k)) for k in list(kw) if k.replace("_", "-") in BY_ID}
    return plan_launch("/bin/llama-server", m, hw, caps, PlanSettings(port=1, modes=modes, ctx=4096, **kw), tuned,
                       drafts)


def spec_part(argv: list[str]) -> list[str]:
    i = argv.index("--spec-type")
    return argv[i:argv.index("-c")]


# --- the newer ngram types ------------------------------------------------------------------------

@pytest.mark.parametrize("mid,key", [("ngram-simple", "ngram_simple"), ("ngram-map-k", "ngram_map_k"),
                                     ("ngram-map-k4v", "ngram_map_k4v")])
def test_each_newer_ngram_type_runs_with_its_knobs(mid: str, key: str) -> None:
    p = plan(model(9e9, 0), **{mid: "on", "ngram_mod": "off", f"{key}_size_n": 6, f"{key}_min_hits": 2})
    assert spec_part(p.argv) == ["--spec-type", mid, f"--spec-{mid}-size-n", "6", f"--spec-{mid}-size-m", "48",
                                 f"--spec-{mid}-min-hits", "2"]
    assert "lookup n-gram" in (p.reason_for(f"--spec-{mid}-size-n") or "")
    # the logits rows each slot reserves follow its m-gram, as llama.cpp's common_speculative_n_max does
    assert p.memory is not None and p.memory.launch.n_draft == 48


def test_ngram_cache_has_no_knobs_and_chains_with_ngram_mod() -> None:
    p = plan(model(9e9, 0), ngram_cache="on")
    assert spec_part(p.argv) == ["--spec-type", "ngram-mod,ngram-cache", *MOD_KNOBS]


def test_auto_keeps_ngram_mod_and_says_why_the_newer_types_wait_for_a_measurement() -> None:
    p = plan(model(9e9, 0))
    assert spec_part(p.argv) == ["--spec-type", "ngram-mod", *MOD_KNOBS]
    for mid in ("ngram-simple", "ngram-map-k", "ngram-map-k4v", "ngram-cache"):
        assert p.speculative.available[mid].ok
        assert "only when Tune measured it" in p.speculative.auto_off[mid]


def test_a_measured_newer_type_is_what_auto_runs() -> None:
    p = plan(model(9e9, 0), tuned=TunedChoice(("ngram-map-k",), None, 1.4))
    assert spec_part(p.argv)[:2] == ["--spec-type", "ngram-map-k"]
    assert "measured" in (p.reason_for("--spec-type") or "")


# --- the drafters' knobs -----------------------------------------------------------------------------

def test_the_drafters_knobs_are_emitted_when_set_and_only_then() -> None:
    base = spec_part(plan(model(9e9), GPU_HW).argv)
    assert base == ["--spec-type", "draft-mtp", "--spec-draft-n-max", "2"]
    p = plan(model(9e9), GPU_HW, draft_n_min=1, draft_p_min=0.5, draft_sampling="probabilistic",
             draft_cache_type="q8_0")
    assert spec_part(p.argv) == ["--spec-type", "draft-mtp", "--spec-draft-n-max", "2", "--spec-draft-n-min", "1",
                                 "--spec-draft-p-min", "0.5", "--spec-draft-type-k", "q8_0", "--spec-draft-type-v",
                                 "q8_0", "--spec-draft-sampling", "probabilistic"]
    assert p.reason_for("--spec-draft-p-min") == "your draft confidence"


def test_the_drafters_kv_type_follows_the_models_when_only_that_is_set() -> None:
    p = plan(model(9e9), GPU_HW, cache_type="q8_0")
    i = p.argv.index("--spec-draft-type-k")
    assert p.argv[i:i + 4] == ["--spec-draft-type-k", "q8_0", "--spec-draft-type-v", "q8_0"]
    assert "follows the model's" in (p.reason_for("--spec-draft-type-k") or "")
    assert p.memory is not None and p.memory.launch.draft_cache_type_k == "q8_0"


def test_a_knob_the_binary_lacks_is_said_not_passed() -> None:
    old = capabilities_from_help("/bin/llama-server", (HELP_DIR / "b9093-post-rename.help.txt").read_text())
    p = plan(model(9e9, 0), caps=old, draft="off", draft_p_min=0.3, ngram_simple="on", ngram_simple_size_n=5)
    assert "--spec-draft-p-min" not in p.argv  # no model drafter here, so the knob is not about this launch
    fork = capabilities_from_help("/bin/llama-server", (HELP_DIR / "fork-mtp-token.help.txt").read_text())
    p = plan(model(9e9), GPU_HW, caps=fork, draft_p_min=0.3)
    assert "--spec-draft-p-min" not in p.argv
    assert any("no --spec-draft-p-min" in w and "0.3" in w for w in p.warnings), p.warnings


def test_the_knobs_are_declared_once_with_ranges_for_file_cli_and_window() -> None:
    assert MODEL_SETTINGS["draft_p_min"].kind is float and MODEL_SETTINGS["draft_p_min"].range_text == "0..1"
    assert MODEL_SETTINGS["draft_sampling"].choices == ("greedy", "probabilistic")
    assert "q8_0" in MODEL_SETTINGS["draft_cache_type"].choices
    ms = ModelSettings(draft_p_min=1.5, draft_sampling="random", ngram_map_k_size_m=0, draft_n_min=5, draft_n_max=3)
    problems = check_model_settings(ms, "m.gguf")
    assert [p.split(":")[1].strip().split(" must")[0] for p in problems] == \
        ["Draft confidence", "Draft sampling", "ngram-map-k size-m", "the draft minimum (5)"]
    assert (ms.draft_p_min, ms.draft_sampling, ms.ngram_map_k_size_m, ms.draft_n_min) == (None, None, 48, None)


def test_the_cli_has_the_new_options_with_their_ranges(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "llama_launcher", "plan", str(tmp_path / "none.gguf"), *args],
                              capture_output=True, text=True, timeout=60)

    help_text = subprocess.run([sys.executable, "-m", "llama_launcher", "plan", "--help"], capture_output=True,
                               text=True, timeout=60).stdout
    for option in ("--ngram-simple", "--ngram-map-k4v", "--ngram-cache", "--ngram-map-k-size-m", "--draft-p-min",
                   "--draft-n-min", "--draft-sampling", "--draft-cache-type"):
        assert option in help_text
    bad = run("--draft-p-min", "2")
    assert bad.returncode == 2 and "Draft confidence must be between 0 and 1 (got 2)" in bad.stderr
    bad = run("--draft-sampling", "random")
    assert bad.returncode == 2 and "greedy, probabilistic" in bad.stderr


# --- llama.cpp's chaining rule -------------------------------------------------------------------------

def test_a_second_model_based_type_is_refused_with_a_reason(tmp_path: Path) -> None:
    target = dataclasses.replace(model(14e9), vocab_hash="v", vocab_size=100)
    small = dataclasses.replace(model(0.5e9, 0), path="/models/s.gguf", name="s", file_name="s.gguf",
                                vocab_hash="v", vocab_size=100)
    p = plan(target, GPU_HW, drafts=draft_options(target, [small]), mtp="on", draft="on")
    assert p.speculative.methods == ["mtp"] and p.argv.count("--spec-type") == 1
    assert "Draft model is refused" in p.speculative.refused["draft"]
    assert "--spec-draft-model" not in p.argv
    with pytest.raises(PlanError, match="at most one model-based type"):
        plan(target, GPU_HW, extra_args="--spec-type draft-mtp,draft-simple")
    assert plan(target, GPU_HW, extra_args="--spec-type ngram-mod,ngram-simple,draft-mtp").speculative.user_types


# --- the DFlash/DSpark block clamp ----------------------------------------------------------------------

@pytest.mark.parametrize("arch_kv,markov,want", [
    ({"dflash.block_size": 8}, False, 7),  # DFlash: the block less its anchor
    ({"dflash.block_size": 8, "dflash.sample_from_anchor": "bool:true"}, True, 8),  # DSpark from the anchor: all 8
    ({}, False, 15),  # no block_size: llama.cpp's 16
], ids=["dflash", "dspark-anchor", "default"])
def test_the_block_clamp_is_shown_and_caps_the_draft_length(tmp_path: Path, arch_kv: dict, markov: bool,
                                                            want: int) -> None:
    kv = {k: v for k, v in arch_kv.items() if not str(v).startswith("bool:")}
    path = write_model(tmp_path / "head.gguf", arch="dflash", name="head", tokens=16,
                       extra_kv={**kv, "dflash.target_hidden_size": 4096, "dflash.target_layers": [1, 8, 20]})
    if any(str(v).startswith("bool:") for v in arch_kv.values()):
        _add_bool(path, "dflash.sample_from_anchor", True)
    head = dataclasses.replace(read_model_info(path), markov_head=markov)
    if markov:
        head.head = "dspark"
    target = dataclasses.replace(model(9e9, 0), vocab_hash=head.vocab_hash)
    mid = "dspark" if markov else "dflash"
    opts = draft_options(target, [head])
    assert opts[0].ok and opts[0].method == mid
    p = plan(target, GPU_HW, drafts=opts, draft_n_max=16, **{mid: "on"})
    assert p.argv[p.argv.index("--spec-draft-n-max") + 1] == str(want)
    assert f"at most {want}" in (p.reason_for("--spec-draft-n-max") or "")
    assert any(f"at most {want} tokens" in w for w in p.warnings)
    assert f"drafts at most {want} tokens" in p.speculative.available[mid].reason
    assert p.speculative.draft_clamp == want


def _add_bool(path: Path, key: str, value: bool) -> None:
    """Rewrite ``path`` with one more bool key (the factory writes numbers and text only)."""
    from gguf import GGUFReader, GGUFWriter

    r = GGUFReader(str(path))
    arch = str(bytes(r.fields["general.architecture"].parts[-1]), "utf-8")
    out = path.with_suffix(".tmp")
    w = GGUFWriter(str(out), arch)
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture":
            continue
        w.add_key_value(f.name, f.contents(), f.types[0], f.types[-1] if len(f.types) > 1 else None)
    w.add_bool(key, value)
    for t in r.tensors:
        w.add_tensor(t.name, t.data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    out.replace(path)


# --- MTP named in the metadata, its tensors in another file ---------------------------------------------

def test_a_target_that_kept_the_mtp_key_but_not_its_tensors_never_gets_builtin_mtp() -> None:
    trunk_only = model(9e9, 1, mtp_parameters=0)
    p = plan(trunk_only, GPU_HW, mtp="on", ngram_mod="off")
    assert "--spec-type" not in p.argv  # llama.cpp aborts on draft-mtp there ("MTP block missing nextn.eh_proj")
    assert "none of their tensors are in this file" in p.speculative.available["mtp"].reason
    assert any(w.startswith("MTP is on, but the model declares MTP layers") for w in p.warnings)


# --- D01/D02: MTP, but ngram-mod without its knobs (a fork era) ------------------------------------------

NO_MOD_KNOBS = Capabilities.from_dict({**REAL.to_dict(),
                                       "dialects": {k: v for k, v in REAL.dialects.items() if k != "ngram-mod"}})


@pytest.mark.parametrize("case,hw", [("D01", CPU_HW), ("D02", MAC_HW)])
def test_d01_d02_ngram_mod_left_out_of_the_chain_is_said(case: str, hw: Hardware) -> None:
    """Unsloth Studio's resolver: MTP model, Auto, CPU (D01) / Mac (D02), a binary with draft-mtp and
    the ngram-mod type but without --spec-ngram-mod-*: MTP alone, and a warning (Studio warns too)."""
    p = plan(model(9e9), hw, NO_MOD_KNOBS)
    assert spec_part(p.argv) == ["--spec-type", "draft-mtp", "--spec-draft-n-max", "3"]
    lost = [w for w in p.warnings if w.startswith("ngram-mod is left out")]
    assert len(lost) == 1 and "MTP runs without it" in lost[0] and "update llama.cpp" in lost[0]
    assert not [w for w in plan(model(9e9), GPU_HW, NO_MOD_KNOBS).warnings if "ngram-mod is left out" in w]
    assert not [w for w in plan(model(9e9), hw).warnings if "ngram-mod is left out" in w]


def test_the_drafters_kv_type_is_what_the_binary_can_set() -> None:
    fork = capabilities_from_help("/bin/llama-server", (HELP_DIR / "fork-mtp-token.help.txt").read_text())
    p = plan(model(9e9), GPU_HW, caps=fork, cache_type="q8_0")
    assert "--spec-draft-type-k" not in p.argv
    assert p.speculative.draft_cache_type is None and p.memory is not None
    assert p.memory.launch.draft_cache_type_k == "f16"  # the estimate counts what the server will use
