"""Dataclasses rebuilt from JSON state files only when every field has the type it was saved with.

A state file may be edited or damaged: a name that is a number, a list that is a string, or
``"lan": "false"`` would otherwise pass ``cls(**data)`` and fail much later, far from the file (or,
worse, turn LAN on). The checks come from the dataclass's own annotations, so a new field cannot
be forgotten. Caches use :func:`checked_fields` (one bad field sets the whole file aside); the
user's settings use :func:`check_value` field by field (a bad field falls back to its default).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import fields
from typing import Any

Check = Callable[[Any], None]  # raises ValueError with the reason


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v))


def check_value(name: str, annotation: Any, value: Any) -> Any:
    """``value`` if it fits ``annotation``; ``ValueError`` (one line, naming ``name``) otherwise.

    bool is not an int here, floats must be finite, text must not hold NUL characters."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return check_value(name, inner[0], value)
    if annotation is Any:
        if not (_is_scalar(value) or (isinstance(value, list) and all(_is_scalar(x) for x in value))):
            raise ValueError(f"{name} must be a plain value")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a number")
        return float(value)
    if annotation is str:
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError(f"{name} must be text")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{name} must be a list")
        return [check_value(name, args[0], v) for v in value]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list")
        return tuple(check_value(name, args[0], v) for v in value)
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"{name} must be an object")
        return {k: check_value(name, args[1], v) for k, v in value.items()}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(value)
        except ValueError:
            known = ", ".join(str(m.value) for m in annotation)
            raise ValueError(f"{name} must be one of {known}") from None
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be an object")
        hints = type_hints(annotation)
        given = {f.name: check_value(f"{name}.{f.name}", hints[f.name], value[f.name])
                 for f in fields(annotation) if f.name in value}
        try:
            return annotation(**given)
        except TypeError as exc:  # a required field is missing
            raise ValueError(f"{name} is incomplete ({exc})") from None
    raise TypeError(f"no check for {annotation!r}")  # a new field type needs a rule here


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, worked out once per class (settings load it per model entry)."""
    return typing.get_type_hints(cls)


def field_checks(cls: type) -> dict[str, Check]:
    hints = type_hints(cls)

    def check_for(name: str, hint: Any) -> Check:
        def check(value: Any) -> None:
            check_value(name, hint, value)
        return check

    return {f.name: check_for(f.name, hints[f.name]) for f in fields(cls)}


def checked_fields(checks: dict[str, Check], data: Any, what: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The known fields of ``data``, each of its declared type; ``ValueError`` (one line) otherwise."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be an object, not {type(data).__name__}")
    known = {k: v for k, v in data.items() if k in checks}
    for key in required:
        if key not in known:
            raise ValueError(f"{what} lacks {key!r}")
    for key, value in known.items():
        try:
            checks[key](value)
        except ValueError as exc:
            raise ValueError(f"{what}'s {exc} (got {type(value).__name__})") from exc
    return known
