"""Decision state <-> the spec of an AutoScalePolicyCheckpoint (pure codec, no I/O).

``encode`` turns a policy's ``PlanState`` into the checkpoint's ``spec``; ``decode`` turns it back, or
raises ``CheckpointError`` with a reason a person can act on (the caller posts it as an Event and starts
from an empty state). The shape is the CRD's schema
(crds/autoscaling.surge.dev_autoscalepolicycheckpoints.yaml): every field is typed there, so the
bounds below are the schema's, and ``encode`` never produces an object the API server would refuse.

Size: histograms are sparse (only buckets with weight, at most 176 each); scale-down recommendations
are compacted to the ones that can still decide a stabilization window (see ``compact_recommendations``);
pod-keyed maps keep the newest entries up to a bound. A realistic checkpoint is a few KB (docs/design.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

from surge.api.spec import PolicySpec
from surge.decision.behavior import BehaviorState, Recommendation
from surge.decision.plan import PlanState
from surge.decision.predictive import MAX_STORED_POINTS, PredictiveState
from surge.decision.vertical import VerticalState

__all__ = [
    "MAX_CONTAINERS",
    "MAX_EVENTS",
    "MAX_PEAKS",
    "MAX_RECOMMENDATIONS",
    "MAX_SEEN_PODS",
    "SCHEMA_VERSION",
    "CheckpointError",
    "Restored",
    "compact_recommendations",
    "decode",
    "encode",
    "max_age",
]

SCHEMA_VERSION = 1
# Bounds shared with the CRD schema (maxItems / maxProperties). The spec allows windows up to 3600 s
# and intervals down to 1 s, so 4,000 entries hold any window even before compaction.
MAX_RECOMMENDATIONS = 4000
MAX_EVENTS = 4000
MAX_CONTAINERS = 20
MAX_SEEN_PODS = 1000  # a pod left out may have its current usage sample counted once more
MAX_PEAKS = 2000  # "pod/container" memory peaks of the current window
MAX_CLOCK_SKEW = 60.0  # seconds a checkpoint may seem to come from the future (replicas on other nodes)
VERTICAL_HALF_LIVES = 10  # after 10 half-lives old samples weigh < 1/1000 of a new one
_DEFAULT_MAX_AGE = 300.0  # a policy with neither horizontal nor vertical part


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; ``reason`` is a CamelCase word for an Event."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Restored(NamedTuple):
    state: PlanState
    last_tick: float | None  # start of the last tick before the save (None: unknown)


def compact_recommendations(recs: tuple[Recommendation, ...]) -> tuple[Recommendation, ...]:
    """Only the recommendations that can still decide a stabilization window, in order.

    Stabilization takes the max (scale-down) or min (scale-up) of the recommendations newer than a
    cutoff. A recommendation with a newer one at least as high AND a newer one at least as low can never
    be that max or min, for any cutoff, now or after more are appended: dropping it changes no decision.
    Steady load keeps one entry instead of one per tick. Only applies when times do not go backwards.
    """
    if any(b.time < a.time for a, b in itertools.pairwise(recs)):
        return recs
    kept: list[Recommendation] = []
    newer_max = newer_min = None
    for rec in reversed(recs):
        is_max = newer_max is None or rec.replicas > newer_max
        is_min = newer_min is None or rec.replicas < newer_min
        if is_max or is_min:
            kept.append(rec)
        newer_max = rec.replicas if newer_max is None else max(newer_max, rec.replicas)
        newer_min = rec.replicas if newer_min is None else min(newer_min, rec.replicas)
    return tuple(reversed(kept))


def _newest(mapping: Mapping[str, Any], limit: int, key: Any) -> dict[str, Any]:
    if len(mapping) <= limit:
        return dict(mapping)
    return dict(sorted(mapping.items(), key=key)[-limit:])


def _bounded(state: PlanState) -> PlanState:
    recs = compact_recommendations(state.behavior.recommendations)[-MAX_RECOMMENDATIONS:]
    behavior = BehaviorState(recs, state.behavior.events[-MAX_EVENTS:])
    vertical = state.vertical
    containers = dict(sorted(vertical.containers.items())[:MAX_CONTAINERS])
    peaks = _newest(vertical.peaks, MAX_PEAKS, lambda kv: kv[1].window_end)
    seen = _newest(vertical.seen, MAX_SEEN_PODS, lambda kv: kv[1])
    vertical = VerticalState(containers, peaks, seen, vertical.last_oom_time)
    predictive = PredictiveState(state.predictive.points[-MAX_STORED_POINTS:])
    return replace(state, behavior=behavior, vertical=vertical, predictive=predictive)


def encode(
    state: PlanState, last_tick: float | None, now: float, *, policy_uid: str, generation: int
) -> dict[str, Any]:
    """The checkpoint's ``spec`` for ``state`` saved at ``now`` (same clock as the engine's)."""
    spec: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "policyUID": policy_uid,
        "policyGeneration": max(int(generation), 0),
        "savedTime": now,
        "state": _bounded(state).to_dict(),
    }
    if last_tick is not None:
        spec["lastTick"] = last_tick
    return spec


def max_age(spec: PolicySpec) -> float:
    """How old a checkpoint may be and still hold anything that influences a decision."""
    ages: list[float] = []
    hor = spec.horizontal
    if hor is not None:
        rules = (hor.behavior.scale_up, hor.behavior.scale_down)
        ages.extend(float(r.stabilization_window_seconds) for r in rules)
        ages.extend(float(p.period_seconds) for r in rules for p in r.policies)
        if hor.predictive is not None:
            ages.append(hor.predictive.history)
        if hor.fallback is not None:
            ages.append(hor.fallback.failure_threshold * spec.interval)
    if spec.vertical is not None:
        ages.append(VERTICAL_HALF_LIVES * spec.vertical.half_life)
    return max(ages, default=_DEFAULT_MAX_AGE)


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CheckpointError("MalformedCheckpoint", f"checkpoint field {key} is not a number: {value!r}")
    return float(value)


def decode(data: Mapping[str, Any], spec: PolicySpec, *, policy_uid: str, now: float) -> Restored:
    """The state saved in a checkpoint's ``spec``; raises CheckpointError when it cannot be used."""
    if not isinstance(data, Mapping):
        raise CheckpointError("MalformedCheckpoint", "checkpoint spec is not an object")
    version = data.get("schemaVersion")
    if version != SCHEMA_VERSION:
        raise CheckpointError(
            "UnsupportedCheckpointVersion",
            f"checkpoint schemaVersion {version!r} is not {SCHEMA_VERSION}, the version this operator reads",
        )
    saved_uid = data.get("policyUID")
    if saved_uid != policy_uid:
        raise CheckpointError(
            "CheckpointOfAnotherPolicy",
            f"checkpoint belongs to policy UID {saved_uid!r}, not {policy_uid!r} "
            "(a deleted policy of the same name)",
        )
    saved = _number(data, "savedTime")
    if saved > now + MAX_CLOCK_SKEW:
        raise CheckpointError(
            "CheckpointFromTheFuture", f"checkpoint saved {saved - now:.0f}s in the future: clocks disagree"
        )
    limit = max_age(spec)
    if now - saved > limit:
        raise CheckpointError(
            "CheckpointTooOld",
            f"checkpoint saved {now - saved:.0f}s ago is older than anything it could restore "
            f"({limit:.0f}s: the longest window, history or {VERTICAL_HALF_LIVES} half-lives)",
        )
    last_tick = _number(data, "lastTick") if data.get("lastTick") is not None else None
    raw_state = data.get("state")
    if not isinstance(raw_state, Mapping):
        raise CheckpointError("MalformedCheckpoint", "checkpoint has no state object")
    try:
        state = PlanState.from_dict(raw_state, spec)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        raise CheckpointError("MalformedCheckpoint", f"checkpoint state is unreadable: {exc}") from exc
    return Restored(state, last_tick)
