"""Kubernetes quantities (``250m``, ``128Mi``, ``1e3``) and durations (``1m30s``, ``500ms``).

Parsing is exact (Decimal); the decision engine works in floats: CPU in cores, memory in bytes.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = [
    "format_cpu",
    "format_duration",
    "format_memory",
    "format_quantity",
    "parse_duration",
    "parse_quantity",
    "quantity_to_float",
]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# Same grammar as apimachinery's resource.Quantity: signed number, then a binary SI suffix,
# a decimal SI suffix or a decimal exponent (``e3``/``E-2``; a bare ``E`` means exa).
_QUANTITY_RE = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)$"
)
_DURATION_RE = re.compile(r"([0-9]+)(ms|s|m|h)")
_DURATION_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}


def parse_quantity(value: str | int | float | Decimal) -> Decimal:
    """Parse a Kubernetes quantity into a Decimal in base units (cores, bytes, plain numbers).

    Raises ValueError on anything apimachinery would reject.
    """
    if isinstance(value, bool):  # bool is an int: reject it explicitly
        raise ValueError(f"invalid quantity {value!r}")
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"invalid quantity {value!r}")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise ValueError(f"invalid quantity {value!r}: expected a string or number")
    match = _QUANTITY_RE.fullmatch(value)  # no strip: apimachinery refuses ' 1'
    if match is None:
        raise ValueError(f"invalid quantity {_cut(value)}")
    try:
        number = Decimal(match["num"])
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ValueError(f"invalid quantity {value!r}") from exc
    suffix = match["suffix"]
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    try:
        return number.scaleb(int(suffix[1:]))  # exponent form: e3, E-2
    except (ArithmeticError, ValueError):  # an exponent beyond Decimal's range (or 4300 digits long)
        raise ValueError(f"invalid quantity {_cut(value)}: the exponent is out of range") from None


def _cut(value: str) -> str:
    return repr(value) if len(value) <= 40 else repr(value[:37] + "...")


def quantity_to_float(value: str | int | float | Decimal) -> float:
    """Parse a quantity to a float (cores, bytes, plain numbers)."""
    return float(parse_quantity(value))


def _ceil_tolerant(value: Decimal) -> int:
    # Round up, but not for float noise: 0.1 + 0.2 cores is 300m, not 301m.
    floor = math.floor(value)
    return floor if value - floor < Decimal("1e-6") else floor + 1


def format_cpu(cores: float | Decimal) -> str:
    """Format CPU cores the way Kubernetes canonicalises them: whole cores as ``"2"``, else ``"250m"``.

    Rounds *up* to the next millicore: a recommendation must never be silently lowered.
    """
    millis = _ceil_tolerant(Decimal(str(cores)) * 1000)
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


def format_memory(num_bytes: float | Decimal) -> str:
    """Format bytes with the largest binary suffix that represents them exactly (``"256Mi"``).

    Rounds up to a whole byte.
    """
    value = _ceil_tolerant(Decimal(str(num_bytes)))
    if value == 0:
        return "0"
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _BINARY[suffix]
        if value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


def format_quantity(value: float | Decimal) -> str:
    """Format a plain number (metric values, targets): integers as-is, else up to 3 decimals as milli."""
    dec = Decimal(str(value))
    if dec == dec.to_integral_value():
        return str(int(dec))
    millis = (dec * 1000).to_integral_value()
    if dec * 1000 == millis:
        return f"{int(millis)}m"
    return f"{float(dec):.6g}"


def parse_duration(value: str) -> float:
    """Parse ``"1m30s"``, ``"500ms"``, ``"24h"`` into seconds. Units: ms, s, m, h; at least one part."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"invalid duration {value!r}: expected e.g. '15s', '1m30s', '500ms'")
    pos = 0
    total = Decimal(0)
    for match in _DURATION_RE.finditer(value):
        if match.start() != pos:
            break
        total += int(match[1]) * _DURATION_UNITS[match[2]]
        pos = match.end()
    if pos != len(value):
        raise ValueError(f"invalid duration {value!r}: expected e.g. '15s', '1m30s', '500ms'")
    return float(total)


def format_duration(seconds: float) -> str:
    """Inverse of parse_duration for non-negative values: 90 -> ``"1m30s"``, 0.5 -> ``"500ms"``."""
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"cannot format duration {seconds!r}")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
