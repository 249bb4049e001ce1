"""Hostile GGUF metadata in every key the memory estimate reads: one clear line or a sane estimate,
in bounded time and memory (issue 12, item 6; a negative context, item 9)."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGUFWriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.flags import PlanError
from llama_launcher.core.plan.planner import plan_launch
from llama_launcher.core.settings.launch import PlanSettings
from test_launch_planner import CURRENT

from fake_server import make_fake_server

CPU_HW = Hardware("x86", 65536, 60000, False, [])
KEYS = ["embedding_length", "attention.key_length", "attention.value_length", "attention.sliding_window",
        "attention.head_count", "attention.head_count_kv", "feed_forward_length", "attention.kv_lora_rank",
        "full_attention_interval", "attention.sliding_window_pattern", "vocab_size"]
HOSTILE: list[Any] = [math.nan, math.inf, -math.inf, 1e308, -1, 2**32 - 1, 2**63, 2**70, "4096", "", True,
                      [1, "x"], [math.nan], [2**40], [], {"a": 1}, None, 0, 4096.0]

# a hang-catcher, not a speed goal: the bound that matters is the memory (peak); speeds: benchmarks/
HANG_S = 60.0



def model(meta: dict[str, Any], blocks: int | None = 8, size: int = 200_000_000, context: int | None = 8192) -> ModelInfo:
    base = {"embedding_length": 1024, "attention.head_count": 8, "attention.head_count_kv": 2,
            "feed_forward_length": 4096, "vocab_size": 32000, "attention.sliding_window": 1024}
    base.update(meta)
    return ModelInfo(path="/m/x.gguf", name="x", file_name="x.gguf", folder="/m", file_size=size, architecture="llama",
                     parameters=100_000_000, context_length=context, block_count=blocks, arch_meta=base)


def plan_outcome(m: ModelInfo, **kw: Any) -> str:
    """'plan' for a sane plan, else the PlanError text; any other exception fails the test."""
    try:
        p = plan_launch("/bin/llama-server", m, CPU_HW, CURRENT, PlanSettings(port=8123, **kw))
    except PlanError as exc:
        text = str(exc)
        assert text and "\n" not in text and len(text) < 300, text
        assert "Traceback" not in text
        return text
    assert p.memory is not None
    mem = p.memory
    for v in (mem.weights_mib, mem.kv_mib, mem.compute_mib, mem.draft_mib, mem.total_mib):
        assert isinstance(v, int) and 0 <= v < 2**62
    assert mem.status in ("fits", "tight", "does not fit")
    return "plan"


@pytest.mark.parametrize("key", KEYS)
def test_every_hostile_value_in_every_key_gives_one_line_or_a_sane_estimate(key: str) -> None:
    outcomes = {}
    for value in HOSTILE:
        t0 = time.monotonic()
        outcomes[repr(value)] = plan_outcome(model({key: value}))
        assert time.monotonic() - t0 < HANG_S, f"{key}={value!r} took too long"
    # the clearly invalid values are refused with the key named; plain counts plan
    for bad in (math.nan, math.inf, "4096", -1):
        if key == "attention.sliding_window_pattern" and bad == -1:
            continue
        assert key.split(".")[-1] in outcomes[repr(bad)], (key, bad, outcomes[repr(bad)])
    assert outcomes["0"] == "plan" and outcomes["None"] == "plan"


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(KEYS), value=st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-2**70, max_value=2**70),
    st.text(max_size=8), st.booleans(), st.none(),
    st.lists(st.one_of(st.integers(min_value=-2**40, max_value=2**40), st.floats(), st.text(max_size=3),
                       st.booleans()), max_size=12)))
def test_any_value_in_any_key_never_crashes(key: str, value: Any) -> None:
    plan_outcome(model({key: value}))


@pytest.mark.parametrize("blocks", [2**32 - 1, 50_000_000, -3])
def test_huge_block_counts_are_refused_fast_and_small(blocks: int) -> None:
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        text = plan_outcome(model({}, blocks=blocks, size=1_200_000))
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.monotonic() - t0 < HANG_S and peak < 20 * 1024 * 1024
    assert text.startswith("x.gguf: model metadata block_count")
    assert "is more than any real model has (4,096)" in text or "is negative" in text


def test_a_block_count_is_bounded_by_what_the_file_can_hold() -> None:
    text = plan_outcome(model({}, blocks=3000, size=64_000))  # 32 bytes of header per layer at least
    assert text == "x.gguf: model metadata block_count = 3,000 is more than a 64.0 kB file can hold"  # units.file_size


def test_the_deepest_real_shapes_still_plan() -> None:
    # 4096 layers in a file big enough to hold them: an estimate, not a refusal, in bounded time
    t0 = time.monotonic()
    assert plan_outcome(model({}, blocks=4096, size=400_000_000_000, context=131072)) == "plan"
    assert time.monotonic() - t0 < HANG_S


def test_negative_or_absurd_context_from_metadata_is_one_clear_line() -> None:
    text = plan_outcome(model({}, context=-1))
    assert text == "the model's context_length must be positive (got -1); set a context size"
    assert plan_outcome(model({}, context=2**40)).startswith("the model's context_length 1,099,511,627,776 is more")
    # the user's own context size makes the model launchable anyway
    assert plan_outcome(model({}, context=-1), ctx=4096) == "plan"
    assert plan_outcome(model({}), ctx=2**33).startswith("x.gguf: context size 8,589,934,592 is more than")


def _hostile_file(path: Path, float_key: str, value: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = GGUFWriter(str(path), "llama")
    w.add_name("hostile")
    w.add_context_length(4096)
    w.add_block_count(2)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_float32(f"llama.{float_key}", value)
    w.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_cli_plan_on_a_file_with_nan_metadata_says_one_line(tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "f", "b11434-current")
    gguf = _hostile_file(tmp_path / "m" / "nan.gguf", "embedding_length", math.nan)
    out = subprocess.run([sys.executable, "-m", "llama_launcher", "plan", str(gguf), "--binary", str(exe)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout
    assert out.stderr.strip() == "error: nan.gguf: model metadata embedding_length is nan, not a count"


# --- a speculator head's target_layers (draft pairing reads them before any estimate) ------------

def _eagle3_head(layers: Any) -> ModelInfo:
    return ModelInfo(path="/m/h-eagle3.gguf", name="h eagle3", file_name="h-eagle3.gguf", folder="/m",
                     file_size=40_000_000, architecture="eagle3", parameters=20_000_000, vocab_hash="v1",
                     arch_meta={"target_hidden_size": 1024, "target_layers": layers})


@pytest.mark.parametrize("layers", [["x"], [1, "x", 99], [1, "x", 3], [math.nan], [2.5], [True], [-1], "2,16,29", 7,
                                    {"a": 1}, [[1]], [None]])
def test_hostile_head_target_layers_give_one_clear_reason(layers: Any) -> None:
    from llama_launcher.core.speculative.pairing import draft_options

    target = model({})
    target.vocab_hash = "v1"
    (opt,) = draft_options(target, [_eagle3_head(layers)])
    assert not opt.ok
    assert "target_layers" in opt.reason and "\n" not in opt.reason and len(opt.reason) < 200, opt.reason
    assert plan_outcome(target) == "plan"


def test_a_head_file_with_text_target_layers_is_not_offered(tmp_path: Path) -> None:
    from llama_launcher.core.models.model_info import read_model_info
    from llama_launcher.core.speculative.pairing import draft_options

    from gguf_factory import write_model

    path = write_model(tmp_path / "h-eagle3.gguf", arch="eagle3", hidden=8,
                       extra_kv={"eagle3.target_hidden_size": 1024, "eagle3.target_layers": ["x"]})
    head = read_model_info(path)
    assert head.arch_meta.get("target_layers") == ["x"], head.arch_meta
    (opt,) = draft_options(model({}), [head])
    assert not opt.ok and "target_layers" in opt.reason


def test_sane_head_target_layers_still_pair() -> None:
    from llama_launcher.core.speculative.pairing import draft_options

    target = model({})
    target.vocab_hash = "v1"
    assert draft_options(target, [_eagle3_head([0, 3, 7])])[0].ok
    (high,) = draft_options(target, [_eagle3_head([0, 3, 8])])
    assert not high.ok and high.reason == "reads layer 8, this model has 8"
