"""Cheap files that claim to be expensive: the hostile inputs of issue 12, made on demand.

Each costs a few KB of real disk (sparse files) but claims billions of items, so a reader that
trusts a count instead of bounding it by what the file can hold runs for hours or runs out of
memory. Shared by the tests and ``benchmarks/bench_hostile_folder.py``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

SPARSE_SIZE = 16 * 1024**3  # 16 GiB apparent size, a few KB on disk


def gguf_prefix(n_tensors: int, n_kv: int, body: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + body


def sparse(path: Path, head: bytes, size: int = SPARSE_SIZE) -> Path:
    """``head`` followed by a hole (zeros that take no disk space) up to ``size`` bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def tensor_bomb(path: Path, n_tensors: int = 2**29) -> Path:
    """2^29 zero-filled tensor infos (24 bytes each) fit in 16 GiB of zeros."""
    return sparse(path, gguf_prefix(n_tensors, 0))


def kv_bomb(path: Path, n_kv: int = 2**30) -> Path:
    """2^30 metadata entries of 13 zero bytes each (empty key, UINT8 value)."""
    return sparse(path, gguf_prefix(0, n_kv))


def string_array_bomb(path: Path, count: int = 2**30) -> Path:
    """One array claiming 2^30 strings of zero length (8 bytes each, all in the hole)."""
    key = b"tokenizer.ggml.tokens"
    body = struct.pack("<Q", len(key)) + key + struct.pack("<IIQ", 9, 8, count)
    return sparse(path, gguf_prefix(0, 1, body))


def empty_split_parts(folder: Path, n: int = 20, count: int = 99999) -> list[Path]:
    """``n`` empty files, each claiming to be part 1 of a ``count``-part split model."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"m{i:03d}-00001-of-{count:05d}.gguf"
        p.write_bytes(b"")
        out.append(p)
    return out


def odd_entries(folder: Path, depth: int = 12) -> dict[str, Path]:
    """A FIFO, a symlink to it, broken symlinks, a symlink loop and a too-deep folder."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    if hasattr(os, "mkfifo"):
        fifo = folder / "x.gguf"
        os.mkfifo(fifo)
        made["fifo"] = fifo
        link = folder / "link-to-fifo.gguf"
        link.symlink_to(fifo)
        made["fifo_link"] = link
    broken = folder / "gone.gguf"
    broken.symlink_to(folder / "no-such-target.gguf")
    made["broken"] = broken
    loop = folder / "loop"
    loop.symlink_to(folder, target_is_directory=True)
    made["loop"] = loop
    deep = folder / "deep"
    for i in range(depth):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "buried.gguf").write_bytes(b"GGUF")
    made["deep"] = deep
    return made


def hostile_folder(folder: Path, splits: int = 20) -> Path:
    """Everything above in one folder: what ``models`` must list quickly and in bounded memory."""
    tensor_bomb(folder / "tensor-bomb.gguf")
    kv_bomb(folder / "kv-bomb.gguf")
    string_array_bomb(folder / "string-array-bomb.gguf")
    empty_split_parts(folder / "splits", n=splits)
    odd_entries(folder / "odd")
    return folder
