"""What the CLI prints: one-line errors, JSON, tables, and text from files made safe for a terminal."""

from __future__ import annotations

import json
import sys
from typing import Any

from llama_launcher.core.state.safe_text import safe_text
from llama_launcher.core.state.state_files import drain_notices
from llama_launcher.core.state.units import file_size


class UsageError(Exception):
    """Bad input: exit 2 with this one line."""


class RunError(Exception):
    """A failure at run time: exit 1 with this one line."""


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def say(text: object, file: Any = None, flush: bool = False) -> None:
    """Print one line of text that may come from a file or a process: no escape codes, no newlines."""
    print(safe_text(text), file=file, flush=flush)


def print_notices() -> None:
    """State files that could not be read or saved, once each (``state_files`` collects them)."""
    for text in drain_notices():
        say(f"note: {text}", file=sys.stderr, flush=True)


def fmt_size(n: int) -> str:
    """A file's size, as the window writes it (core/state/units.py)."""
    return file_size(n)


def table(rows: list[list[str]], headers: list[str]) -> str:
    rows = [[safe_text(c) for c in r] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)
