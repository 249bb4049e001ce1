"""The user's extra llama-server arguments: split like the platform's shell would, never run by one.

Flags the launcher owns (model, host, port, API key, projector, Hugging Face downloads, router and
web-UI modes) are refused with a message that names the flag, because letting them through would
make the launcher lie about what runs (wrong port, wrong model, a server open to the LAN).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field

OWNED_FLAGS: dict[str, str] = {
    **dict.fromkeys(["-m", "--model"], "the model is chosen in the launcher"),
    **dict.fromkeys(["--host"], "use the LAN switch (it also requires an API key)"),
    **dict.fromkeys(["--port"], "the launcher picks a free port"),
    **dict.fromkeys(["--api-key", "--api-key-file"], "the launcher manages the API key (LAN switch)"),
    **dict.fromkeys(["--mmproj", "-mm", "--mmproj-url", "-mmu", "--no-mmproj", "--mmproj-auto", "--no-mmproj-auto"],
                    "the vision projector is chosen in the launcher"),
    **dict.fromkeys(["-hf", "-hfr", "--hf-repo", "-hff", "--hf-file", "-hft", "--hf-token", "-hfd", "-hfrd",
                     "--hf-repo-draft", "-hfv", "-hfrv", "--hf-repo-v", "-hffv", "--hf-file-v", "-mu",
                     "--model-url", "-dr", "--docker-repo", "--offline"],
                    "the launcher runs models from your disk, not downloads"),
    **dict.fromkeys(["--models-dir", "--models-max", "--models-preset", "--models-autoload",
                     "--no-models-autoload", "--webui", "--no-webui", "--webui-config", "--webui-config-file",
                     "--path", "--api-prefix"],
                    "router and web-UI modes are not supported by the launcher"),
}
SPEC_FLAGS = ("--spec-type", "--spec-default")
_NUMBER = re.compile(r"^-\d|^-\.\d")


class ExtraArgsError(ValueError):
    """One line for the user."""


@dataclass
class ParsedExtraArgs:
    argv: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    has_spec_flags: bool = False
    warnings: list[str] = field(default_factory=list)


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
        elif c in " \t" and not in_quotes:
            if have_token:
                args.append("".join(cur))
                cur, have_token = [], False
        else:
            cur.append(c)
            have_token = True
        i += 1
    if in_quotes:
        raise ExtraArgsError("unbalanced quotes in extra arguments")
    if have_token:
        args.append("".join(cur))
    return args


def split_args(text: str, windows: bool | None = None) -> list[str]:
    windows = sys.platform == "win32" if windows is None else windows
    if windows:
        return split_windows(text)
    try:
        return shlex.split(text, posix=True)
    except ValueError as exc:
        raise ExtraArgsError(f"unbalanced quotes in extra arguments ({exc})") from exc


def flag_key(token: str) -> str | None:
    """The flag a token names (``--k=v`` -> ``--k``), or None for values and negative numbers."""
    if not token.startswith("-") or token == "-" or _NUMBER.match(token):
        return None
    return token.split("=", 1)[0]


def parse_extra_args(text: str, known_flags: set[str] | None = None, removed_flags: set[str] | None = None,
                     windows: bool | None = None) -> ParsedExtraArgs:
    """Split and check the user's flags. Raises :class:`ExtraArgsError` naming the first bad flag."""
    argv = split_args(text or "", windows)
    result = ParsedExtraArgs(argv=argv)
    for token in argv:
        key = flag_key(token)
        if key is None:
            continue
        if key in OWNED_FLAGS:
            raise ExtraArgsError(f"{key} is not allowed in extra arguments: {OWNED_FLAGS[key]}")
        if removed_flags and key in removed_flags:
            raise ExtraArgsError(f"{key} has been removed from this llama-server; see its --help for the new name")
        if known_flags is not None and key not in known_flags:
            raise ExtraArgsError(f"this llama-server does not know {key}")
        result.flags.append(key)
        if key in SPEC_FLAGS:
            result.has_spec_flags = True
    return result
