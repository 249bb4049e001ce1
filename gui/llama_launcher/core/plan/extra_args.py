"""The user's extra llama-server arguments: split like the platform's shell would, never run by one.

What may pass is read from the binary's own ``--help`` (see ``probe._policy``): options the
launcher owns (model, host, port, API key, projector, downloads, presets that download and move
the port, router and web-UI modes) and options that make llama-server print something and exit
(``--help``, ``--version``, ``--list-devices``, ...) are refused in every alias; options that give the API key's
holder more than chat (server-side tools, agents, folders, settings) are refused with LAN on and
warned about on localhost. Values are checked against the option's placeholder so a typo reads
"--temp needs a number, not 'hot'" here rather than ``stof`` from the server.
"""

from __future__ import annotations

import difflib
import re
import shlex
import sys
from dataclasses import dataclass, field

from llama_launcher.core.llama_server.probe import FIXED_DENIED, LAN_RISKY_OPTIONS, Capabilities
from llama_launcher.core.state.errors import UserFacing

_NUMBER = re.compile(r"^-\d|^-\.\d")
_NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class ExtraArgsError(UserFacing, ValueError):
    """One line for the user, in plain words."""


@dataclass
class ParsedExtraArgs:
    argv: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # option -> its value (the last one wins)
    spec_types: list[str] | None = None  # what the user's --spec-type / --spec-default engage
    warnings: list[str] = field(default_factory=list)

    @property
    def has_spec_flags(self) -> bool:
        return self.spec_types is not None

    def value(self, *aliases: str) -> str | None:
        """The value the user gave under any of ``aliases`` (the last one on the line wins)."""
        best: tuple[int, str] | None = None
        for a in aliases:
            if a in self.values:
                pos = max(i for i, f in enumerate(self.flags) if f == a)
                if best is None or pos > best[0]:
                    best = (pos, self.values[a])
        return best[1] if best else None


def split_windows(text: str) -> list[str]:
    """Split like CommandLineToArgvW: double quotes group, backslashes escape only before quotes."""
    args: list[str] = []
    cur: list[str] = []
    in_quotes = False
    have_token = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            j = i
            while j < n and text[j] == "\\":
                j += 1
            count = j - i
            if j < n and text[j] == '"':
                cur.append("\\" * (count // 2))
                if count % 2:
                    cur.append('"')
                    i = j + 1
                else:
                    i = j
            else:
                cur.append("\\" * count)
                i = j
            have_token = True
            continue
        if c == '"':
            in_quotes = not in_quotes
            have_token = True
        elif c in " \t\r\n" and not in_quotes:
            if have_token:
                args.append("".join(cur))
                cur, have_token = [], False
        else:
            cur.append(c)
            have_token = True
        i += 1
    if in_quotes:
        raise ExtraArgsError('a quote in the extra arguments is not closed: add the missing "')
    if have_token:
        args.append("".join(cur))
    return args


def split_args(text: str, windows: bool | None = None) -> list[str]:
    windows = sys.platform == "win32" if windows is None else windows
    bad = _CONTROL.search(text or "")
    if bad:
        what = "a NUL character" if bad.group() == "\x00" else f"a control character (code {ord(bad.group())})"
        raise ExtraArgsError(f"the extra arguments contain {what}; remove it")
    if windows:
        return split_windows(text)
    try:
        return shlex.split(text, posix=True)
    except ValueError as exc:
        raise ExtraArgsError("a quote in the extra arguments is not closed: add the missing \" or '") from exc


def flag_key(token: str) -> str | None:
    """The flag a token names (``--k=v`` -> ``--k``), or None for values and negative numbers."""
    if not token.startswith("-") or token == "-" or _NUMBER.match(token):
        return None
    return token.split("=", 1)[0]


def did_you_mean(flag: str, known: list[str]) -> str:
    close = difflib.get_close_matches(flag, known, n=1, cutoff=0.75)
    return f" — did you mean {close[0]}?" if close else ""


def parse_extra_args(text: str, caps: Capabilities | None = None, lan: bool = False,
                     windows: bool | None = None) -> ParsedExtraArgs:
    """Split and check the user's flags against this binary. Raises :class:`ExtraArgsError`."""
    argv = split_args(text or "", windows)
    result = ParsedExtraArgs(argv=argv)
    denied = caps.denied if caps is not None and caps.denied else FIXED_DENIED
    risky = caps.lan_risky if caps is not None and caps.lan_risky else LAN_RISKY_OPTIONS
    known = set(caps.real_options) if caps is not None and caps.real_options else None
    removed = caps.removed_hints if caps is not None else {}
    takes_value = set(caps.takes_value) if caps is not None else set()
    numeric = set(caps.numeric_options) if caps is not None else set()
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        key = flag_key(token)
        if token in ("-", "--"):
            raise ExtraArgsError(f"a lone {token!r} is not an option: remove it or finish the flag's name")
        if key is None:
            if i == 1:  # nothing before it that it could be the value of
                raise ExtraArgsError(f"{token!r} is not an option: extra arguments start with a flag, e.g. --temp 0.7")
            continue
        if key in denied:
            raise ExtraArgsError(f"{key} cannot be used in extra arguments: {denied[key]}")
        if key in removed:
            hint = removed[key]
            raise ExtraArgsError(f"{key} was removed from this llama-server" + (f": {hint}" if hint else ""))
        if known is not None and key not in known:
            raise ExtraArgsError(f"this llama-server has no option {key}" + did_you_mean(key, sorted(known)))
        if key in risky:
            if lan:
                raise ExtraArgsError(f"{key} is refused while LAN access is on: {risky[key]}")
            result.warnings.append(f"{key}: {risky[key]}; it is allowed only because the server listens on "
                                   "127.0.0.1 (turning LAN on refuses it)")
        value: str | None = None
        if "=" in token:
            value = token.split("=", 1)[1]
        elif key in takes_value:
            if i >= len(argv) or flag_key(argv[i]) is not None:
                raise ExtraArgsError(f"{key} needs a value")
            value = argv[i]
            i += 1
        if value is not None:
            if key in numeric and not _NUMERIC.match(value):
                raise ExtraArgsError(f"{key} needs a number, not {value!r}")
            result.values[key] = value
        result.flags.append(key)
        if key == "--spec-type":
            result.spec_types = [t.strip() for t in (value or "").split(",") if t.strip()]
        elif key == "--spec-default":
            result.spec_types = (result.spec_types or []) + ["ngram-mod"]
    return result
