"""Small GGUF files for catalog tests, written with the gguf package (real format, tiny tensors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter


def write_model(path: Path, arch: str = "llama", name: str | None = "Tiny Llama", blocks: int = 2, hidden: int = 8,
                nextn: int = 0, context: int = 2048, extra_kv: dict | None = None, vocab: int = 16,
                split: tuple[int, int] | None = None, chat_template: bool = True, tokens: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = GGUFWriter(str(path), arch)
    if name:
        w.add_name(name)
    w.add_context_length(context)
    w.add_embedding_length(hidden)
    w.add_block_count(blocks)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_file_type(0)
    if nextn:
        w.add_uint32(f"{arch}.nextn_predict_layers", nextn)
    if split:
        w.add_uint16("split.no", split[0] - 1)
        w.add_uint16("split.count", split[1])
    if tokens:
        w.add_tokenizer_model("llama")
        w.add_token_list([f"tok{i}" for i in range(tokens)])
        w.add_token_scores([0.0] * tokens)
    if chat_template:
        w.add_chat_template("{{ messages }}")
    for k, v in (extra_kv or {}).items():
        if isinstance(v, str):
            w.add_string(k, v)
        elif isinstance(v, list):
            w.add_array(k, v)
        else:
            w.add_uint32(k, v)
    w.add_tensor("token_embd.weight", np.zeros((vocab, hidden), dtype=np.float32))
    for i in range(blocks):
        w.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((hidden, hidden), dtype=np.float32))
        if i >= blocks - nextn:
            w.add_tensor(f"blk.{i}.nextn.eh_proj.weight", np.zeros((hidden, 2 * hidden), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
