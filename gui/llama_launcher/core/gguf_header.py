"""A streaming reader for GGUF headers: key/values and tensor infos, never tensor data.

``gguf.GGUFReader`` maps the file and decodes every array (the tokenizer alone holds hundreds
of thousands of strings), which took 22 s for the 253 MB demo model on a busy 2-core machine.
A catalog only needs the metadata, so this reader walks the header in bounded chunks, keeps
small values, skips large arrays by their lengths, and validates every count and length
against the bytes that remain in the file before trusting it. Malformed input of any kind
becomes a :class:`GGUFError` with a one-line message; memory stays bounded per file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from llama_launcher.core.gguf_enums import GGMLQuantizationType, GGUFValueType

GGUF_MAGIC = b"GGUF"
CHUNK = 1 << 20
MAX_KEPT_STRING = 1 << 20  # a chat template is ~10 KB; keep up to 1 MiB, skip longer ones
MAX_KEPT_ARRAY = 4096  # per-layer arrays (sliding window pattern, head counts) are small
MAX_KEY_LENGTH = 1 << 16
MAX_DIMS = 8
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


class GGUFError(Exception):
    """The file is not a readable GGUF; the message is one line meant for the user."""

    def __init__(self, message: str) -> None:
        # key names come from the file: keep the message printable, one line and short
        clean = "".join(ch if ch.isprintable() else "?" for ch in message)
        super().__init__(clean if len(clean) <= 300 else clean[:297] + "...")


@dataclass(frozen=True)
class SkippedArray:
    """A large array that was skipped rather than decoded (e.g. the tokenizer's tokens)."""

    element_type: str
    count: int


@dataclass
class TensorSummary:
    """What the catalog needs from the tensor infos, aggregated while streaming."""

    count: int = 0
    parameters: int = 0
    mtp_parameters: int = 0  # tensors named blk.N.nextn.*
    mtp_tensors: int = 0
    block_parameters: list[int] = field(default_factory=list)  # per blk.N (N < MAX_BLOCKS): MTP blocks load only with MTP
    elements_by_type: dict[str, int] = field(default_factory=dict)


@dataclass
class GGUFHeader:
    path: Path
    version: int
    byte_order: str  # "<" or ">"
    metadata: dict[str, Any]
    tensors: TensorSummary
    header_bytes: int


class _Stream:
    """Buffered sequential reads with explicit bounds; the file is never mapped."""

    def __init__(self, fh: BinaryIO, size: int, byte_order: str = "<") -> None:
        self.fh = fh
        self.size = size
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
        more = self.fh.read(want)
        self.buf = keep + more
        if len(self.buf) < n:
            raise GGUFError(f"truncated file: the header ends unexpectedly at byte {self.base + len(self.buf)}")

    def read(self, n: int) -> bytes:
        if n > self.remaining:
            raise GGUFError(f"truncated file: needs {n} bytes at byte {self.pos}, only {self.remaining} remain")
        self._fill(n)
        out = self.buf[self.off : self.off + n]
        self.off += n
        return out

    def skip(self, n: int) -> None:
        if n > self.remaining:
            raise GGUFError(f"truncated file: needs {n} bytes at byte {self.pos}, only {self.remaining} remain")
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
            raise GGUFError(f"truncated or corrupt GGUF: {what} claims {n} bytes but only {self.remaining} remain")
        return n

    def string(self, what: str, keep_limit: int = MAX_KEPT_STRING) -> str | None:
        n = self.string_length(what)
        if n > keep_limit:
            self.skip(n)
            return None
        return self.read(n).decode("utf-8", errors="replace")

    def skip_strings(self, count: int, what: str) -> None:
        """Skip ``count`` length-prefixed strings without decoding them (tokenizer arrays)."""
        unpack = self._u64.unpack_from
        left = count
        while left:
            # fast path: walk the strings that lie wholly inside the current buffer
            buf, off, end = self.buf, self.off, len(self.buf) - 8
            while left and off <= end:
                (n,) = unpack(buf, off)
                nxt = off + 8 + n
                if nxt > len(buf):
                    break
                off = nxt
                left -= 1
            self.off = off
            if not left:
                return
            # slow path: one string that crosses the buffer's end
            n = self.u64()
            if n > self.remaining:
                raise GGUFError(f"truncated or corrupt GGUF: a string in {what} claims {n} bytes but only {self.remaining} remain")
            self.skip(n)
            left -= 1


def _type_name(value_type: int) -> str:
    try:
        return GGUFValueType(value_type).name
    except ValueError:
        return str(value_type)


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
            if count > s.remaining // size:
                raise GGUFError(f"truncated or corrupt GGUF: array {key} claims {count} elements but only {s.remaining} bytes remain")
            if count > MAX_KEPT_ARRAY:
                s.skip(count * size)
                return SkippedArray(_type_name(elem_type), count)
            raw = s.read(count * size)
            return list(struct.unpack(s.order + efmt * count, raw))
        if elem_type == GGUFValueType.STRING:
            if count > s.remaining // 8:
                raise GGUFError(f"truncated or corrupt GGUF: array {key} claims {count} strings but only {s.remaining} bytes remain")
            if count > MAX_KEPT_ARRAY:
                s.skip_strings(count, key)
                return SkippedArray("STRING", count)
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


def read_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """Read one file's GGUF header. Raises :class:`GGUFError` (one line) or ``OSError``."""
    p = Path(path)
    before = p.stat()
    with open(p, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
        order, version = _detect_order(head)
        s = _Stream(fh, size, order)
        s.base = 8
        n_tensors = s.u64()
        n_kv = s.u64()
        # each key/value needs at least 13 bytes, each tensor info at least 28
        if n_kv > s.remaining // 13:
            raise GGUFError(f"corrupt GGUF: {n_kv} metadata entries cannot fit in a {size}-byte file")
        if n_tensors > s.remaining // 28:
            raise GGUFError(f"corrupt GGUF: {n_tensors} tensors cannot fit in a {size}-byte file")
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = s.string("a metadata key", keep_limit=MAX_KEY_LENGTH)
            if key is None:
                raise GGUFError("corrupt GGUF: a metadata key is longer than 64 KiB")
            vtype = s.u32()
            metadata[key] = _read_value(s, vtype, key)
        summary = TensorSummary()
        for _ in range(n_tensors):
            name = s.string("a tensor name", keep_limit=MAX_KEY_LENGTH)
            if name is None:
                raise GGUFError("corrupt GGUF: a tensor name is longer than 64 KiB")
            n_dims = s.u32()
            if n_dims > MAX_DIMS:
                raise GGUFError(f"corrupt GGUF: tensor {name} claims {n_dims} dimensions")
            elements = 1
            for _ in range(n_dims):
                elements *= s.u64()
            ttype = s.u32()
            s.u64()  # data offset: never followed
            try:
                tname = GGMLQuantizationType(ttype).name
            except ValueError:
                tname = f"type{ttype}"
            summary.count += 1
            summary.parameters += elements
            summary.elements_by_type[tname] = summary.elements_by_type.get(tname, 0) + elements
            if ".nextn." in name and name.startswith("blk."):
                summary.mtp_parameters += elements
                summary.mtp_tensors += 1
            if name.startswith("blk."):
                block = name[4:].split(".", 1)[0]
                if block.isdigit() and len(block) <= 4 and int(block) < MAX_BLOCKS:
                    per_block = summary.block_parameters
                    per_block.extend([0] * (int(block) + 1 - len(per_block)))
                    per_block[int(block)] += elements
        header_bytes = s.pos
    after = p.stat()
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise GGUFError("the file changed while it was being read; rescan when it is complete")
    return GGUFHeader(p, version, order, metadata, summary, header_bytes)
