"""Typed field readers for the spec parser: each returns a value or raises SpecError with the path."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from surge.api.quantity import format_duration, parse_duration, parse_quantity

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
    "shown",
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
        raise SpecError(p, f"must be an integer, got {shown(value)}")
    if value < lo or (hi is not None and value > hi):
        raise SpecError(
            p,
            f"must be in [{lo}, {hi}], got {shown(value)}"
            if hi is not None
            else f"must be >= {lo}, got {shown(value)}",
        )
    return value


def read_float(
    parent: Mapping[str, Any],
    key: str,
    path: str,
    default: float,
    *,
    lo: float,
    hi: float | None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """A JSON number (not quoted: the CRD's ``type: number`` refuses strings); ``hi=None``: no bound."""
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(p, f"must be a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        number = math.inf if value > 0 else -math.inf
    if not math.isfinite(number):
        raise SpecError(p, f"must be a finite number, got {shown(value)}")
    too_low = number <= lo if lo_open else number < lo
    too_high = hi is not None and (number >= hi if hi_open else number > hi)
    if too_low or too_high:
        if hi is None:
            raise SpecError(p, f"must be {'>' if lo_open else '>='} {lo:g}, got {number:g}")
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise SpecError(p, f"must be in {interval}, got {number:g}")
    return number


# Quantities in a spec: apimachinery rounds precision below 1n up to 1n, and the CRD caps every quantity at
# 1E (10^18), so targets and capacities stay far from float overflow in the engine's arithmetic.
QUANTITY_MAX = Decimal("1e18")
QUANTITY_MAX_TEXT = "1E"
QUANTITY_MAX_LEN = 64
_NANO = Decimal("1e-9")
_SPEC_QUANTITY_RE = re.compile(
    r"[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]{1,3})?"
)


def read_quantity(parent: Mapping[str, Any], key: str, path: str, *, positive: bool = True) -> float:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        raise SpecError(p, "is required")
    if isinstance(value, str) and len(value) > QUANTITY_MAX_LEN:
        raise SpecError(p, f"must be at most {QUANTITY_MAX_LEN} characters")
    if isinstance(value, float):  # the CRD's int-or-string takes integers and strings only
        raise SpecError(p, f"must be an integer or a quantity string, got {shown(value)}")
    if isinstance(value, str) and not _SPEC_QUANTITY_RE.fullmatch(value):
        # Also refuses exponents of 4+ digits, as the CRD does (they make quantity parsing in CEL hang).
        raise SpecError(p, f"{shown(value)} is not a Kubernetes quantity (examples: 500m, 2, 1.5, 128Mi)")
    try:
        number = parse_quantity(value)
    except ValueError as exc:
        raise SpecError(p, str(exc)) from None
    if number > 0:
        number = max(number, _NANO)  # 1e-400 is 1n to the API server, never 0
    if positive and number <= 0:
        raise SpecError(p, f"must be greater than zero, got {shown(value)}")
    if number < 0:
        raise SpecError(p, f"must not be negative, got {shown(value)}")
    if number > QUANTITY_MAX:
        raise SpecError(p, f"must be at most {QUANTITY_MAX_TEXT} (10^18), got {shown(value)}")
    return float(number)


def read_duration(
    parent: Mapping[str, Any], key: str, path: str, default: float | None, lo: float, hi: float
) -> float:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        if default is None:
            raise SpecError(p, "is required")
        return default
    if isinstance(value, str) and len(value) > DURATION_MAX_LEN:
        raise SpecError(p, f"must be at most {DURATION_MAX_LEN} characters")
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise SpecError(p, str(exc)) from None
    if not lo <= seconds <= hi:
        raise SpecError(
            p, f"must be between {format_duration(lo)} and {format_duration(hi)}, got {shown(value)}"
        )
    return seconds


DURATION_MAX_LEN = 32


def shown(value: Any) -> str:
    """A value for a message, cut short: a fuzzed 10,000-digit number must not become the message."""
    text = (
        repr(value)
        if isinstance(value, str)
        else str(value)
        if isinstance(value, int | float)
        else type(value).__name__
    )
    return text if len(text) <= 40 else f"{text[:37]}..."


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
        raise SpecError(p, f"must be one of {allowed}, got {shown(value)}") from None
