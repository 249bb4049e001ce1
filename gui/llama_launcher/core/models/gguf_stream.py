"""The bounded byte stream the GGUF header reader walks: sequential, buffered, never mapped.

Every read is checked against what remains in the file, the header's absolute cap and the
caller's prefix (a remote header is read from its first bytes only); values kept in memory share
one budget; a run of zeros (the hole of a sparse file) is skipped at memory speed. Any breach is
one :class:`GGUFError` line.
"""

from __future__ import annotations

import os
import struct
from typing import Any, BinaryIO

from llama_launcher.core.state.errors import UserFacing
from llama_launcher.core.state.safe_text import safe_text

_ZERO8 = bytes(8)
_ZERO4K = bytes(4096)
MAX_ERROR_CHARS = 300

CHUNK = 1 << 20


MAX_KEPT_STRING = 1 << 20  # a chat template is ~10 KB; keep up to 1 MiB, skip longer ones


MAX_KEY_LENGTH = 1 << 16


# Absolute caps (sizes can be faked by sparse files). Real models: ~50 keys, ~1,100 tensors
# (DeepSeek-V3, Llama 3.1 405B), a 262k-token vocabulary, headers under 20 MB.
MAX_HEADER_BYTES = 256 * 1024 * 1024


MAX_KEPT_BYTES = 16 * 1024 * 1024  # strings and small arrays kept in memory, all keys together


class GGUFError(UserFacing):
    """The file is not a readable GGUF; the message is one line meant for the user."""

    def __init__(self, message: str) -> None:
        # key names come from the file: keep the message printable, one line and short
        super().__init__(safe_text(message, max_len=MAX_ERROR_CHARS))


class _PrefixEnd(Exception):
    """The next bytes lie past the prefix the caller allowed (not an error of the file)."""


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
