"""Dataclasses rebuilt from JSON state files only when every field has the type it was saved with.

A cache file may be edited or damaged: a name that is a number, or a list that is a string, would
otherwise pass ``cls(**data)`` and fail much later, far from the file, in the table or the planner.
The checks come from the dataclass's own annotations, so a new field cannot be forgotten.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import fields
from typing import Any

Check = Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _check_for(annotation: Any) -> Check:
    """A type check for one annotation (the shapes the launcher's dataclasses use)."""
    if annotation is str:
        return lambda v: isinstance(v, str)
    if annotation is int:
        return _is_int
    if annotation is bool:
        return lambda v: isinstance(v, bool)
    if annotation is float:
        return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if annotation == (str | None):
        return lambda v: v is None or isinstance(v, str)
    if annotation == (int | None):
        return lambda v: v is None or _is_int(v)
    if annotation == list[str]:
        return lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)
    if annotation == dict[str, Any]:  # flat JSON: scalars or lists of scalars
        return lambda v: isinstance(v, dict) and all(
            isinstance(k, str) and (_is_scalar(x) or (isinstance(x, list) and all(_is_scalar(y) for y in x)))
            for k, x in v.items())
    raise TypeError(f"no check for {annotation!r}")  # pragma: no cover - a new field type needs a check


def field_checks(cls: type) -> dict[str, Check]:
    hints = typing.get_type_hints(cls)
    return {f.name: _check_for(hints[f.name]) for f in fields(cls)}


def checked_fields(checks: dict[str, Check], data: Any, what: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The known fields of ``data``, each of its declared type; ``ValueError`` (one line) otherwise."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be an object, not {type(data).__name__}")
    known = {k: v for k, v in data.items() if k in checks}
    for key in required:
        if key not in known:
            raise ValueError(f"{what} lacks {key!r}")
    for key, value in known.items():
        if not checks[key](value):
            raise ValueError(f"{what}'s {key!r} has the wrong type ({type(value).__name__})")
    return known
