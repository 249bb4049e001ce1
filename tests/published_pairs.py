"""Models as they are published today: a target and its drafter in two files, written with ``gguf``'s writer.

Shapes come from the producer, llama.cpp b11434's converter (``convert_hf_to_gguf.py`` ``--mtp`` /
``--no-mtp``, ``conversion/qwen.py``, ``conversion/gemma.py``; key names from ``gguf-py/gguf/constants.py``):

- a ``--no-mtp`` target: ``block_count`` = the trunk's layers, no ``nextn_predict_layers``, no
  ``blk.N.nextn.*`` tensors;
- its ``--mtp`` head ``mtp-<name>.gguf``: the same architecture, vocabulary and ``general.name``,
  ``block_count`` = trunk + 1, ``nextn_predict_layers = 1``, only ``token_embd``/``output_norm``/
  ``output`` and the last block's tensors (attention, FFN and ``nextn.eh_proj/enorm/hnorm/
  shared_head_norm``);
- a Gemma 4 target (``gemma4``: a sliding-window pattern, SWA head widths, shared-KV layers) and its
  ``gemma4-assistant`` drafter (``Gemma4AssistantModel``: ``embedding_length_out`` = the target's
  hidden size, ``nextn_predict_layers`` = its block count, ``nextn.pre_projection`` /
  ``nextn.post_projection``, query-only attention: it reads the target's KV cache).

The tensors are declared with their real shapes (Q8_0, so the parameter counts and the 3B gate are
those of a real model) and the file is left sparse past the header: a few KB of disk for a file
that is as large as the real one. llama.cpp could not load these; the catalog, the planner and the
memory estimate only read headers. The real-binary proof uses ``synthetic_mtp.write_mimo2_split``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

Q8_BYTES = 34 / 32  # Q8_0: 32 weights in 34 bytes
ALIGN = 32


def _q8(n_elements: int) -> int:
    return -(-int(n_elements * Q8_BYTES) // ALIGN) * ALIGN


class _Sparse:
    """A GGUF header with tensor infos only; the data section is a hole of the right size."""

    def __init__(self, path: Path, arch: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.w = GGUFWriter(str(path), arch)
        self.data_bytes = 0

    def tensor(self, name: str, *shape: int) -> None:
        n = int(np.prod(shape))
        nbytes = _q8(n)
        # gguf's writer takes ggml's order reversed (numpy order); the reader multiplies the dims either way
        self.w.add_tensor_info(name, list(reversed(shape)), np.dtype(np.float32), nbytes, GGMLQuantizationType.Q8_0)
        self.data_bytes += nbytes

    def finish(self) -> Path:
        self.w.write_header_to_file()
        self.w.write_kv_data_to_file()
        self.w.write_ti_data_to_file()
        self.w.close()
        with open(self.path, "r+b") as fh:
            fh.seek(0, 2)
            header = fh.tell()
            fh.truncate(-(-header // ALIGN) * ALIGN + self.data_bytes)
        return self.path


def _tokens(w: GGUFWriter, n: int, salt: str) -> None:
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"{salt}{i}" for i in range(n)])


def _qwen35_kv(w: GGUFWriter, name: str, blocks: int, hidden: int, ff: int, nextn: int) -> None:
    w.add_name(name)
    w.add_context_length(262144)
    w.add_embedding_length(hidden)
    w.add_block_count(blocks)
    w.add_feed_forward_length(ff)
    w.add_head_count(32)
    w.add_head_count_kv(8)
    w.add_key_length(256)
    w.add_value_length(256)
    w.add_uint32("qwen35.full_attention_interval", 4)
    w.add_uint32("qwen35.ssm.state_size", 128)
    w.add_file_type(7)  # MOSTLY_Q8_0
    if nextn:
        w.add_uint32("qwen35.nextn_predict_layers", nextn)
    w.add_chat_template("{{ messages }}")


def _block(f: _Sparse, i: int, hidden: int, ff: int) -> None:
    p = f"blk.{i}."
    f.tensor(p + "attn_norm.weight", hidden)
    f.tensor(p + "attn_qkv.weight", hidden, 3 * hidden)
    f.tensor(p + "attn_output.weight", hidden, hidden)
    f.tensor(p + "ffn_gate.weight", hidden, ff)
    f.tensor(p + "ffn_up.weight", hidden, ff)
    f.tensor(p + "ffn_down.weight", ff, hidden)


def write_qwen35_target(path: Path, name: str = "Qwen3.6 8B", layers: int = 36, hidden: int = 4096,
                        ff: int = 12288, vocab: int = 4096, salt: str = "t") -> Path:
    """A ``--no-mtp`` target (about 8B parameters with the defaults)."""
    f = _Sparse(path, "qwen35")
    _qwen35_kv(f.w, name, layers, hidden, ff, 0)
    _tokens(f.w, vocab, salt)
    f.tensor("token_embd.weight", hidden, 151936)
    f.tensor("output_norm.weight", hidden)
    f.tensor("output.weight", hidden, 151936)
    for i in range(layers):
        _block(f, i, hidden, ff)
    return f.finish()


def write_qwen35_head(path: Path, name: str = "Qwen3.6 8B", layers: int = 36, hidden: int = 4096,
                      ff: int = 12288, vocab: int = 4096, salt: str = "t") -> Path:
    """Its ``--mtp`` head: trunk + 1 blocks declared, only the shared tensors and the last block present."""
    f = _Sparse(path, "qwen35")
    _qwen35_kv(f.w, name, layers + 1, hidden, ff, 1)
    _tokens(f.w, vocab, salt)
    f.tensor("token_embd.weight", hidden, 151936)
    f.tensor("output_norm.weight", hidden)
    f.tensor("output.weight", hidden, 151936)
    _block(f, layers, hidden, ff)
    p = f"blk.{layers}.nextn."
    f.tensor(p + "eh_proj.weight", 2 * hidden, hidden)
    f.tensor(p + "enorm.weight", hidden)
    f.tensor(p + "hnorm.weight", hidden)
    f.tensor(p + "shared_head_norm.weight", hidden)
    return f.finish()


GEMMA4_LAYERS = 60  # gemma-4-31B: llama.cpp names 60 layers LLM_TYPE_31B
GEMMA4_HIDDEN = 5376


def write_gemma4_target(path: Path, name: str = "Gemma 4 31B It", vocab: int = 4096, salt: str = "g") -> Path:
    """A Gemma 4 target as ``Gemma4Model`` writes it: five sliding-window layers to one full one, wider
    heads on the full layers, fewer KV heads there, the last layers sharing earlier layers' KV."""
    n, hidden, ff = GEMMA4_LAYERS, GEMMA4_HIDDEN, 21504
    f = _Sparse(path, "gemma4")
    w = f.w
    w.add_name(name)
    w.add_context_length(262144)
    w.add_embedding_length(hidden)
    w.add_block_count(n)
    w.add_feed_forward_length(ff)
    w.add_head_count(32)
    swa = [(i + 1) % 6 != 0 for i in range(n)]
    w.add_array("gemma4.attention.head_count_kv", [16 if s else 4 for s in swa])
    w.add_key_length(512)  # global_head_dim
    w.add_value_length(512)
    w.add_uint32("gemma4.attention.key_length_swa", 256)
    w.add_uint32("gemma4.attention.value_length_swa", 256)
    w.add_uint32("gemma4.attention.sliding_window", 1024)
    w.add_array("gemma4.attention.sliding_window_pattern", swa)
    w.add_uint32("gemma4.attention.shared_kv_layers", 0)
    w.add_uint32("gemma4.embedding_length_per_layer_input", 0)
    w.add_file_type(7)
    _tokens(w, vocab, salt)
    w.add_chat_template("{{ messages }}")
    f.tensor("token_embd.weight", hidden, 262144)
    f.tensor("output_norm.weight", hidden)
    for i in range(n):
        _block(f, i, hidden, ff)
    return f.finish()


def write_gemma4_assistant(path: Path, name: str = "Gemma 4 31B It Assistant", target_hidden: int = GEMMA4_HIDDEN,
                           vocab: int = 4096, salt: str = "g") -> Path:
    """``Gemma4AssistantModel``: four small layers, all NextN (``nextn_predict_layers = block_count``)."""
    n, hidden, ff = 4, 1024, 4096
    f = _Sparse(path, "gemma4-assistant")
    w = f.w
    w.add_name(name)
    w.add_context_length(262144)
    w.add_embedding_length(hidden)
    w.add_uint32("gemma4-assistant.embedding_length_out", target_hidden)
    w.add_block_count(n)
    w.add_feed_forward_length(ff)
    w.add_head_count(8)
    w.add_head_count_kv(1)
    w.add_key_length(512)
    w.add_value_length(512)
    w.add_uint32("gemma4-assistant.attention.key_length_swa", 256)
    w.add_uint32("gemma4-assistant.attention.value_length_swa", 256)
    w.add_uint32("gemma4-assistant.attention.sliding_window", 1024)
    w.add_array("gemma4-assistant.attention.sliding_window_pattern", [True, True, True, False])
    w.add_uint32("gemma4-assistant.nextn_predict_layers", n)
    w.add_file_type(7)
    _tokens(w, vocab, salt)
    f.tensor("token_embd.weight", hidden, 262144)
    f.tensor("output_norm.weight", hidden)
    f.tensor("nextn.pre_projection.weight", 2 * target_hidden, hidden)
    f.tensor("nextn.post_projection.weight", hidden, target_hidden)
    for i in range(n):
        p = f"blk.{i}."
        f.tensor(p + "attn_norm.weight", hidden)
        f.tensor(p + "attn_q.weight", hidden, 8 * 256)
        f.tensor(p + "attn_output.weight", 8 * 256, hidden)
        f.tensor(p + "ffn_gate.weight", hidden, ff)
        f.tensor(p + "ffn_up.weight", hidden, ff)
        f.tensor(p + "ffn_down.weight", ff, hidden)
    return f.finish()
