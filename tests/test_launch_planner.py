"""Every row of the speculative table, the memory fit, extra args and the always-flags."""

from __future__ import annotations

import pytest

from llama_launcher.core.binary_probe import Capabilities, capabilities_from_help
from llama_launcher.core.hardware import GPU, Hardware
from llama_launcher.core.launch_planner import (
    PlanError,
    PlanSettings,
    plan_launch,
)
from llama_launcher.core.model_info import ModelInfo
from llama_launcher.core.tuning_store import TunedChoice

from fake_server import HELP_DIR

KNOBS = ["--spec-ngram-mod-n-match", "24", "--spec-ngram-mod-n-min", "48", "--spec-ngram-mod-n-max", "64"]


def caps(era: str) -> Capabilities:
    return capabilities_from_help("/bin/llama-server", (HELP_DIR / f"{era}.help.txt").read_text(),
                                  (HELP_DIR / f"{era}.version.txt").read_text())


CURRENT, LEGACY, POST_RENAME, NO_SPEC, FORK = (caps(e) for e in (
    "b11434-current", "b8000-legacy-ngram", "b9093-post-rename", "b5142-no-spec", "fork-mtp-token"))


def model(params: float = 9e9, mtp_layers: int = 1, name: str = "m", ctx: int = 32768) -> ModelInfo:
    trunk = int(params)
    return ModelInfo(path=f"/models/{name}.gguf", name=name, file_name=f"{name}.gguf", folder="/models",
                     file_size=int(params * 0.6), architecture="qwen35", parameters=trunk + (10_000_000 if mtp_layers else 0),
                     trunk_parameters=trunk, context_length=ctx, block_count=32 + mtp_layers,
                     nextn_predict_layers=mtp_layers, is_mtp=mtp_layers > 0,
                     arch_meta={"embedding_length": 4096, "attention.head_count": 32, "attention.head_count_kv": 8,
                                "attention.key_length": 128, "attention.value_length": 128})


GPU_HW = Hardware("x86", 65536, 60000, False, [GPU("RTX 4090", "CUDA", 24564, 24000)], backend_devices=None)
CPU_HW = Hardware("x86", 65536, 60000, False, [])
MAC_HW = Hardware("Apple M3 Max", 65536, 50000, True, [GPU("Apple M3 Max GPU", "Metal", 65536, 50000, source="Apple")])


def spec_args(argv: list[str]) -> list[str]:
    """The speculative part of an argv (from --spec-type or the first spec flag to the next non-spec flag)."""
    out, on = [], False
    spec_flags = {"--spec-type", "--spec-draft-n-max", "--draft-max", "--draft-min", "--spec-ngram-size-n",
                  "--spec-ngram-mod-n-match", "--spec-ngram-mod-n-min", "--spec-ngram-mod-n-max"}
    for a in argv:
        if a.startswith("-") and not a.lstrip("-").isdigit():
            on = a in spec_flags
        if on:
            out.append(a)
    return out


def run(m: ModelInfo, hw: Hardware, c: Capabilities = CURRENT, **kw):
    return plan_launch("/bin/llama-server", m, hw, c, PlanSettings(port=8123, **kw))


# --- the table ------------------------------------------------------------------------------

def test_mtp_model_auto_gpu_branch() -> None:
    p = run(model(9e9), GPU_HW)
    assert spec_args(p.argv) == ["--spec-type", "draft-mtp", "--spec-draft-n-max", "2"]
    assert p.gpu_branch


@pytest.mark.parametrize("hw", [CPU_HW, MAC_HW], ids=["cpu", "mac"])
def test_mtp_model_auto_cpu_or_mac_branch(hw: Hardware) -> None:
    p = run(model(9e9), hw)
    assert spec_args(p.argv) == ["--spec-type", "ngram-mod,draft-mtp", "--spec-draft-n-max", "3", *KNOBS]
    assert p.argv.count("--spec-type") == 1
    assert not p.gpu_branch


@pytest.mark.parametrize("hw", [GPU_HW, CPU_HW], ids=["gpu", "cpu"])
def test_small_mtp_model_auto_gets_ngram_only(hw: Hardware) -> None:
    p = run(model(2e9), hw)
    assert spec_args(p.argv) == ["--spec-type", "ngram-mod", *KNOBS]


def test_small_mtp_model_on_binary_without_knobs_gets_nothing() -> None:
    p = run(model(2e9), CPU_HW, NO_SPEC)
    assert spec_args(p.argv) == []


@pytest.mark.parametrize("hw", [GPU_HW, CPU_HW], ids=["gpu", "cpu"])
def test_model_without_mtp_auto_gets_ngram(hw: Hardware) -> None:
    p = run(model(9e9, mtp_layers=0), hw)
    assert spec_args(p.argv) == ["--spec-type", "ngram-mod", *KNOBS]


def test_mtp_forced_on_small_model_warns() -> None:
    p = run(model(0.8e9), GPU_HW, mtp="on")
    assert spec_args(p.argv) == ["--spec-type", "draft-mtp", "--spec-draft-n-max", "2"]
    assert any("small model" in w for w in p.warnings)


def test_mtp_forced_on_model_without_layers_warns() -> None:
    p = run(model(9e9, mtp_layers=0), CPU_HW, mtp="on")
    assert "draft-mtp" in p.argv[p.argv.index("--spec-type") + 1]
    assert any("no MTP layers" in w for w in p.warnings)


def test_off_toggles_drop_their_part() -> None:
    assert spec_args(run(model(9e9), CPU_HW, ngram_mod="off").argv) == ["--spec-type", "draft-mtp", "--spec-draft-n-max", "3"]
    assert spec_args(run(model(9e9), CPU_HW, mtp="off").argv) == ["--spec-type", "ngram-mod", *KNOBS]
    assert spec_args(run(model(9e9), CPU_HW, mtp="off", ngram_mod="off").argv) == []


@pytest.mark.parametrize("extra", ["--spec-type ngram-simple", "--spec-default", "--spec-type=draft-mtp"])
def test_user_spec_flags_win(extra: str) -> None:
    p = run(model(9e9), CPU_HW, extra_args=extra)
    assert p.argv.count("--spec-type") <= 1
    assert p.argv[-len(extra.split()):] == extra.split()
    assert p.speculative.source == "user extra args"
    assert "--spec-draft-n-max" not in p.argv


def test_binary_without_mtp_drops_mtp_and_warns() -> None:
    p = run(model(9e9), GPU_HW, POST_RENAME)
    assert spec_args(p.argv) == ["--spec-type", "ngram-mod", *KNOBS]  # GPU falls back to ngram-mod
    assert any("update llama.cpp" in w and "draft-mtp" in w for w in p.warnings)
    p = run(model(9e9), CPU_HW, POST_RENAME)
    assert spec_args(p.argv) == ["--spec-type", "ngram-mod", *KNOBS]


def test_legacy_binary_uses_legacy_knobs_and_never_chains() -> None:
    p = run(model(9e9, mtp_layers=0), CPU_HW, LEGACY)
    assert spec_args(p.argv) == ["--spec-type", "ngram-mod", "--spec-ngram-size-n", "24", "--draft-min", "48",
                                 "--draft-max", "64"]
    assert p.argv.count("--draft-max") == 1


def test_legacy_binary_with_mtp_keeps_mtp_alone() -> None:
    # a legacy-knob build that also has an MTP type (a fork): chaining would pass --draft-max twice
    legacy_mtp = Capabilities.from_dict({**LEGACY.to_dict(), "spec_types": LEGACY.spec_types + ["mtp"], "mtp_token": "mtp"})
    p = run(model(9e9), CPU_HW, legacy_mtp)
    assert spec_args(p.argv) == ["--spec-type", "mtp", "--draft-max", "3"]
    assert any("does not chain" in w for w in p.warnings)


def test_binary_without_ngram_knobs_drops_ngram_keeps_mtp() -> None:
    no_knobs = Capabilities.from_dict({**CURRENT.to_dict(), "ngram_mod_flavor": None})
    p = run(model(9e9), CPU_HW, no_knobs)
    assert spec_args(p.argv) == ["--spec-type", "draft-mtp", "--spec-draft-n-max", "3"]
    assert any("ngram-mod dropped" in w for w in p.warnings)


def test_binary_without_spec_type_emits_nothing_and_warns() -> None:
    p = run(model(9e9), CPU_HW, NO_SPEC)
    assert spec_args(p.argv) == []
    assert any("no --spec-type" in w for w in p.warnings)


def test_fork_mtp_token_is_used() -> None:
    p = run(model(9e9), CPU_HW, FORK)
    assert p.argv[p.argv.index("--spec-type") + 1] == "ngram-mod,mtp"


def test_draft_length_slider_overrides_default_and_is_range_checked() -> None:
    assert spec_args(run(model(9e9), GPU_HW, draft_n_max=5).argv)[-1] == "5"
    with pytest.raises(PlanError, match="between 1 and 16"):
        run(model(9e9), GPU_HW, draft_n_max=17)


def test_measured_result_drives_auto() -> None:
    tuned = TunedChoice("mtp", 1, 1.31)
    p = plan_launch("/bin/llama-server", model(9e9), CPU_HW, CURRENT, PlanSettings(port=1), tuned)
    assert spec_args(p.argv) == ["--spec-type", "draft-mtp", "--spec-draft-n-max", "1"]
    assert "measured: MTP n=1, +31% vs off" in p.reason_for("--spec-type")
    # an explicit toggle beats the measurement
    p = plan_launch("/bin/llama-server", model(9e9), CPU_HW, CURRENT, PlanSettings(port=1, mtp="off"), tuned)
    assert spec_args(p.argv) == ["--spec-type", "ngram-mod", *KNOBS]


def test_measured_off_means_no_speculation() -> None:
    p = plan_launch("/bin/llama-server", model(9e9), CPU_HW, CURRENT, PlanSettings(port=1), TunedChoice("off", None, 1.0))
    assert spec_args(p.argv) == []
    assert p.speculative.summary == "off — measured: off, +0% vs off"


def test_backend_devices_decide_the_branch() -> None:
    hw = Hardware("x86", 65536, 60000, False, [GPU("RTX", "CUDA", 24000, 23000)], backend_devices=[])
    assert not run(model(9e9), hw).gpu_branch  # llama-server (a CPU build) sees no device
    hw = Hardware("x86", 65536, 60000, False, [], backend_devices=[GPU("Radeon", "Vulkan", 16000, 15000)])
    p = run(model(9e9), hw)
    assert p.gpu_branch and "Vulkan" in p.gpu_reason


# --- always, network, extra args ------------------------------------------------------------

def test_always_flags_and_reasons() -> None:
    p = run(model(9e9), CPU_HW)
    assert p.argv[0] == "/bin/llama-server"
    assert p.argv[p.argv.index("--host") + 1] == "127.0.0.1"
    assert p.argv[p.argv.index("--port") + 1] == "8123"
    assert "--metrics" in p.argv and p.argv[p.argv.index("--fit") + 1] == "on"
    assert p.argv[p.argv.index("-m") + 1] == "/models/m.gguf"
    flat = [a for f in p.flags for a in f.args]
    assert flat == p.argv[1:]
    assert all(f.reason for f in p.flags)


def test_lan_requires_api_key_and_redacts_it() -> None:
    with pytest.raises(PlanError, match="API key"):
        run(model(9e9), CPU_HW, lan=True)
    p = run(model(9e9), CPU_HW, lan=True, api_key="secret-key")
    assert p.argv[p.argv.index("--host") + 1] == "0.0.0.0"
    assert "secret-key" in p.argv
    assert "secret-key" not in p.redacted_argv() and "secret-key" not in str(p.to_dict())


@pytest.mark.parametrize("extra,flag", [("-m other.gguf", "-m"), ("--port=9000", "--port"), ("--host 0.0.0.0", "--host"),
                                        ("-hf org/model", "-hf"), ("--api-key x", "--api-key"), ("--mmproj a.gguf", "--mmproj")])
def test_owned_flags_are_rejected_by_name(extra: str, flag: str) -> None:
    with pytest.raises(PlanError, match=f"^{flag} is not allowed"):
        run(model(9e9), CPU_HW, extra_args=extra)


def test_extra_args_unknown_removed_and_quotes() -> None:
    with pytest.raises(PlanError, match="does not know --foo"):
        run(model(9e9), CPU_HW, extra_args="--foo 1")
    with pytest.raises(PlanError, match="removed"):
        run(model(9e9), CPU_HW, extra_args="--draft-max 3")
    with pytest.raises(PlanError, match="unbalanced quotes"):
        run(model(9e9), CPU_HW, extra_args='-t "2')
    p = run(model(9e9), CPU_HW, extra_args="--threads -1 -c 4096")
    assert p.argv[-4:] == ["--threads", "-1", "-c", "4096"]  # negative numbers are values; user flags last


# --- memory ---------------------------------------------------------------------------------

def test_context_fits_budget_and_user_context_is_kept() -> None:
    big = model(30e9, ctx=131072)
    small_gpu = Hardware("x86", 65536, 60000, False, [GPU("RTX 3060", "CUDA", 12288, 12000)])
    # force the GPU branch with ngram only so the 0.90 budget applies
    p = run(big, small_gpu, mtp="off")
    ctx = int(p.argv[p.argv.index("-c") + 1])
    assert ctx == 4096 and p.memory.status == "does not fit"  # 18 GB of weights cannot fit in 12 GB
    roomy = Hardware("x86", 65536, 60000, False, [GPU("A6000", "CUDA", 49140, 30000)])
    p = run(big, roomy, mtp="off")
    ctx = int(p.argv[p.argv.index("-c") + 1])
    assert 4096 < ctx < 131072 and ctx % 256 == 0 and p.memory.status in ("fits", "tight")
    p_mtp = run(big, roomy)
    assert int(p_mtp.argv[p_mtp.argv.index("-c") + 1]) <= ctx  # MTP's 0.85 budget leaves room for the draft
    p = run(big, roomy, ctx=200000)
    assert p.argv[p.argv.index("-c") + 1] == "200000"
    assert any("does not fit" in w for w in p.warnings)


def test_mla_kv_cache_counts_the_compressed_width() -> None:
    from llama_launcher.core.memory_estimate import kv_bytes

    mla = ModelInfo(path="/m/ds.gguf", name="ds", file_name="ds.gguf", folder="/m", architecture="deepseek2",
                    block_count=2, arch_meta={"embedding_length": 7168, "attention.head_count": 128,
                                              "attention.head_count_kv": 1, "attention.key_length": 576,
                                              "attention.value_length": 512, "attention.kv_lora_rank": 512})
    # layers x cells (1000 tokens padded to 256 like llama.cpp) x width x f16
    assert kv_bytes(mla, 1000) == 2 * 1024 * (512 + 64) * 2


def test_sliding_window_layers_hold_at_most_the_window() -> None:
    from llama_launcher.core.memory_estimate import kv_bytes

    gemma = ModelInfo(path="/m/g.gguf", name="g", file_name="g.gguf", folder="/m", architecture="gemma3",
                      block_count=6, arch_meta={"embedding_length": 640, "attention.head_count": 4,
                                                "attention.head_count_kv": 1, "attention.key_length": 256,
                                                "attention.value_length": 256, "attention.sliding_window": 512})
    per_token = 1 * (256 + 256) * 2
    # gemma3: 5 sliding-window layers (at most 512 x 4 slots + 512 tokens) and 1 full layer
    assert kv_bytes(gemma, 32768) == 5 * (512 * 4 + 512) * per_token + 32768 * per_token
