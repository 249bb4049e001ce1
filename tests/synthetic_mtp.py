"""A tiny random-weight ``mimo2`` GGUF with one MTP layer, for proving MTP against the real server.

No MTP model small enough exists on the package registries, so the tests make one (about 1 MB).
The weights are chosen so drafts are accepted: attention and FFN outputs are tiny, so the hidden
state stays close to the current token's embedding and the next token is a fixed permutation of
the current one; the MTP head's ``eh_proj`` passes the (next) token's embedding through, so it
predicts exactly what the trunk will produce next. Control tokens get zero output rows so the
model never emits EOS and always generates the requested number of tokens.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, TokenType

HIDDEN = 64
HEADS = 4
KV_HEADS = 2
HEAD_DIM = 16
FF = 128
CONTROL = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
WORDS = ["the", "and", "hello", "world", "def", "return", "print", "repeat", "code", "python", "write",
         "story", "light", "house", "keeper", "user", "assistant", "system", "import", "class", "self"]
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens: list[str] = list(CONTROL)
    types: list[int] = [TokenType.UNKNOWN] + [TokenType.CONTROL] * 4
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(TokenType.BYTE)
    pieces: list[str] = ["▁"]
    for ch in string.ascii_letters + string.digits + string.punctuation:
        pieces.append(ch)
        pieces.append("▁" + ch)
    for w in WORDS:
        for n in range(2, len(w) + 1):
            pieces.append(w[:n])
            pieces.append("▁" + w[:n])
    seen: set[str] = set()
    for p in pieces:
        if p not in seen:
            seen.add(p)
            tokens.append(p)
            types.append(TokenType.NORMAL)
    scores = [0.0] * len(CONTROL) + [0.0] * 256 + [float(len(t)) for t in tokens[len(CONTROL) + 256:]]
    return tokens, scores, [int(t) for t in types]


def write_mimo2_model(path: Path, with_mtp: bool = True, seed: int = 7, name: str | None = None) -> Path:
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    n_trunk = 2
    n_blocks = n_trunk + (1 if with_mtp else 0)

    w = GGUFWriter(str(path), "mimo2")
    w.add_name(name if name is not None else "tiny mimo2" + (" MTP" if with_mtp else ""))
    w.add_context_length(4096)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(n_blocks)
    w.add_feed_forward_length(FF)
    w.add_expert_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_sliding_window(128)
    w.add_array("mimo2.attention.sliding_window_pattern", [True] + [False] * (n_blocks - 1))
    if with_mtp:
        w.add_uint32("mimo2.nextn_predict_layers", 1)
    w.add_file_type(0)  # ALL_F32

    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHATML)

    emb = rng.standard_normal((n_vocab, HIDDEN)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    emb *= 4.0
    first_normal = len(CONTROL) + 256
    normal = np.arange(first_normal, n_vocab)
    perm = normal.copy()
    rng.shuffle(perm)
    output = np.zeros((n_vocab, HIDDEN), dtype=np.float32)
    # logits_j = output_j . x, with x ~ emb[t]: make the winner of token t be perm(t)
    output[perm] = emb[normal]
    # byte tokens are never predicted either (keeps replies printable)
    def tiny(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 1e-3).astype(np.float32)

    w.add_tensor("token_embd.weight", emb)
    w.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    w.add_tensor("output.weight", output)
    qkv_out = HEADS * HEAD_DIM + 2 * KV_HEADS * HEAD_DIM
    for i in range(n_blocks):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        w.add_tensor(p + "attn_qkv.weight", (rng.standard_normal((qkv_out, HIDDEN)) * 0.1).astype(np.float32))
        w.add_tensor(p + "attn_output.weight", tiny(HIDDEN, HEADS * HEAD_DIM))
        w.add_tensor(p + "ffn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        w.add_tensor(p + "ffn_gate.weight", (rng.standard_normal((FF, HIDDEN)) * 0.1).astype(np.float32))
        w.add_tensor(p + "ffn_up.weight", (rng.standard_normal((FF, HIDDEN)) * 0.1).astype(np.float32))
        w.add_tensor(p + "ffn_down.weight", tiny(HIDDEN, FF))
        if i >= n_trunk:
            eh = np.zeros((HIDDEN, 2 * HIDDEN), dtype=np.float32)
            eh[:, :HIDDEN] = np.eye(HIDDEN, dtype=np.float32)  # pass the token embedding half through
            w.add_tensor(p + "nextn.eh_proj.weight", eh)
            w.add_tensor(p + "nextn.enorm.weight", np.ones(HIDDEN, dtype=np.float32))
            w.add_tensor(p + "nextn.hnorm.weight", np.ones(HIDDEN, dtype=np.float32))
            w.add_tensor(p + "nextn.shared_head_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-mimo2-MTP.gguf")
    print(write_mimo2_model(out, with_mtp="--plain" not in sys.argv))
