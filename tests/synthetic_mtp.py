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


def write_mimo2_model(path: Path, with_mtp: bool = True, seed: int = 7, hidden: int = HIDDEN, n_trunk: int = 2,
                      name: str | None = None, mtp_head: str = "passes", ff: int = FF) -> Path:
    """Write the model. ``hidden``/``n_trunk``/``ff`` change its size but not what it predicts: the
    next-token permutation comes from its own seed, so a smaller model with the same vocabulary is a
    draft model whose drafts the bigger one accepts. ``mtp_head="wrong"`` makes the MTP head draft a
    token the trunk never picks (every draft is rejected: speculation that only costs); ``"noisy"`` makes
    its drafts less often right the further out they are (b11434 accepted 67%, 38%, 25%, 13% of
    positions 1-4 here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    perm_rng = np.random.default_rng(1000 + seed)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    n_blocks = n_trunk + (1 if with_mtp else 0)
    return _write(path, with_mtp, rng, perm_rng, tokens, scores, types, n_vocab, n_trunk, n_blocks,
                  name or ("tiny mimo2" + (" MTP" if with_mtp else "")), mtp_head, hidden, ff)


def _write(path: Path, with_mtp: bool, rng, perm_rng, tokens, scores, types, n_vocab: int, n_trunk: int,
           n_blocks: int, name: str, mtp_head: str, hidden: int, ff: int) -> Path:
    tensors = _tensors(rng, perm_rng, n_vocab, n_trunk, n_blocks, mtp_head, hidden, ff)
    _write_file(path, name, hidden, ff, n_blocks, 1 if with_mtp else 0, tokens, scores, types, tensors)
    return path


def _write_file(path: Path, name: str, hidden: int, ff: int, n_blocks: int, nextn: int, tokens, scores, types,
                tensors: list[tuple[str, np.ndarray]]) -> None:
    w = GGUFWriter(str(path), "mimo2")
    w.add_name(name)
    w.add_context_length(4096)
    w.add_embedding_length(hidden)
    w.add_block_count(n_blocks)
    w.add_feed_forward_length(ff)
    w.add_expert_feed_forward_length(ff)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_sliding_window(128)
    w.add_array("mimo2.attention.sliding_window_pattern", [True] + [False] * (n_blocks - 1))
    if nextn:
        w.add_uint32("mimo2.nextn_predict_layers", nextn)
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
    for tname, data in tensors:
        w.add_tensor(tname, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _tensors(rng, perm_rng, n_vocab: int, n_trunk: int, n_blocks: int, mtp_head: str, hidden: int,
             ff: int) -> list[tuple[str, np.ndarray]]:
    """Every tensor of the model, in file order (the random draws in a fixed order: same seed, same weights)."""
    emb = rng.standard_normal((n_vocab, hidden)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    emb *= 4.0
    first_normal = len(CONTROL) + 256
    normal = np.arange(first_normal, n_vocab)
    perm = normal.copy()
    perm_rng.shuffle(perm)
    output = np.zeros((n_vocab, hidden), dtype=np.float32)
    # logits_j = output_j . x, with x ~ emb[t]: make the winner of token t be perm(t)
    output[perm] = emb[normal]
    # byte tokens are never predicted either (keeps replies printable)
    def tiny(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 1e-3).astype(np.float32)

    out = [("token_embd.weight", emb), ("output_norm.weight", np.ones(hidden, dtype=np.float32)),
           ("output.weight", output)]
    qkv_out = HEADS * HEAD_DIM + 2 * KV_HEADS * HEAD_DIM
    for i in range(n_blocks):
        p = f"blk.{i}."
        out.append((p + "attn_norm.weight", np.ones(hidden, dtype=np.float32)))
        out.append((p + "attn_qkv.weight", (rng.standard_normal((qkv_out, hidden)) * 0.1).astype(np.float32)))
        out.append((p + "attn_output.weight", tiny(hidden, HEADS * HEAD_DIM)))
        out.append((p + "ffn_norm.weight", np.ones(hidden, dtype=np.float32)))
        out.append((p + "ffn_gate.weight", (rng.standard_normal((ff, hidden)) * 0.1).astype(np.float32)))
        out.append((p + "ffn_up.weight", (rng.standard_normal((ff, hidden)) * 0.1).astype(np.float32)))
        out.append((p + "ffn_down.weight", tiny(hidden, ff)))
        if i >= n_trunk:
            eh = np.zeros((hidden, 2 * hidden), dtype=np.float32)
            if mtp_head == "wrong":  # a fixed random direction: the head drafts the same wrong token every step
                eh[:, 0] = 8.0
            else:
                eh[:, :hidden] = np.eye(hidden, dtype=np.float32)  # pass the token embedding half through
            if mtp_head == "noisy":  # noise on the hidden-state half: drafts go wrong more often the further out
                eh[:, hidden:] += (np.random.default_rng(5).standard_normal((hidden, hidden)) * 0.3).astype(np.float32)
            out.append((p + "nextn.eh_proj.weight", eh))
            out.append((p + "nextn.enorm.weight", np.ones(hidden, dtype=np.float32)))
            out.append((p + "nextn.hnorm.weight", np.ones(hidden, dtype=np.float32)))
            out.append((p + "nextn.shared_head_norm.weight", np.ones(hidden, dtype=np.float32)))
    return out


SHARED = ("token_embd.weight", "output_norm.weight", "output.weight")  # what the converter's --mtp keeps besides the head


def write_mimo2_split(folder: Path, stem: str = "tiny-mimo2", seed: int = 7, n_trunk: int = 2,
                      name: str = "tiny mimo2", mtp_head: str = "passes", head_lacks: tuple[str, ...] = (),
                      target_keeps_key: bool = False) -> tuple[Path, Path]:
    """The same model as ``write_mimo2_model(with_mtp=True)``, published the way llama.cpp's converter
    does it since ``--mtp``/``--no-mtp`` (``convert_hf_to_gguf.py``, ``conversion/mimo.py``): the target
    ``<stem>.gguf`` converted ``--no-mtp`` (block_count = the trunk's layers, no ``nextn_predict_layers``,
    no NextN tensors) and the head ``mtp-<stem>.gguf`` converted ``--mtp`` (block_count = trunk + 1,
    ``nextn_predict_layers = 1``, only ``token_embd``/``output_norm``/``output`` and the last block).
    The tensors are the very same arrays in both layouts. ``head_lacks`` leaves tensors out of the head
    (an incomplete head: b11434 cannot load it); ``target_keeps_key`` writes the target the other way
    llama.cpp's loaders accept ("trunk_only": block_count and ``nextn_predict_layers`` as in the full
    model, no NextN tensors). Returns (target, head)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    perm_rng = np.random.default_rng(1000 + seed)
    tokens, scores, types = vocabulary()
    n_blocks = n_trunk + 1
    tensors = _tensors(rng, perm_rng, len(tokens), n_trunk, n_blocks, mtp_head, HIDDEN, FF)
    head_prefix = f"blk.{n_trunk}."
    trunk = [t for t in tensors if not t[0].startswith(head_prefix)]
    head = [t for t in tensors if (t[0].startswith(head_prefix) or t[0] in SHARED) and t[0] not in head_lacks]
    target_path, head_path = folder / f"{stem}.gguf", folder / f"mtp-{stem}.gguf"
    if target_keeps_key:
        _write_file(target_path, name, HIDDEN, FF, n_blocks, 1, tokens, scores, types, trunk)
    else:
        _write_file(target_path, name, HIDDEN, FF, n_trunk, 0, tokens, scores, types, trunk)
    _write_file(head_path, name, HIDDEN, FF, n_blocks, 1, tokens, scores, types, head)
    return target_path, head_path


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-mimo2-MTP.gguf")
    print(write_mimo2_model(out, with_mtp="--plain" not in sys.argv))
