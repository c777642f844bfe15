"""Typed field readers for the spec parser: each returns a value or raises SpecError with the path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from surge.api.quantity import parse_duration, quantity_to_float

__all__ = [
    "SpecError",
    "mapping",
    "opt_mapping",
    "read_duration",
    "read_enum",
    "read_float",
    "read_int",
    "read_list",
    "read_quantity",
    "read_str",
]

_E = TypeVar("_E", bound=StrEnum)


class SpecError(ValueError):
    """Invalid AutoScalePolicy spec. ``path`` is the field path, ``problem`` the human reason."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be an object, got {type(value).__name__}")
    return value


def opt_mapping(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    value = parent.get(key)
    return None if value is None else mapping(value, f"{path}.{key}")


def read_list(value: Any, path: str, min_len: int, max_len: int) -> Sequence[Any]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise SpecError(path, f"must be a list, got {type(value).__name__}")
    if not min_len <= len(value) <= max_len:
        raise SpecError(path, f"must have {min_len}..{max_len} entries, got {len(value)}")
    return value


def read_str(
    parent: Mapping[str, Any], key: str, path: str, *, required: bool = True, max_len: int = 253
) -> str:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        if required:
            raise SpecError(p, "is required")
        return ""
    if not isinstance(value, str):
        raise SpecError(p, f"must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise SpecError(p, "must not be empty")
    if len(value) > max_len:
        raise SpecError(p, f"must be at most {max_len} characters")
    return value


def read_int(
    parent: Mapping[str, Any], key: str, path: str, default: int | None, lo: int, hi: int | None = None
) -> int:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        if default is None:
            raise SpecError(p, "is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(p, f"must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise SpecError(p, f"must be in [{lo}, {hi}], got {value}" if hi is not None else f"must be >= {lo}")
    return value


def read_float(
    parent: Mapping[str, Any],
    key: str,
    path: str,
    default: float,
    *,
    lo: float,
    hi: float,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        return default
    if isinstance(value, str):  # a YAML author may quote numbers
        try:
            value = float(value)
        except ValueError:
            raise SpecError(p, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(p, f"must be a number, got {value!r}")
    number = float(value)
    too_low = number <= lo if lo_open else number < lo
    too_high = number >= hi if hi_open else number > hi
    if too_low or too_high:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise SpecError(p, f"must be in {interval}, got {number:g}")
    return number


def read_quantity(parent: Mapping[str, Any], key: str, path: str, *, positive: bool = True) -> float:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        raise SpecError(p, "is required")
    try:
        number = quantity_to_float(value)
    except ValueError as exc:
        raise SpecError(p, str(exc)) from None
    if positive and number <= 0:
        raise SpecError(p, f"must be > 0, got {value!r}")
    if number < 0:
        raise SpecError(p, f"must be >= 0, got {value!r}")
    return number


def read_duration(
    parent: Mapping[str, Any], key: str, path: str, default: float | None, lo: float, hi: float
) -> float:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        if default is None:
            raise SpecError(p, "is required")
        return default
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise SpecError(p, str(exc)) from None
    if not lo <= seconds <= hi:
        raise SpecError(p, f"must be between {lo:g}s and {hi:g}s, got {value!r}")
    return seconds


def read_enum(parent: Mapping[str, Any], key: str, path: str, enum: type[_E], default: _E | None) -> _E:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        if default is None:
            raise SpecError(p, "is required")
        return default
    try:
        return enum(value)
    except ValueError:
        allowed = " | ".join(m.value for m in enum)
        raise SpecError(p, f"must be one of {allowed}, got {value!r}") from None
