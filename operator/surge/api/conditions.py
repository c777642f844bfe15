"""``metav1.Condition``-shaped dicts for ``status.conditions`` (a list-map keyed by ``type``).

Merge patches replace lists, so every helper returns the *whole* new list; inputs are never mutated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ABLE_TO_SCALE",
    "CONFLICT",
    "METRICS_AVAILABLE",
    "READY",
    "SCALING_ACTIVE",
    "SCALING_LIMITED",
    "get_condition",
    "is_condition_true",
    "set_condition",
]

READY = "Ready"
ABLE_TO_SCALE = "AbleToScale"
SCALING_ACTIVE = "ScalingActive"
SCALING_LIMITED = "ScalingLimited"
METRICS_AVAILABLE = "MetricsAvailable"
CONFLICT = "Conflict"

# metav1.Condition validation: reason is CamelCase-ish, message at most 32768 characters.
_REASON_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_MAX_MESSAGE = 32768


def _status_str(status: str | bool) -> str:
    if isinstance(status, bool):
        return "True" if status else "False"
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"condition status must be True, False or Unknown, got {status!r}")
    return status


def get_condition(conditions: Sequence[Mapping[str, Any]] | None, type: str) -> dict[str, Any] | None:
    """A copy of the condition of this type, or None."""
    for cond in conditions or ():
        if cond.get("type") == type:
            return dict(cond)
    return None


def is_condition_true(conditions: Sequence[Mapping[str, Any]] | None, type: str) -> bool:
    cond = get_condition(conditions, type)
    return cond is not None and cond.get("status") == "True"


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type: str,
    status: str | bool,
    reason: str,
    message: str,
    now_iso: str,
    observed_generation: int | None = None,
) -> list[dict[str, Any]]:
    """Return the whole new condition list with ``type`` set.

    ``lastTransitionTime`` changes only when the status flips (or the condition is new); reason,
    message and observedGeneration are always refreshed. Order is kept; new types are appended.
    """
    if not _REASON_RE.match(reason):
        raise ValueError(f"condition reason must be CamelCase, got {reason!r}")
    status_str = _status_str(status)
    message = message[:_MAX_MESSAGE]
    result: list[dict[str, Any]] = []
    found = False
    for cond in conditions or ():
        if cond.get("type") != type:
            result.append(dict(cond))
            continue
        if found:  # drop duplicates of a list-map key
            continue
        found = True
        flipped = cond.get("status") != status_str or not cond.get("lastTransitionTime")
        result.append(
            _condition(
                type,
                status_str,
                reason,
                message,
                now_iso if flipped else str(cond["lastTransitionTime"]),
                observed_generation,
            )
        )
    if not found:
        result.append(_condition(type, status_str, reason, message, now_iso, observed_generation))
    return result


def _condition(
    type: str, status: str, reason: str, message: str, transition: str, generation: int | None
) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": type,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond
