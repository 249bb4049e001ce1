"""The estimate's parts, each against what llama.cpp does (the totals are checked against the real server
in test_memory_real.py): what grows with the context, what MTP adds, what the draft length costs."""

from __future__ import annotations

from pathlib import Path

from llama_launcher.core.memory.estimate import MIB, launcher_parts
from llama_launcher.core.memory.launch import LaunchMemory
from llama_launcher.core.models.model_info import read_model_info


def test_flash_attention_off_grows_by_the_scores_and_the_mask(mtp_models: dict[str, Path]) -> None:
    m = read_model_info(mtp_models["plain"])  # 4 heads; the server measured +280 MiB from 4k to 32k with FA off
    off = [launcher_parts(m, c, LaunchMemory(flash_attn="off")).compute for c in (4096, 32768)]
    on = [launcher_parts(m, c, LaunchMemory(flash_attn="on")).compute for c in (4096, 32768)]
    assert off[1] - off[0] == (32768 - 4096) * 512 * 4 * (4 + 1)  # cells x ubatch x f32 x (heads + mask)
    assert on[1] - on[0] == (32768 - 4096) * 512 * 2  # an f16 mask only
    assert (off[1] - off[0]) / MIB == 280


def test_mtp_loads_its_blocks_and_adds_a_draft_context(mtp_models: dict[str, Path]) -> None:
    m = read_model_info(mtp_models["mtp"])
    assert len(m.block_parameters) == 3 and m.block_parameters[2] > 0  # blk.2 is the MTP block
    off = launcher_parts(m, 32768, LaunchMemory(flash_attn="on", mtp=False))
    on = launcher_parts(m, 32768, LaunchMemory(flash_attn="on", mtp=True, n_draft=3))
    share = m.block_parameters[2] / m.parameters
    assert on.weights - off.weights == int(m.file_size * share) and on.weights == m.file_size
    assert off.draft == 0 and on.draft_kv == 32768 * 2 * (16 + 16) * 2  # its one full-attention layer, f16
    assert on.draft_compute > 0 and on.kv == off.kv  # the main context holds only the trunk's KV


def test_the_draft_length_reserves_logits_rows(demo_model: Path) -> None:
    m = read_model_info(demo_model)
    assert m.arch_meta["vocab_size"] == 262144  # the tokenizer's length: the logits width
    plain = launcher_parts(m, 4096, LaunchMemory(flash_attn="on"))
    ngram = launcher_parts(m, 4096, LaunchMemory(flash_attn="on", n_draft=64))
    # 4 slots x (1 + 64) rows instead of 4 (the server measured 272.78 MiB against 24.78 without)
    assert ngram.compute - plain.compute == (260 - 4) * 262144 * 4
