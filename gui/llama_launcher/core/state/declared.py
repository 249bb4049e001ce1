"""A user setting declared once: its type, default, range or choices, its words, and its CLI flag.

The loader of the settings file, the command line and the window's controls all read the same
declaration, so a range cannot be 1..16 in one place and 0..999 in another, and a value the
window would never offer cannot reach the planner from a hand-edited file. The planner trusts
what :func:`problems` let through.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    key: str  # the attribute in the settings dataclass
    label: str
    tip: str
    kind: type = int  # int, float, str or bool
    default: Any = None  # None: not set (the planner's or llama-server's own choice, said by ``unset``)
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    unset: str = ""  # what "not set" does, in words for the window ("Auto (largest that fits)")
    cli: str = ""  # the command line's option ("--ctx"); empty: none
    cli_alias: str = ""  # a short alias ("-t")

    @property
    def range_text(self) -> str:
        if self.choices:
            return ", ".join(self.choices)
        if self.lo is not None and self.hi is not None:
            return f"{_num(self.lo)}..{_num(self.hi)}"
        return ""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` may not be used (one line), or None. ``None`` itself is always allowed."""
        if value is None:
            return None
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    (self.kind is int and not isinstance(value, int)) or not math.isfinite(value):
                return f"{self.label} must be a {'whole ' if self.kind is int else ''}number (got {value!r})"
            if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
                return f"{self.label} must be between {_num(self.lo)} and {_num(self.hi)} (got {_num(value)})"
        elif self.kind is str and self.choices and value not in self.choices:
            return f"{self.label} must be one of {self.range_text} (got {value!r})"
        elif not isinstance(value, self.kind):
            return f"{self.label} must be {self.kind.__name__} (got {value!r})"
        return None

    def parse(self, text: str) -> Any:
        """An argparse type: the text as this setting's value, or one clear line."""
        try:
            value: Any = self.kind(text) if self.kind is not bool else text.lower() in ("1", "true", "yes", "on")
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if self.kind is int else ''}number"
                                             + (f" ({self.range_text})" if self.range_text else "")) from None
        why = self.problem(value)
        if why:
            raise argparse.ArgumentTypeError(why)
        return value


def _num(v: float | None) -> str:
    if v is None:
        return "?"
    return f"{int(v)}" if float(v).is_integer() else f"{v:g}"


def problems(obj: Any, declared: Iterable[Setting], where: str = "") -> list[str]:
    """Check ``obj``'s declared fields; a field that may not be used is set back to its default.

    Returns one line per field that was set back (``where`` names the file or entry)."""
    out = []
    for s in declared:
        why = s.problem(getattr(obj, s.key))
        if why:
            setattr(obj, s.key, s.default)
            out.append(f"{where}: {why}; the default is used" if where else why)
    return out
