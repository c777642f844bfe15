"""Shape ``AutoScalePolicy.status`` (docs/api.md) and compute minimal merge patches.

Status is written only when it changed: ``status_patch`` returns None for "nothing to write".
Callers bump timestamps (lastScaleTime, lastDecision.time) only on real changes, so a steady
state produces no writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from surge.api.quantity import parse_quantity

__all__ = [
    "INT32_MAX",
    "ContainerRecommendationStatus",
    "LastDecision",
    "MetricStatus",
    "build_status",
    "clip",
    "fit_quantity_text",
    "int32",
    "merge_patch",
    "status_patch",
]


# The CRD's limits (crds/autoscaling.surge.dev_autoscalepolicies.yaml): a status outside them is refused
# whole by the API server (422), so every value is fitted here, where the status is shaped.
INT32_MAX = 2**31 - 1  # format int32; HPA caps its proposals here too
MAX_NAME = 253
MAX_TYPE = 32
MAX_QUANTITY = 64  # currentMetrics[].value/target and recommendation amounts
MAX_TEXT = 1024  # currentMetrics[].error, lastDecision.reason, conditions[].reason
MAX_LIMITED_BY = 128
MAX_CONTAINER_NAME = 63
MAX_LIST = 16  # currentMetrics and conditions
MAX_RECOMMENDATIONS = 32


def int32(value: int) -> int:
    """Non-negative and within int32 (the CRD's format for replica counts)."""
    return min(max(int(value), 0), INT32_MAX)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters; a clipped text ends in "..." so a reader knows."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fit_quantity_text(text: str, limit: int = MAX_QUANTITY) -> str:
    """A quantity string that fits ``limit``: huge values (1e306 written out) become exponent form."""
    if len(text) <= limit:
        return text
    try:
        value = float(parse_quantity(text))
    except (ValueError, ArithmeticError):
        return clip(text, limit)
    short = f"{value:.6g}".replace("e+", "e")
    return short if len(short) <= limit else clip(short, limit)


@dataclass(frozen=True, slots=True)
class MetricStatus:
    """One entry of ``status.currentMetrics`` (same order as ``spec.horizontal.metrics``)."""

    name: str
    type: str
    value: str = ""  # current value as a quantity string ("72" percent, "350m", "1200")
    target: str = ""
    proposed_replicas: int | None = None
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": clip(self.name, MAX_NAME),
            "type": clip(self.type, MAX_TYPE),
            "value": fit_quantity_text(self.value),
            "target": fit_quantity_text(self.target),
        }
        if self.proposed_replicas is not None:
            out["proposedReplicas"] = int32(self.proposed_replicas)
        out["error"] = clip(self.error, MAX_TEXT)
        return out


@dataclass(frozen=True, slots=True)
class ContainerRecommendationStatus:
    """VPA-shaped recommendation for one container; resource maps hold quantity strings."""

    container_name: str
    target: Mapping[str, str] = field(default_factory=dict)
    lower_bound: Mapping[str, str] = field(default_factory=dict)
    upper_bound: Mapping[str, str] = field(default_factory=dict)
    uncapped_target: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "containerName": clip(self.container_name, MAX_CONTAINER_NAME),
            "target": _amounts(self.target),
            "lowerBound": _amounts(self.lower_bound),
            "upperBound": _amounts(self.upper_bound),
            "uncappedTarget": _amounts(self.uncapped_target),
        }


def _amounts(values: Mapping[str, str]) -> dict[str, str]:
    return {k: fit_quantity_text(v) for k, v in values.items()}


@dataclass(frozen=True, slots=True)
class LastDecision:
    time: str  # RFC 3339
    from_replicas: int
    to_replicas: int
    reason: str
    limited_by: str = ""
    hold_until: str = ""  # RFC 3339: a stabilization window holds the count until then ("": none does)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": self.time,
            "from": int32(self.from_replicas),
            "to": int32(self.to_replicas),
            "reason": clip(self.reason, MAX_TEXT),
            "limitedBy": clip(self.limited_by, MAX_LIMITED_BY),
        }
        if self.hold_until:
            out["holdUntil"] = self.hold_until
        return out


def build_status(
    *,
    observed_generation: int | None,
    current_replicas: int | None = None,
    desired_replicas: int | None = None,
    last_scale_time: str | None = None,
    current_metrics: Sequence[MetricStatus] = (),
    recommendations: Sequence[ContainerRecommendationStatus] | None = None,
    last_decision: LastDecision | None = None,
    consecutive_failures: int = 0,
    conditions: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the full status dict. Optional members that are None are left out.

    ``extra`` carries additional top-level fields the CRD schema allows (e.g. a checkpoint).
    """
    status: dict[str, Any] = {}
    if observed_generation is not None:
        status["observedGeneration"] = max(observed_generation, 0)
    if current_replicas is not None:
        status["currentReplicas"] = int32(current_replicas)
    if desired_replicas is not None:
        status["desiredReplicas"] = int32(desired_replicas)
    if last_scale_time is not None:
        status["lastScaleTime"] = last_scale_time
    status["currentMetrics"] = [m.to_dict() for m in current_metrics[:MAX_LIST]]
    if recommendations is not None:
        status["recommendation"] = {
            "containerRecommendations": [r.to_dict() for r in recommendations[:MAX_RECOMMENDATIONS]]
        }
    if last_decision is not None:
        status["lastDecision"] = last_decision.to_dict()
    status["consecutiveFailures"] = int32(consecutive_failures)
    status["conditions"] = [_fit_condition(c) for c in conditions[:MAX_LIST]]
    if extra:
        status.update(extra)
    return status


def _fit_condition(condition: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(condition)
    if isinstance(out.get("reason"), str):
        out["reason"] = clip(out["reason"], MAX_TEXT)
    return out


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch turning ``old`` into ``new`` (lists are replaced whole)."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
            continue
        before = old[key]
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            sub = merge_patch(before, value)
            if sub:
                patch[key] = sub
        elif before != value:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None  # null deletes the key
    return patch


def status_patch(
    old_status: Mapping[str, Any] | None, new_status: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The merge patch for ``status`` or None when nothing changed (compares fully)."""
    patch = merge_patch(old_status or {}, new_status)
    return patch or None
