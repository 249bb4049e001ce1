"""An argv as one line of text: what the preview shows, ``plan`` prints and Copy command copies.

The command the launcher runs names files chosen by whoever made them. A terminal escape code in a
file name, printed raw, can recolour or clear the terminal, and pasted into one it can end
bracketed paste and run what follows; stripped (as ``safe_text`` treats text from files), it leaves
a command that names a file that does not exist. So each argument is quoted for the platform's
shell, such that pasting the line runs exactly this argv, and every character that does not print
is written as an escape:

- POSIX (bash and zsh, the shells of macOS and Linux): a plain word as it is, anything else in
  single quotes, and an argument holding a character that does not print (a control code, a
  bidirectional override, a zero-width character, a byte that is not UTF-8) in ANSI-C quotes,
  ``$'evil\\x1b[31m.gguf'``. That line is both exact and visible: shown and copied alike.
- Windows (cmd.exe; and any program, which splits its own command line by the
  ``CommandLineToArgvW`` rules): double quotes where cmd.exe or the splitting needs them, a quote
  inside written ``\\"`` with the backslashes before it doubled. Windows file names cannot hold
  control codes, but cmd.exe has no way to write a character that does not print (a bidi override
  is legal in a name): the copied line carries the character itself, the shown line its escape
  (``\\u202e``). cmd.exe still expands a ``%NAME%`` that names a variable, even inside quotes, and
  PowerShell wants ``&`` before a quoted program; the launcher itself never runs a shell.
"""

from __future__ import annotations

import re
import sys

_PLAIN_POSIX = re.compile(r"[\w@%+=:,./-]+", re.ASCII)  # the words shlex.quote leaves as they are
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", "'": "\\'"}
_CMD_SPECIAL = frozenset(' \t"&|<>^()%!,;=')


def _escape(ch: str) -> str:
    """One character as bash's and zsh's ``$'...'`` writes it (unchanged when it prints)."""
    named = _NAMED.get(ch)
    if named is not None:
        return named
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte of the file name that was not UTF-8 (surrogateescape): that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def posix_word(arg: str) -> str:
    if _PLAIN_POSIX.fullmatch(arg):
        return arg
    if arg.isprintable():
        return "'" + arg.replace("'", "'\"'\"'") + "'"  # as shlex.quote: '' for an empty argument
    return "$'" + "".join(_escape(ch) for ch in arg) + "'"


def windows_word(arg: str) -> str:
    """``arg`` as CommandLineToArgvW reads it back, quoted wherever cmd.exe would split or act on it."""
    if arg and not any(ch in _CMD_SPECIAL or ch.isspace() for ch in arg):
        return arg
    out, slashes = ['"'], 0
    for ch in arg:
        if ch == "\\":
            slashes += 1
            continue
        out.append("\\" * (2 * slashes + 1) + '"' if ch == '"' else "\\" * slashes + ch)
        slashes = 0
    out.append("\\" * (2 * slashes) + '"')  # backslashes before the closing quote are doubled
    return "".join(out)


def command_line(argv: list[str], windows: bool | None = None) -> str:
    """The line to copy: pasted into the platform's shell, it runs exactly ``argv``."""
    windows = sys.platform == "win32" if windows is None else windows
    return " ".join((windows_word if windows else posix_word)(a) for a in argv)


def shown_command_line(argv: list[str], windows: bool | None = None) -> str:
    """The line to show: ``command_line`` with every character visible (the two differ only on
    Windows, where a character that does not print has no escape cmd.exe understands)."""
    windows = sys.platform == "win32" if windows is None else windows
    line = command_line(argv, windows)
    if not windows or line.isprintable():
        return line
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in line)
