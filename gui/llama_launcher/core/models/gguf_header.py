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
from llama_launcher.core.state.errors import UserFacing
from llama_launcher.core.state.safe_text import safe_text

GGUF_MAGIC = b"GGUF"
CHUNK = 1 << 20
MAX_KEPT_STRING = 1 << 20  # a chat template is ~10 KB; keep up to 1 MiB, skip longer ones
MAX_KEPT_ARRAY = 4096  # per-layer arrays (sliding window pattern, head counts) are small
MAX_KEY_LENGTH = 1 << 16
MAX_DIMS = 8
TOKENS_KEY = "tokenizer.ggml.tokens"
# Absolute caps (sizes can be faked by sparse files). Real models: ~50 keys, ~1,100 tensors
# (DeepSeek-V3, Llama 3.1 405B), a 262k-token vocabulary, headers under 20 MB.
MAX_HEADER_BYTES = 256 * 1024 * 1024
MAX_KV = 1 << 14
MAX_TENSORS = 1 << 16
MAX_KEPT_BYTES = 16 * 1024 * 1024  # strings and small arrays kept in memory, all keys together
MAX_ELEMENTS = (1 << 63) - 1  # ggml counts elements in an int64
MIN_KV_BYTES = 8 + 4 + 1  # empty key, value type, one-byte value
MIN_TENSOR_BYTES = 8 + 4 + 8 + 4 + 8  # empty name, n_dims, one dimension, type, offset
_ZERO8 = bytes(8)
_ZERO4K = bytes(4096)
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


MAX_ERROR_CHARS = 300


class GGUFError(UserFacing):
    """The file is not a readable GGUF; the message is one line meant for the user."""

    def __init__(self, message: str) -> None:
        # key names come from the file: keep the message printable, one line and short
        super().__init__(safe_text(message, max_len=MAX_ERROR_CHARS))


class _PrefixEnd(Exception):
    """The next bytes lie past the prefix the caller allowed (not an error of the file)."""


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


class _Stream:
    """Buffered sequential reads with explicit bounds; the file is never mapped."""

    def __init__(self, fh: BinaryIO, size: int, byte_order: str = "<", prefix: int | None = None) -> None:
        self.fh = fh
        self.file_size = size
        self.size = min(size, MAX_HEADER_BYTES)  # nothing past the cap is ever read
        self.prefix = prefix if prefix is not None and prefix < self.size else None  # nor past the caller's prefix
        self.kept = 0  # bytes of values kept in memory so far (MAX_KEPT_BYTES)
        self.order = byte_order
        self.buf = b""
        self.off = 0  # offset into buf
        self.base = 0  # file offset of buf[0]
        self._u64 = struct.Struct(byte_order + "Q")
        self._u32 = struct.Struct(byte_order + "I")

    @property
    def pos(self) -> int:
        return self.base + self.off

    @property
    def remaining(self) -> int:
        return self.size - self.pos

    def _fill(self, n: int) -> None:
        if len(self.buf) - self.off >= n:
            return
        keep = self.buf[self.off :]
        self.base += self.off
        self.off = 0
        want = max(n - len(keep), CHUNK)
        end = self.size
        if self.prefix is not None:
            if self.base + n > self.prefix and self.base + n <= self.size:
                raise _PrefixEnd()
            end = self.prefix
        more = self.fh.read(min(want, max(end - self.base - len(keep), 0)))
        self.buf = keep + more
        if len(self.buf) < n:
            self.short(n)

    def short(self, n: int) -> None:
        """Raise the error for needing ``n`` more bytes than remain: the file's end, or the header cap."""
        if self.file_size > MAX_HEADER_BYTES and self.pos + n > MAX_HEADER_BYTES:
            raise GGUFError(f"corrupt GGUF: the header runs past {MAX_HEADER_BYTES >> 20} MiB, "
                            "far more than any real model's; it was not read further")
        raise GGUFError(f"truncated file: needs {n} bytes at byte {self.pos}, only {self.remaining} remain")

    def room(self, count: int, each: int) -> bool:
        """Whether ``count`` items of at least ``each`` bytes fit in what remains."""
        return count <= self.remaining // each

    def keep(self, n: int, what: str) -> None:
        """Charge ``n`` bytes to the budget of kept values (many huge values would fill memory)."""
        self.kept += n
        if self.kept > MAX_KEPT_BYTES:
            raise GGUFError(f"corrupt GGUF: the metadata values up to {what} need more than "
                            f"{MAX_KEPT_BYTES >> 20} MiB of memory, far more than any real model's")

    def hole_ahead(self) -> int:
        """Zero bytes from here on that lie in a hole of a sparse file, found without reading them.

        The bytes still buffered must all be zeros; the hole is asked of the file system
        (``SEEK_DATA``), and 0 comes back where it cannot say.
        """
        seek_data = getattr(os, "SEEK_DATA", None)
        if seek_data is None:
            return 0
        end = self.base + len(self.buf)  # the first byte not yet read
        try:
            fd = self.fh.fileno()
            here = os.lseek(fd, 0, os.SEEK_CUR)
            try:
                data = os.lseek(fd, end, seek_data)
            except OSError:  # ENXIO: no data after ``end`` (the file ends in a hole)
                data = self.file_size
            finally:
                os.lseek(fd, here, os.SEEK_SET)  # leave the buffered reader's offset as it was
        except (OSError, ValueError):
            return 0
        return max(min(data, self.size) - self.pos, 0)

    def read(self, n: int) -> bytes:
        if n > self.remaining:
            self.short(n)
        self._fill(n)
        out = self.buf[self.off : self.off + n]
        self.off += n
        return out

    def skip(self, n: int) -> None:
        if n > self.remaining:
            self.short(n)
        avail = len(self.buf) - self.off
        if n <= avail:
            self.off += n
            return
        target = self.pos + n
        self.fh.seek(target)
        self.base, self.buf, self.off = target, b"", 0

    def u32(self) -> int:
        self._fill(4)
        (v,) = self._u32.unpack_from(self.buf, self.off)
        self.off += 4
        return int(v)

    def u64(self) -> int:
        self._fill(8)
        (v,) = self._u64.unpack_from(self.buf, self.off)
        self.off += 8
        return int(v)

    def scalar(self, fmt: str) -> Any:
        st = struct.Struct(self.order + fmt)
        self._fill(st.size)
        (v,) = st.unpack_from(self.buf, self.off)
        self.off += st.size
        return v

    def string_length(self, what: str) -> int:
        n = self.u64()
        if n > self.remaining:
            if self.file_size > MAX_HEADER_BYTES and n <= self.file_size - self.pos:
                self.short(n)
            raise GGUFError(f"truncated or corrupt GGUF: {what} claims {n} bytes but only {self.remaining} remain")
        return n

    def string(self, what: str, keep_limit: int = MAX_KEPT_STRING) -> str | None:
        n = self.string_length(what)
        if n > keep_limit:
            self.skip(n)
            return None
        self.keep(n + 50, what)
        return self.read(n).decode("utf-8", errors="replace")

    def skip_strings(self, count: int, what: str, digest: Any = None) -> None:
        """Skip ``count`` length-prefixed strings without decoding them (tokenizer arrays).

        With ``digest`` (a hashlib object), the skipped bytes are fed to it: the token list's hash
        tells whether two models share a tokenizer without keeping a single token."""
        unpack = self._u64.unpack_from
        left = count
        while left:
            # fast path: walk the strings that lie wholly inside the current buffer
            buf, off, end = self.buf, self.off, len(self.buf) - 8
            start = off
            while left and off <= end:
                if buf[off:off + 8] == _ZERO8:
                    off, left = _skip_zero_words(buf, off, left)
                    continue
                (n,) = unpack(buf, off)
                nxt = off + 8 + n
                if nxt > len(buf):
                    break
                off = nxt
                left -= 1
            if digest is not None:
                digest.update(buf[start:off])
            self.off = off
            if not left:
                return
            if buf[off:] == bytes(len(buf) - off):
                # the buffer ends in zeros: if a hole of a sparse file follows, skip it without reading
                k = min(left, self.hole_ahead() // 8)
                if k:
                    if digest is not None:  # k empty strings, said in a few bytes rather than hashed one by one
                        digest.update(b"\x00hole" + k.to_bytes(8, "little"))
                    self.skip(8 * k)
                    left -= k
                    continue
            # slow path: one string that crosses the buffer's end
            n = self.u64()
            if n > self.remaining:
                raise GGUFError(f"truncated or corrupt GGUF: a string in {what} claims {n} bytes but only {self.remaining} remain")
            if digest is not None:
                digest.update(n.to_bytes(8, "little"))
                while n:  # in bounded pieces: a hostile length must not become one huge read
                    piece = min(n, CHUNK)
                    digest.update(self.read(piece))
                    n -= piece
            else:
                self.skip(n)
            left -= 1


def _skip_zero_words(buf: bytes, off: int, left: int) -> tuple[int, int]:
    """Skip up to ``left`` empty strings (8 zero bytes each) at ``buf[off:]``, comparing whole blocks."""
    i, size = off + 8, len(buf)
    while i + 4096 <= size and buf[i:i + 4096] == _ZERO4K:
        i += 4096
    while i + 8 <= size and buf[i:i + 8] == _ZERO8:
        i += 8
    k = min(left, (i - off) // 8)
    return off + 8 * k, left - k


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


def _detect_order(head: bytes) -> tuple[str, int]:
    if head[:4] != GGUF_MAGIC or len(head) < 4:
        raise GGUFError("not a GGUF file (invalid magic)")
    if len(head) < 8:
        raise GGUFError(f"truncated file: only {len(head)} bytes")
    (le,) = struct.unpack_from("<I", head, 4)
    (be,) = struct.unpack_from(">I", head, 4)
    if le in (2, 3):
        return "<", le
    if be in (2, 3):
        return ">", be
    if le == 1:
        raise GGUFError("GGUF version 1 is too old to be loaded by current llama.cpp")
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
    order, version = _detect_order(head)
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
