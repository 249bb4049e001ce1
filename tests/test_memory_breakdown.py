"""Reading llama-server's own memory figures from its log, keeping them per model, and the line the window shows.

The logs are recorded from the real b11434 server (``-lv 4``) on this project's CPU machine, and
one CUDA run recorded in llama.cpp's own documentation (there is no GPU here); the real server
itself is exercised in test_memory_real.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from llama_launcher.core.memory import corrections as memory_corrections
from llama_launcher.core.memory.breakdown import parse_server_memory
from llama_launcher.core.memory.corrections import MemoryMeasurement
from llama_launcher.core.memory.estimate import DECIDED_LEARNED, MemoryEvidence, estimate
from llama_launcher.core.memory.evidence import read_log_lines
from llama_launcher.core.memory.launch import LaunchMemory, launch_memory_from_argv, user_spec_memory
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.state import state_files

FIXTURES = Path(__file__).parent / "fixtures" / "memory"


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


def test_cpu_log_with_mtp_draft_context() -> None:
    mem = parse_server_memory(lines("b11434-cpu-mtp-32k-fa-off.log"))
    # the exit table (main context only), and the --fit tables printed before loading (main + draft)
    assert [(r.name, r.model, r.context, r.compute) for r in mem.rows] == [("Host", 0, 4, 322)]
    assert [(r.name, r.self_mib) for r in mem.fit_rows] == [("Host", 327), ("Host", 325)]
    assert mem.projected_mib == 652 and mem.projected_kind == "host"  # --fit's projection includes the draft
    assert mem.n_ctx == 32768 and mem.flash_attn is False
    assert mem.model_buffers == pytest.approx(0.76) and mem.main.kv == pytest.approx(4.12)
    assert mem.main.compute == pytest.approx(322.89)
    # the draft context reserves its graph twice; its compute buffer is counted once
    assert mem.draft is not None and mem.draft.kv == pytest.approx(4.0) and mem.draft.compute == pytest.approx(320.38)
    assert mem.total_mib() == pytest.approx(0.76 + 4.12 + 322.89 + 4.0 + 320.38)


def test_an_mtp_head_in_its_own_file_is_the_draft_not_the_models_weights() -> None:
    """b11434, -m target -md mtp-head --spec-type draft-mtp -c 2048 -lv 4 (synthetic_mtp.write_mimo2_split):
    after "loading draft model" the head's model buffer is not this model's, its KV and compute are the draft's."""
    mem = parse_server_memory(lines("b11434-cpu-mtp-head-pair.log"))
    assert mem.model_buffers == pytest.approx(0.58)  # the target's own tensors only, not the head's 0.48
    assert mem.main.kv == pytest.approx(0.25 + 0.12) and mem.main.compute == pytest.approx(3.90)
    assert mem.draft is not None and mem.draft.kv == pytest.approx(0.25) and mem.draft.compute == pytest.approx(2.57)


def test_cpu_log_with_ngram_mod_and_a_repacked_buffer() -> None:
    mem = parse_server_memory(lines("b11434-cpu-demo-4k-ngram.log"))
    assert [(r.name, r.self_mib) for r in mem.rows] == [("Host", 557), ("CPU_REPACK", 12)]
    assert mem.draft is None and mem.flash_attn is True
    assert mem.parts_mib()["weights"] == pytest.approx(235.16 + 12.66)
    assert mem.parts_mib()["compute"] == pytest.approx(272.78)


def test_cuda_breakdown_from_llama_cpp_docs() -> None:
    mem = parse_server_memory(lines("cuda-rtx4090-fit-params-readme.log"))
    dev = mem.device_rows()
    assert [(r.name, r.total, r.free, r.self_mib, r.unaccounted) for r in dev] == [
        ("CUDA0 (RTX 4090)", 24077, 945, 19187, 3945)]
    assert mem.rows[-1].name == "Host" and mem.rows[-1].self_mib == 58271
    assert mem.projected_mib == 19187 and mem.projected_kind == "device"  # the last --fit projection wins
    assert not mem.has_buffers and mem.total_mib() == 19187 + 58271  # whole MiB from the table
    # the GPU lost (free before - free while running) beyond its buffers: the backend's own memory
    m = memory_corrections.measurement_from_server_memory(mem, LaunchMemory(backend="CUDA"), 4096,
                                                          gpu_free_before_mib=24077 - 300)
    assert m is not None and m.backend_mib == 24077 - 300 - 945 - 19187


def test_a_log_without_memory_lines_teaches_nothing() -> None:
    plain = ["srv  llama_server: initializing ...", "srv    load_model: loading model 'x.gguf'",
             "error: failed to load model"]
    assert parse_server_memory(plain).total_mib() is None
    assert memory_corrections.measurement_from_log(plain, LaunchMemory(), 4096) is None


def test_a_second_load_in_the_same_log_starts_over() -> None:
    log = lines("b11434-cpu-demo-4k-ngram.log")
    mtp = lines("b11434-cpu-mtp-32k-fa-off.log")
    mem = parse_server_memory(log + mtp)
    assert mem.n_ctx == 32768 and mem.model_buffers == pytest.approx(0.76) and mem.draft is not None


def test_log_head_and_tail_are_read_from_a_long_session(tmp_path: Path) -> None:
    log = lines("b11434-cpu-mtp-32k-fa-off.log")
    head, tail = log[:200], log[200:]
    noise = ["slot print_timing: id  3 | task 0 | eval time = 1 ms / 64 tokens"] * 120_000  # ~8 MB of requests
    p = tmp_path / "server.log"
    p.write_text("\n".join(head + noise + tail) + "\n", encoding="utf-8")
    got = read_log_lines(p)
    assert len(got) < 100_000
    mem = parse_server_memory(got)
    assert mem.rows and mem.main.compute == pytest.approx(322.89) and mem.draft is not None


def test_user_flags_change_the_memory_settings() -> None:
    base = LaunchMemory()
    got = launch_memory_from_argv(["-fa", "off", "--ubatch-size=256", "-ctk", "q8_0", "-np", "2", "--swa-full"], base)
    assert (got.flash_attn, got.n_ubatch, got.cache_type_k, got.n_parallel, got.kv_unified, got.swa_full) == (
        "off", 256, "q8_0", 2, False, True)
    assert launch_memory_from_argv(["-ub", "abc", "-fa", "maybe"], base) == base  # bad values: llama-server's to refuse
    spec = user_spec_memory(["--spec-type", "ngram-mod,draft-mtp"], base)
    assert spec.mtp and spec.n_draft == 64 and spec.n_outputs() == 4 * 65
    assert user_spec_memory(["--spec-type", "draft-mtp", "--spec-draft-n-max", "5"], base).n_draft == 5


def _tiny() -> ModelInfo:
    return ModelInfo(path="/m/t.gguf", name="t", file_name="t.gguf", folder="/m", file_size=100 * 1024 * 1024,
                     architecture="llama", parameters=50_000_000, context_length=8192, block_count=4,
                     arch_meta={"embedding_length": 512, "attention.head_count": 8, "attention.head_count_kv": 2,
                                "feed_forward_length": 1024, "vocab_size": 32000})


def test_learned_figures_decide_and_scale_with_the_context() -> None:
    launch = LaunchMemory(flash_attn="off")
    then = estimate(_tiny(), 4096, 100_000, "budget", launch=launch)
    measured = MemoryMeasurement(context=4096, weights_mib=110.0, kv_mib=then.kv_mib * 1.0,
                                 compute_mib=then.compute_mib * 2.0, flash_attn_used=False,
                                 estimated_mib=then.launcher_mib, key=launch.key())
    ev = MemoryEvidence(measurements=[measured])
    assert ev.learned_for(launch) is measured and ev.learned_for(LaunchMemory(flash_attn="on")) is None
    same = estimate(_tiny(), 4096, 100_000, "budget", launch=launch, learned=measured)
    assert same.decided_by == DECIDED_LEARNED and same.total_mib == pytest.approx(measured.total_mib, abs=2)
    assert same.launcher_mib == then.launcher_mib  # the launcher's own figure is still shown
    bigger = estimate(_tiny(), 8192, 100_000, "budget", launch=launch, learned=measured)
    ours_8k = estimate(_tiny(), 8192, 100_000, "budget", launch=launch)
    assert bigger.weights_mib == 110 and bigger.compute_mib == pytest.approx(2 * ours_8k.compute_mib, abs=2)
    assert "learned from your last launch (it used" in bigger.describe()


def test_the_store_keeps_one_measurement_per_settings_and_survives_junk(isolated_home: Path) -> None:
    model = _tiny()
    a = MemoryMeasurement(context=4096, weights_mib=1.5, kv_mib=2.0, compute_mib=3.0, key=LaunchMemory().key())
    b = MemoryMeasurement(context=4096, weights_mib=1.5, kv_mib=2.0, compute_mib=9.0,
                          key=LaunchMemory(flash_attn="off").key())
    assert memory_corrections.save(model.path, 11434, a)
    assert memory_corrections.save(model.path, 11434, b)
    newer = MemoryMeasurement(context=8192, weights_mib=1.5, kv_mib=4.0, compute_mib=3.0, key=LaunchMemory().key())
    assert memory_corrections.save(model.path, 11434, newer)
    got = memory_corrections.lookup_all(model.path, 11434)
    assert [m.context for m in got] == [8192, 4096] and got[0] == newer
    assert memory_corrections.lookup_all(model.path, 9999) == []  # another build learns on its own
    # junk in the file: moved aside with a notice, and the launcher carries on with nothing learned
    state_files.drain_notices()
    path = memory_corrections.store_file()
    for junk in (b"\x00\xff not json", json.dumps({"version": 1, "results": {"k": [{"context": -5}]}}).encode(),
                 json.dumps({"version": 1, "results": {"k": [{"context": 4096, "weights_mib": math.inf,
                                                               "kv_mib": 1, "compute_mib": 1}]}}).encode()):
        path.write_bytes(junk)
        assert memory_corrections.lookup_all(model.path, 11434) == []
        notices = state_files.drain_notices()
        assert len(notices) == 1 and "learned memory figures was corrupt" in notices[0]
        assert not path.exists() and list(path.parent.glob(path.name + ".corrupt-*"))
        for aside in path.parent.glob(path.name + ".corrupt-*"):
            aside.unlink()
        state_files._reported.clear()
