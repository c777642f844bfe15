"""Shape ``AutoScalePolicy.status`` (docs/api.md) and compute minimal merge patches.

Status is written only when it changed: ``status_patch`` returns None for "nothing to write".
Callers bump timestamps (lastScaleTime, lastDecision.time) only on real changes, so a steady
state produces no writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ContainerRecommendationStatus",
    "LastDecision",
    "MetricStatus",
    "build_status",
    "merge_patch",
    "status_patch",
]


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
            "name": self.name,
            "type": self.type,
            "value": self.value,
            "target": self.target,
        }
        if self.proposed_replicas is not None:
            out["proposedReplicas"] = self.proposed_replicas
        out["error"] = self.error
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
            "containerName": self.container_name,
            "target": dict(self.target),
            "lowerBound": dict(self.lower_bound),
            "upperBound": dict(self.upper_bound),
            "uncappedTarget": dict(self.uncapped_target),
        }


@dataclass(frozen=True, slots=True)
class LastDecision:
    time: str  # RFC 3339
    from_replicas: int
    to_replicas: int
    reason: str
    limited_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "from": self.from_replicas,
            "to": self.to_replicas,
            "reason": self.reason,
            "limitedBy": self.limited_by,
        }


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
        status["observedGeneration"] = observed_generation
    if current_replicas is not None:
        status["currentReplicas"] = current_replicas
    if desired_replicas is not None:
        status["desiredReplicas"] = desired_replicas
    if last_scale_time is not None:
        status["lastScaleTime"] = last_scale_time
    status["currentMetrics"] = [m.to_dict() for m in current_metrics]
    if recommendations is not None:
        status["recommendation"] = {"containerRecommendations": [r.to_dict() for r in recommendations]}
    if last_decision is not None:
        status["lastDecision"] = last_decision.to_dict()
    status["consecutiveFailures"] = consecutive_failures
    status["conditions"] = [dict(c) for c in conditions]
    if extra:
        status.update(extra)
    return status


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
