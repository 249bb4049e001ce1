"""Small GGUF files for catalog tests, written with the gguf package (real format, tiny tensors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter


def write_model(path: Path, arch: str = "llama", name: str | None = "Tiny Llama", blocks: int = 2, hidden: int = 8,
                nextn: int = 0, context: int = 2048, extra_kv: dict | None = None, vocab: int = 16,
                split: tuple[int, int] | None = None, chat_template: bool = True, tokens: int | None = None) -> Path:
    """``extra_kv`` adds keys (text, a list, a float as float32, else uint32); a standard key given
    there replaces the one written here (``{"llama.block_count": math.nan}``: a hostile file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extra_kv = dict(extra_kv or {})
    w = GGUFWriter(str(path), arch)
    if name:
        w.add_name(name)
    standard = {f"{arch}.context_length": (w.add_context_length, context),
                f"{arch}.embedding_length": (w.add_embedding_length, hidden),
                f"{arch}.block_count": (w.add_block_count, blocks),
                f"{arch}.attention.head_count": (w.add_head_count, 2),
                f"{arch}.attention.head_count_kv": (w.add_head_count_kv, 1)}
    for key, (add, value) in standard.items():
        if key not in extra_kv:
            add(value)
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
    for k, v in extra_kv.items():
        if isinstance(v, str):
            w.add_string(k, v)
        elif isinstance(v, list):
            w.add_array(k, v)
        elif isinstance(v, float):
            w.add_float32(k, v)
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
