"""Every row of the speculative table, the memory fit, extra args and the always-flags."""

from __future__ import annotations

import pytest

from llama_launcher.core.host.hardware import GPU, Hardware
from llama_launcher.core.llama_server.probe import Capabilities, capabilities_from_help
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.flags import PlanError
from llama_launcher.core.plan.planner import plan_launch
from llama_launcher.core.settings.launch import ModelSettings, PlanSettings, check_model_settings
from llama_launcher.core.speculative.measured import TunedChoice

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


def settings(port: int = 8123, **kw) -> PlanSettings:
    """PlanSettings with speculative modes given as keywords (mtp="on", ngram_mod="off")."""
    modes = {k.replace("_", "-"): kw.pop(k) for k in list(kw) if k in ("mtp", "ngram_mod", "draft", "eagle3")}
    return PlanSettings(port=port, modes=modes, **kw)


def run(m: ModelInfo, hw: Hardware, c: Capabilities = CURRENT, **kw):
    return plan_launch("/bin/llama-server", m, hw, c, settings(**kw))


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


def test_mtp_forced_on_model_without_layers_is_dropped_not_emitted() -> None:
    # llama-server exits on draft-mtp for such a model ("doesn't contain MTP layers"): never emit it
    p = run(model(9e9, mtp_layers=0), CPU_HW, mtp="on")
    assert spec_args(p.argv) == ["--spec-type", "ngram-mod", *KNOBS]  # ngram-mod on Auto still runs
    assert any("no MTP layers" in w and "left out" in w for w in p.warnings)
    p = run(model(9e9, mtp_layers=0), CPU_HW, mtp="on", ngram_mod="off")
    assert spec_args(p.argv) == []


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
    legacy_mtp = Capabilities.from_dict({**LEGACY.to_dict(), "spec_types": LEGACY.spec_types + ["mtp"],
                                         "method_tokens": {**LEGACY.method_tokens, "mtp": "mtp"}, "spec_chains": True})
    p = run(model(9e9), CPU_HW, legacy_mtp)
    assert spec_args(p.argv) == ["--spec-type", "mtp", "--draft-max", "3"]
    assert any("does not chain" in w for w in p.warnings)


def test_binary_without_ngram_knobs_drops_ngram_keeps_mtp() -> None:
    no_knobs = Capabilities.from_dict({**CURRENT.to_dict(),
                                       "dialects": {k: v for k, v in CURRENT.dialects.items() if k != "ngram-mod"}})
    p = run(model(9e9), CPU_HW, no_knobs)
    assert spec_args(p.argv) == ["--spec-type", "draft-mtp", "--spec-draft-n-max", "3"]
    assert not p.speculative.available["ngram-mod"].ok and "knobs" in p.speculative.available["ngram-mod"].reason
    p = run(model(9e9), CPU_HW, no_knobs, ngram_mod="on")
    assert any("ngram-mod is on, but" in w and "knobs" in w for w in p.warnings)


def test_binary_without_spec_type_emits_nothing_and_warns() -> None:
    p = run(model(9e9), CPU_HW, NO_SPEC)
    assert spec_args(p.argv) == []
    assert any("no --spec-type" in w for w in p.warnings)


def test_fork_mtp_token_is_used() -> None:
    p = run(model(9e9), CPU_HW, FORK)
    assert p.argv[p.argv.index("--spec-type") + 1] == "ngram-mod,mtp"


def test_draft_length_slider_overrides_default_and_is_range_checked() -> None:
    assert spec_args(run(model(9e9), GPU_HW, draft_n_max=5).argv)[-1] == "5"
    ms = ModelSettings(draft_n_max=17)  # the one validator (settings file, CLI, window) refuses it
    assert check_model_settings(ms) == ["Draft length must be between 1 and 16 (got 17)"]
    assert ms.draft_n_max is None  # back to the planner's own length


def test_every_declared_setting_is_range_checked_in_one_place() -> None:
    """gpu_layers from a settings file was never checked: -ngl -5 reached the argv (issue 19, item 7)."""
    ms = ModelSettings(gpu_layers=-5, threads=0, ctx=-1, cache_type="q3_weird", ngram_n_match=0)
    problems = check_model_settings(ms, "settings for m.gguf")
    assert len(problems) == 5 and all(p.startswith("settings for m.gguf: ") for p in problems)
    assert (ms.gpu_layers, ms.threads, ms.ctx, ms.cache_type, ms.ngram_n_match) == (None, None, None, None, 24)
    argv = plan_launch("/bin/llama-server", model(9e9), GPU_HW, CURRENT, PlanSettings.of(ms, port=1)).argv
    assert "-ngl" not in argv and "-t" not in argv


def test_measured_result_drives_auto() -> None:
    tuned = TunedChoice(("mtp",), 1, 1.31)
    p = plan_launch("/bin/llama-server", model(9e9), CPU_HW, CURRENT, PlanSettings(port=1), tuned)
    assert spec_args(p.argv) == ["--spec-type", "draft-mtp", "--spec-draft-n-max", "1"]
    assert "measured: MTP n=1, +31% vs off" in p.reason_for("--spec-type")
    # an explicit toggle beats the measurement
    p = plan_launch("/bin/llama-server", model(9e9), CPU_HW, CURRENT, settings(port=1, mtp="off"), tuned)
    assert spec_args(p.argv) == ["--spec-type", "ngram-mod", *KNOBS]


def test_measured_off_means_no_speculation() -> None:
    p = plan_launch("/bin/llama-server", model(9e9), CPU_HW, CURRENT, PlanSettings(port=1), TunedChoice((), None, 1.0))
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
    key = "secret-key-0123456789abcdefghij"
    p = run(model(9e9), CPU_HW, lan=True, api_key=key, api_key_file="/cfg/api-key.txt")
    assert p.argv[p.argv.index("--host") + 1] == "0.0.0.0"
    assert p.argv[p.argv.index("--api-key-file") + 1] == "/cfg/api-key.txt"  # the binary has --api-key-file
    assert key not in " ".join(p.argv) and key not in str(p.to_dict()) and not p.env
    # a binary without --api-key-file gets the key in its (owner-only) environment, never in argv
    old = Capabilities.from_dict({**CURRENT.to_dict(), "has_api_key_file": False})
    p = run(model(9e9), CPU_HW, old, lan=True, api_key=key, api_key_file="/cfg/api-key.txt")
    assert key not in " ".join(p.argv) and "--api-key" not in p.argv and p.env == {"LLAMA_API_KEY": key}


@pytest.mark.parametrize("extra,flag", [("-m other.gguf", "-m"), ("--port=9000", "--port"), ("--host 0.0.0.0", "--host"),
                                        ("-hf org/model", "-hf"), ("--api-key x", "--api-key"), ("--mmproj a.gguf", "--mmproj")])
def test_owned_flags_are_rejected_by_name(extra: str, flag: str) -> None:
    with pytest.raises(PlanError, match=f"^{flag} cannot be used in extra arguments"):
        run(model(9e9), CPU_HW, extra_args=extra)


def test_extra_args_unknown_removed_and_quotes() -> None:
    with pytest.raises(PlanError, match="has no option --foo"):
        run(model(9e9), CPU_HW, extra_args="--foo 1")
    with pytest.raises(PlanError, match="has no option --thread — did you mean --threads"):
        run(model(9e9), CPU_HW, extra_args="--thread 2")
    with pytest.raises(PlanError, match="removed from this llama-server: use --spec-draft-n-max"):
        run(model(9e9), CPU_HW, extra_args="--draft-max 3")
    with pytest.raises(PlanError, match="quote in the extra arguments is not closed"):
        run(model(9e9), CPU_HW, extra_args='-t "2')
    with pytest.raises(PlanError, match="-t needs a number, not 'two'"):
        run(model(9e9), CPU_HW, extra_args="-t two")
    p = run(model(9e9), CPU_HW, extra_args="--threads -1 -c 4096")
    assert p.argv[-4:] == ["--threads", "-1", "-c", "4096"]  # negative numbers are values; user flags last
    # the user's -c is the context: the planner passes no -c of its own and estimates memory for 4096
    assert p.argv.count("-c") == 1 and p.context == 4096 and p.memory.context == 4096


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
    from llama_launcher.core.memory.estimate import kv_bytes

    mla = ModelInfo(path="/m/ds.gguf", name="ds", file_name="ds.gguf", folder="/m", architecture="deepseek2",
                    block_count=2, arch_meta={"embedding_length": 7168, "attention.head_count": 128,
                                              "attention.head_count_kv": 1, "attention.key_length": 576,
                                              "attention.value_length": 512, "attention.kv_lora_rank": 512})
    # layers x cells (1000 tokens padded to 256 like llama.cpp) x width x f16
    assert kv_bytes(mla, 1000) == 2 * 1024 * (512 + 64) * 2


def test_sliding_window_layers_hold_at_most_the_window() -> None:
    from llama_launcher.core.memory.estimate import kv_bytes

    gemma = ModelInfo(path="/m/g.gguf", name="g", file_name="g.gguf", folder="/m", architecture="gemma3",
                      block_count=6, arch_meta={"embedding_length": 640, "attention.head_count": 4,
                                                "attention.head_count_kv": 1, "attention.key_length": 256,
                                                "attention.value_length": 256, "attention.sliding_window": 512})
    per_token = 1 * (256 + 256) * 2
    # gemma3: 5 sliding-window layers (at most 512 x 4 slots + 512 tokens) and 1 full layer
    assert kv_bytes(gemma, 32768) == 5 * (512 * 4 + 512) * per_token + 32768 * per_token


# --- corrections held against Unsloth Studio's own tests (issue 11, section 3) -------------------

def test_mtp_engaged_by_the_users_extra_args_counts_in_the_memory_estimate() -> None:
    m = model(9e9)
    plain = run(m, CPU_HW, mtp="off", ngram_mod="off", ctx=8192)
    user = run(m, CPU_HW, ctx=8192, extra_args="--spec-type ngram-mod,draft-mtp --spec-draft-n-max 2")
    assert user.speculative.source == "user extra args" and user.speculative.mtp_engaged
    assert "85%" in user.memory.budget_source and "90%" in plain.memory.budget_source
    assert user.memory.draft_mib > plain.memory.draft_mib == 0  # the MTP draft context is counted


# --- draft models and speculator heads (issue 11, section 2) ----------------------------------------

def _with_vocab(m: ModelInfo, vocab: str, params: float | None = None) -> ModelInfo:
    import dataclasses

    p = int(params) if params else m.parameters
    return dataclasses.replace(m, vocab_hash=vocab, vocab_size=151_936, parameters=p, trunk_parameters=p,
                               file_size=int((p or 0) * 0.6))


def test_a_compatible_draft_model_is_used_and_counted() -> None:
    from llama_launcher.core.speculative.pairing import draft_options

    target = _with_vocab(model(14e9, mtp_layers=0, name="big"), "v1")
    draft = _with_vocab(model(0.6e9, mtp_layers=0, name="small"), "v1", 0.6e9)
    other = _with_vocab(model(0.5e9, mtp_layers=0, name="other"), "v2", 0.5e9)
    opts = draft_options(target, [target, draft, other])
    assert [(o.name, o.ok) for o in opts] == [("small", True), ("other", False)]
    assert "different tokenizer" in opts[1].reason
    p = plan_launch("/bin/llama-server", target, GPU_HW, CURRENT, settings(), None, opts)
    assert p.argv[p.argv.index("--spec-type") + 1] == "draft-simple"
    assert p.argv[p.argv.index("--spec-draft-model") + 1] == draft.path
    assert p.argv[p.argv.index("--spec-draft-ngl") + 1] == "all"  # GPU branch: the draft on the GPU too
    assert p.memory.draft_model_mib > 0 and "draft model" in p.memory.describe()
    cpu = plan_launch("/bin/llama-server", target, CPU_HW, CURRENT, settings(), None, opts)
    assert cpu.argv[cpu.argv.index("--spec-type") + 1] == "ngram-mod,draft-simple"  # chained on CPU/Mac
    assert "--spec-draft-ngl" not in cpu.argv
    off = plan_launch("/bin/llama-server", target, GPU_HW, CURRENT, settings(draft="off"), None, opts)
    assert "--spec-draft-model" not in off.argv


def test_an_mtp_head_file_is_never_launched_as_a_draft_model() -> None:
    """``mtp-<name>.gguf`` (the converter's --mtp) shares the tokenizer and is small, like a draft model; run
    as draft-simple it would be loaded as a whole model. It is listed, and said why it is not used."""
    import dataclasses

    from llama_launcher.core.speculative.pairing import draft_options

    target = _with_vocab(model(14e9, mtp_layers=0, name="big"), "v1")
    head = dataclasses.replace(_with_vocab(model(0.4e9, mtp_layers=1, name="big MTP head"), "v1", 0.4e9),
                               file_name="mtp-big-Q8_0.gguf", path="/m/mtp-big-Q8_0.gguf")
    opts = draft_options(target, [target, head])
    assert [(o.name, o.ok) for o in opts] == [("big MTP head", False)] and "draft-mtp" in opts[0].reason
    p = plan_launch("/bin/llama-server", target, GPU_HW, CURRENT, settings(), None, opts)
    assert "--spec-draft-model" not in p.argv and "draft-simple" not in " ".join(p.argv)


def test_a_draft_model_needs_a_binary_that_takes_one() -> None:
    from llama_launcher.core.speculative.pairing import draft_options

    target = _with_vocab(model(14e9, mtp_layers=0, name="big"), "v1")
    draft = _with_vocab(model(0.6e9, mtp_layers=0, name="small"), "v1", 0.6e9)
    p = plan_launch("/bin/llama-server", target, GPU_HW, POST_RENAME, settings(draft="on"), None,
                    draft_options(target, [draft]))
    assert "--spec-draft-model" not in p.argv and any("Draft model is on, but" in w for w in p.warnings)


def test_mtp_wins_over_a_draft_model_and_one_model_drafter_runs() -> None:
    from llama_launcher.core.speculative.pairing import draft_options

    target = _with_vocab(model(14e9, mtp_layers=1, name="big"), "v1")
    draft = _with_vocab(model(0.6e9, mtp_layers=0, name="small"), "v1", 0.6e9)
    opts = draft_options(target, [draft])
    p = plan_launch("/bin/llama-server", target, GPU_HW, CURRENT, settings(), None, opts)
    assert p.speculative.methods == ["mtp"]
    p = plan_launch("/bin/llama-server", target, GPU_HW, CURRENT, settings(mtp="on", draft="on"), None, opts)
    assert p.speculative.methods == ["mtp"] and any("one model-based drafter at a time" in w for w in p.warnings)
    assert "draft" in p.speculative.refused and "refused" in p.speculative.refused["draft"]


def test_an_eagle3_head_trained_for_the_model_is_paired() -> None:
    from llama_launcher.core.speculative.pairing import draft_options

    target = _with_vocab(model(9e9, mtp_layers=0, name="big"), "v1")
    head = ModelInfo(path="/models/big-eagle3.gguf", name="big eagle3", file_name="big-eagle3.gguf", folder="/models",
                     file_size=400_000_000, architecture="eagle3", parameters=200_000_000, vocab_hash="v1",
                     arch_meta={"target_hidden_size": 4096, "target_layers": [2, 16, 29]})
    wrong = ModelInfo(path="/models/x-eagle3.gguf", name="x eagle3", file_name="x-eagle3.gguf", folder="/models",
                      file_size=400_000_000, architecture="eagle3", parameters=200_000_000,
                      arch_meta={"target_hidden_size": 5120, "target_layers": [2, 16, 29]})
    opts = draft_options(target, [head, wrong])
    assert [(o.name, o.method, o.ok) for o in opts] == [("big eagle3", "eagle3", True), ("x eagle3", "eagle3", False)]
    assert "hidden size 5120" in opts[1].reason
    p = plan_launch("/bin/llama-server", target, GPU_HW, CURRENT, settings(), None, opts)
    assert p.argv[p.argv.index("--spec-type") + 1] == "draft-eagle3"
    assert p.argv[p.argv.index("--spec-draft-model") + 1] == head.path
    assert "--spec-draft-n-max" not in p.argv  # a head drafts its trained length unless the user sets one


# --- chat templates per era (issue 9) -----------------------------------------------------------

def _gemma() -> ModelInfo:
    import dataclasses

    return dataclasses.replace(model(0.27e9, mtp_layers=0, name="gemma"), architecture="gemma3", has_chat_template=False)


@pytest.mark.parametrize("era,expected", [
    ("b11434-current", ["--no-jinja", "--chat-template", "gemma"]),  # Jinja on by default: names need --no-jinja
    ("b5142-no-spec", ["--chat-template", "gemma"]),  # Jinja off by default: the name is honoured as it is
])
def test_template_flags_follow_the_binarys_jinja_default(era: str, expected: list[str]) -> None:
    c = caps(era)
    p = plan_launch("/bin/llama-server", _gemma(), CPU_HW, c, settings())
    start = p.argv.index(expected[0])
    assert p.argv[start:start + len(expected)] == expected
    own = plan_launch("/bin/llama-server", _gemma(), CPU_HW, c, settings(extra_args="--chat-template chatml"))
    assert own.argv.count("--chat-template") == 1 and own.argv[-2:] == ["--chat-template", "chatml"]
