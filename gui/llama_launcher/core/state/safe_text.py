"""Text from files and processes made safe to print on a terminal: one line, no control codes.

A model's ``general.name``, a file name or a line of server output is chosen by whoever made the
file or the binary. Printed raw, an escape sequence can recolour or clear the terminal, retitle
the window or move the cursor over earlier output, a newline can forge a line of the launcher's
own output, a right-to-left override can reverse what follows, and an undecodable file name
(a lone surrogate) makes ``print`` raise. ``safe_text`` drops complete ANSI escape sequences and
shows every other control character as a visible escape (``\\n``, ``\\x07``, ``\\u202e``).
"""

from __future__ import annotations

import re
import unicodedata

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and two-character escapes (ESC + one char)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
# bidirectional overrides and isolates: they reorder the characters that follow them
_BIDI = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F, 0x061C}
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": " "}


def _visible(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:  # a byte that was not UTF-8 (surrogateescape): show the byte
        return f"\\x{code - 0xDC00:02x}" if code >= 0xDC80 else f"\\u{code:04x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    code = ord(ch)
    if code < 0x20 or 0x7F <= code < 0xA0 or code in _BIDI or 0xD800 <= code <= 0xDFFF:
        return True
    return unicodedata.category(ch) in ("Zl", "Zp")  # U+2028/U+2029 break lines too


def safe_text(value: object, max_len: int | None = None) -> str:
    """``value`` as one printable line; ``max_len`` cuts it (with an ellipsis) after that many characters."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        out = text
    else:
        text = _ANSI.sub("", text)
        out = "".join(_visible(ch) if _unsafe(ch) else ch for ch in text)
    if max_len is not None and len(out) > max_len:
        out = out[: max(max_len - 1, 0)] + "…"
    return out


def short_repr(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: how a wrong value from a file is quoted in a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
