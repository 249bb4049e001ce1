"""A streaming reader for GGUF headers: key/values and tensor infos, never tensor data.

``gguf.GGUFReader`` maps the file and decodes every array (the tokenizer alone holds hundreds
of thousands of strings), which took 22 s for the 253 MB demo model on a busy 2-core machine.
A catalog only needs the metadata, so this reader walks the header in bounded chunks, keeps
small values, skips large arrays by their lengths, and validates every count and length
against the bytes that remain in the file before trusting it. Malformed input of any kind
becomes a :class:`GGUFError` with a one-line message; memory stays bounded per file.

A file's size can be faked for free (a sparse 16 GiB file takes 8 KB of disk and reads as zeros),
so counts are also held to absolute caps far above any real model's (the biggest real headers are
tens of MB, with a few thousand tensors and a few hundred keys), the values kept in memory share
one budget, and a run of zeros in a string array (the hole of a sparse file) is skipped at memory
speed rather than one empty string at a time. Only regular files are opened: a FIFO named
``x.gguf`` would block the reader forever.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, BinaryIO

from llama_launcher.core.models.gguf_enums import GGMLQuantizationType, GGUFValueType
from llama_launcher.core.models.gguf_stream import (
    MAX_HEADER_BYTES,
    MAX_KEY_LENGTH,
    GGUFError,
    _PrefixEnd,
    _Stream,
)

GGUF_MAGIC = b"GGUF"
MAX_KEPT_ARRAY = 4096  # per-layer arrays (sliding window pattern, head counts) are small
MAX_DIMS = 8
TOKENS_KEY = "tokenizer.ggml.tokens"
MAX_KV = 1 << 14
MAX_TENSORS = 1 << 16
MAX_ELEMENTS = (1 << 63) - 1  # ggml counts elements in an int64
MIN_KV_BYTES = 8 + 4 + 1  # empty key, value type, one-byte value
MIN_TENSOR_BYTES = 8 + 4 + 8 + 4 + 8  # empty name, n_dims, one dimension, type, offset
MAX_BLOCKS = 4096  # per-block parameter counts are kept for this many blocks (real models have ~130)

# Element sizes of the fixed-width value types; strings and arrays are handled apart.
_SCALAR_FORMATS: dict[int, str] = {
    GGUFValueType.UINT8: "B",
    GGUFValueType.INT8: "b",
    GGUFValueType.UINT16: "H",
    GGUFValueType.INT16: "h",
    GGUFValueType.UINT32: "I",
    GGUFValueType.INT32: "i",
    GGUFValueType.FLOAT32: "f",
    GGUFValueType.BOOL: "?",
    GGUFValueType.UINT64: "Q",
    GGUFValueType.INT64: "q",
    GGUFValueType.FLOAT64: "d",
}




@dataclass(frozen=True)
class SkippedArray:
    """A large array that was skipped rather than decoded (e.g. the tokenizer's tokens)."""

    element_type: str
    count: int
    digest: str | None = None  # sha256 of the raw elements, kept for the tokenizer's token list


@dataclass
class TensorSummary:
    """What the catalog needs from the tensor infos, aggregated while streaming."""

    count: int = 0
    parameters: int = 0
    mtp_parameters: int = 0  # tensors named blk.N.nextn.*
    mtp_tensors: int = 0
    markov_head: bool = False  # markov_w1.weight: the tensor that makes a dflash head a DSpark one
    block_parameters: list[int] = field(default_factory=list)  # per blk.N (N < MAX_BLOCKS): MTP blocks load only with MTP
    elements_by_type: dict[str, int] = field(default_factory=dict)


@dataclass
class GGUFHeader:
    path: PurePath  # a file on disk, or a repository path for a header read over HTTP
    version: int
    byte_order: str  # "<" or ">"
    metadata: dict[str, Any]
    tensors: TensorSummary
    header_bytes: int
    complete: bool = True  # False: read from a prefix that ended first (metadata up to there, no tensors)


def _type_name(value_type: int) -> str:
    try:
        return GGUFValueType(value_type).name
    except ValueError:
        return str(value_type)


def _array_too_long(s: _Stream, key: str, count: int, each: int) -> None:
    if s.file_size > MAX_HEADER_BYTES and count <= (s.file_size - s.pos) // each:
        s.short(count * each)
    raise GGUFError(f"truncated or corrupt GGUF: array {key} claims {count} elements but only {s.remaining} bytes remain")


def _read_value(s: _Stream, value_type: int, key: str) -> Any:
    fmt = _SCALAR_FORMATS.get(value_type)
    if fmt is not None:
        return s.scalar(fmt)
    if value_type == GGUFValueType.STRING:
        return s.string(f"the value of {key}")
    if value_type == GGUFValueType.ARRAY:
        elem_type = s.u32()
        count = s.u64()
        if elem_type == GGUFValueType.ARRAY:
            raise GGUFError(f"unsupported GGUF value: nested array in {key}")
        efmt = _SCALAR_FORMATS.get(elem_type)
        if efmt is not None:
            size = struct.calcsize(efmt)
            if not s.room(count, size):
                _array_too_long(s, key, count, size)
            if count > MAX_KEPT_ARRAY:
                s.skip(count * size)
                return SkippedArray(_type_name(elem_type), count)
            s.keep(count * 8 + 56, key)  # a list of Python numbers: ~8 bytes of pointer each, plus the list
            raw = s.read(count * size)
            return list(struct.unpack(s.order + efmt * count, raw))
        if elem_type == GGUFValueType.STRING:
            if not s.room(count, 8):
                _array_too_long(s, key, count, 8)
            if count > MAX_KEPT_ARRAY:
                digest = hashlib.sha256() if key == TOKENS_KEY else None
                s.skip_strings(count, key, digest)
                return SkippedArray("STRING", count, digest.hexdigest()[:32] if digest is not None else None)
            s.keep(count * 8 + 56, key)
            return [s.string(f"an element of {key}", keep_limit=4096) for _ in range(count)]
        raise GGUFError(f"corrupt GGUF: unknown element type {elem_type} in array {key}")
    raise GGUFError(f"corrupt GGUF: unknown value type {value_type} for key {key}")


MIN_HEADER_BYTES = 24  # magic, version, tensor count, metadata count: every GGUF has at least these


def _detect_order(head: bytes, size: int) -> tuple[str, int]:
    if head[:4] != GGUF_MAGIC or len(head) < 4:
        raise GGUFError("not a GGUF file (invalid magic)")
    if len(head) < 8 or size < MIN_HEADER_BYTES:  # cut off before its counts: an unfinished download
        got = len(head) if len(head) < 8 else size
        raise GGUFError(f"truncated file: only {got} bytes, and a GGUF header alone needs {MIN_HEADER_BYTES}")
    (le,) = struct.unpack_from("<I", head, 4)
    (be,) = struct.unpack_from(">I", head, 4)
    if le in (2, 3):
        return "<", le
    if be in (2, 3):
        return ">", be
    if le == 1:
        raise GGUFError("GGUF version 1 is too old to be loaded by current llama.cpp")
    if le == 0 or min(le, be) > 0xFFFF:  # no GGUF was ever 0, and a later one will not be this high: damaged
        raise GGUFError(f"corrupt GGUF: version field {le} is no GGUF version")
    raise GGUFError(f"unsupported GGUF version {le}")


_TYPE_NAMES: dict[int, str] = {int(t): t.name for t in GGMLQuantizationType}
_MAX_TENSOR_INFO = 8 + MAX_KEY_LENGTH + 4 + 8 * MAX_DIMS + 4 + 8


def _read_tensors(s: _Stream, n_tensors: int) -> TensorSummary:
    """Sum shapes and types of the tensor infos; names are checked (one each) and never kept."""
    summary = TensorSummary()
    names: set[str] = set()
    order = s.order
    u32, u64 = struct.Struct(order + "I").unpack_from, struct.Struct(order + "Q").unpack_from
    by_type = summary.elements_by_type
    for _ in range(n_tensors):
        s._fill(min(_MAX_TENSOR_INFO, s.remaining))  # one tensor info is now in the buffer, or the file ends
        buf, off = s.buf, s.off
        avail = len(buf)
        if off + 12 > avail:
            s.short(12)
        (n,) = u64(buf, off)
        if n > MAX_KEY_LENGTH:
            raise GGUFError("corrupt GGUF: a tensor name is longer than 64 KiB")
        end = off + 8 + n
        if end + 4 > avail:
            s.short(end + 4 - off)
        name = buf[off + 8:end].decode("utf-8", errors="replace")
        (n_dims,) = u32(buf, end)
        if n_dims > MAX_DIMS:
            raise GGUFError(f"corrupt GGUF: tensor {name} claims {n_dims} dimensions")
        dims_end = end + 4 + 8 * n_dims
        if dims_end + 12 > avail:
            s.short(dims_end + 12 - off)
        elements = 1
        for i in range(end + 4, dims_end, 8):
            elements *= u64(buf, i)[0]
        (ttype,) = u32(buf, dims_end)
        s.off = dims_end + 12  # the data offset is never followed
        if elements > MAX_ELEMENTS:
            raise GGUFError(f"corrupt GGUF: tensor {name} claims {elements} elements, more than ggml can count")
        if name in names:  # llama.cpp refuses duplicate names too (and zeros repeat the empty name)
            raise GGUFError(f"corrupt GGUF: duplicate tensor name '{name[:80]}'")
        s.keep(n + 50, "the tensor names")
        names.add(name)
        tname = _TYPE_NAMES.get(ttype) or f"type{ttype}"
        summary.count += 1
        summary.parameters += elements
        by_type[tname] = by_type.get(tname, 0) + elements
        if name == "markov_w1.weight":
            summary.markov_head = True
        if name.startswith("blk."):
            if ".nextn." in name:
                summary.mtp_parameters += elements
                summary.mtp_tensors += 1
            block = name[4:].split(".", 1)[0]
            if block.isdigit() and len(block) <= 4 and int(block) < MAX_BLOCKS:
                per_block = summary.block_parameters
                per_block.extend([0] * (int(block) + 1 - len(per_block)))
                per_block[int(block)] += elements
    return summary


def _check_count(s: _Stream, count: int, each: int, what: str, before: int = 0) -> None:
    """A count is trusted only if that many items of their smallest size fit in the bytes that remain."""
    if s.room(before + count * each, 1):
        return
    if s.file_size > MAX_HEADER_BYTES and before + count * each <= s.file_size - s.pos:
        raise GGUFError(f"corrupt GGUF: {count} {what} would make the header larger than "
                        f"{MAX_HEADER_BYTES >> 20} MiB, far more than any real model's")
    raise GGUFError(f"corrupt GGUF: {count} {what} cannot fit in a {s.file_size}-byte file")


def _open_regular(p: Path) -> BinaryIO:
    """Open ``p`` for reading only if it is a regular file (never block on a FIFO or a device)."""
    st = p.stat()  # follows symlinks: a link to a FIFO is a FIFO
    if not stat.S_ISREG(st.st_mode):
        raise GGUFError(f"not a regular file ({file_kind(st.st_mode)}); a model must be a .gguf file")
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(p, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the stat and the open
            raise GGUFError("not a regular file; a model must be a .gguf file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def read_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """Read one file's GGUF header. Raises :class:`GGUFError` (one line) or ``OSError``."""
    p = Path(path)
    before = p.stat()
    with _open_regular(p) as fh:
        header = read_header_from(fh, os.fstat(fh.fileno()).st_size, p)
    after = p.stat()
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise GGUFError("the file changed while it was being read; rescan when it is complete")
    return header


def read_header_from(fh: BinaryIO, size: int, path: PurePath, prefix: int | None = None) -> GGUFHeader:
    """Read a GGUF header from an open binary stream of ``size`` bytes (a file, or a remote file read
    in HTTP ranges: ``core.hub.remote_header``); ``path`` only names it. Every count is checked against
    ``size``, and only the header's bytes are read (large arrays are skipped by seeking).

    With ``prefix``, nothing past that many bytes is read: a header longer than that comes back with
    ``complete=False``, the metadata read until then and no tensor summary."""
    head = fh.read(8)
    order, version = _detect_order(head, size)
    s = _Stream(fh, size, order, prefix)
    s.base = 8
    n_tensors = s.u64()
    n_kv = s.u64()
    _check_count(s, n_kv, MIN_KV_BYTES, "metadata entries")
    _check_count(s, n_tensors, MIN_TENSOR_BYTES, "tensors", n_kv * MIN_KV_BYTES)
    if n_kv > MAX_KV:
        raise GGUFError(f"corrupt GGUF: {n_kv} metadata entries is more than any real model has (at most {MAX_KV})")
    if n_tensors > MAX_TENSORS:
        raise GGUFError(f"corrupt GGUF: {n_tensors} tensors is more than any real model has (at most {MAX_TENSORS})")
    metadata: dict[str, Any] = {}
    try:
        for _ in range(n_kv):
            key = s.string("a metadata key", keep_limit=MAX_KEY_LENGTH)
            if key is None:
                raise GGUFError("corrupt GGUF: a metadata key is longer than 64 KiB")
            if key in metadata:  # llama.cpp refuses duplicate keys too (and zeros repeat the empty key)
                raise GGUFError(f"corrupt GGUF: duplicate metadata key '{key[:80]}'")
            vtype = s.u32()
            metadata[key] = _read_value(s, vtype, key)
        summary = _read_tensors(s, n_tensors)
    except _PrefixEnd:
        return GGUFHeader(path, version, order, metadata, TensorSummary(), s.pos, complete=False)
    return GGUFHeader(path, version, order, metadata, summary, s.pos)
