"""VPA-style recommender: decaying histograms of usage per container -> requests (and limits).

- CPU: every usage sample, weighted by the container's request (min 0.1 core), like VPA.
- Memory: one peak per pod-container per aggregation window (window = half-life; VPA uses 24h for
  both), so a long idle period does not dilute a daily peak.
- Target / lower / upper = percentiles x (1 + safety margin); bounds widen while confidence (how
  much history, in half-lives) is low, as in VPA.
- OOM kill: a memory sample of max(used * 1.2, used + 100Mi) and a floor for the target that lasts
  one half-life, so the next size is guaranteed to be bigger.
- Caps: minAllowed/maxAllowed; RequestsOnly never sets a request above the current limit;
  RequestsAndLimits keeps the limit/request ratio.
- A resource is resized only when the current request is outside [lowerBound, upperBound], after an
  OOM, or when the target moved by at least ``minChangeFraction`` and the history spans at least
  half a half-life (VPA's updater waits 12h of pod life, half its 24h half-life, for that rule).
- Low confidence never shrinks: until the history reaches ``SHRINK_CONFIDENCE`` (half a half-life of
  span, and as many samples as one a minute would give), a request may be raised but never lowered
  (except down to maxAllowed, a user's cap rather than a guess).
  One idle sample after a restart would otherwise put a 2-CPU request above a 10x-widened upper
  bound of a few dozen millicores and resize it down to almost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from surge.api.quantity import format_cpu, format_memory
from surge.api.spec import (
    ContainerPolicy,
    ContainerPolicyMode,
    ControlledValues,
    ResourceAmounts,
    UpdateMode,
    VerticalSpec,
)
from surge.api.status import ContainerRecommendationStatus
from surge.decision.histogram import CPU_HISTOGRAM, MEMORY_HISTOGRAM, DecayingHistogram
from surge.decision.model import ContainerResources, MetricError, Observation, OOMEvent

__all__ = [
    "MIN_CPU",
    "MIN_MEMORY",
    "SHRINK_CONFIDENCE",
    "ContainerEstimate",
    "ContainerHistory",
    "ContainerResize",
    "MemoryPeak",
    "VerticalOutcome",
    "VerticalState",
    "add_observation",
    "plan_resizes",
    "recommend",
    "vertical_step",
]

MIN_CPU_SAMPLE_WEIGHT = 0.1  # cores; VPA's minSampleWeight
OOM_BUMP_RATIO = 1.2
OOM_MIN_BUMP = 100 * 2**20  # 100Mi
MIN_CPU = 0.025  # per container floor for a recommendation (VPA: 25m per pod)
MIN_MEMORY = 64 * 2**20  # per container floor (VPA: 250Mi per pod, too big for small sidecars)
MAX_UPPER_MULTIPLIER = 10.0  # VPA's (1 + 1/confidence) is unbounded at zero history
SHRINK_CONFIDENCE = 0.5  # half-lives of history (span and sample count) before a request may go down
MI = 2**20


@dataclass(frozen=True, slots=True)
class ContainerHistory:
    """Aggregated usage of one container name across the target's pods."""

    cpu: DecayingHistogram
    memory: DecayingHistogram
    first_sample_time: float | None = None
    last_sample_time: float | None = None
    cpu_samples: int = 0
    oom_floor: float = 0.0  # bytes; the target memory is at least this until oom_time + half-life
    oom_time: float | None = None

    @classmethod
    def empty(cls, half_life: float) -> ContainerHistory:
        return cls(
            DecayingHistogram(CPU_HISTOGRAM, half_life), DecayingHistogram(MEMORY_HISTOGRAM, half_life)
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cpu": self.cpu.to_dict(),
            "memory": self.memory.to_dict(),
            "cpuSamples": self.cpu_samples,
            "oomFloor": self.oom_floor,
        }
        # Unset times are left out, not null: the checkpoint CRD's schema has no nullable fields.
        optional = {
            "firstSampleTime": self.first_sample_time,
            "lastSampleTime": self.last_sample_time,
            "oomTime": self.oom_time,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], half_life: float) -> ContainerHistory:
        def opt(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            cpu=DecayingHistogram.from_dict(data.get("cpu", {}), CPU_HISTOGRAM, half_life),
            memory=DecayingHistogram.from_dict(data.get("memory", {}), MEMORY_HISTOGRAM, half_life),
            first_sample_time=opt("firstSampleTime"),
            last_sample_time=opt("lastSampleTime"),
            cpu_samples=max(int(data.get("cpuSamples", 0)), 0),
            oom_floor=float(data.get("oomFloor", 0.0)),
            oom_time=opt("oomTime"),
        )


@dataclass(frozen=True, slots=True)
class MemoryPeak:
    window_end: float
    peak: float


@dataclass(frozen=True, slots=True)
class VerticalState:
    containers: Mapping[str, ContainerHistory] = field(default_factory=dict)
    peaks: Mapping[str, MemoryPeak] = field(default_factory=dict)  # "pod/container" -> this window's peak
    seen: Mapping[str, float] = field(default_factory=dict)  # pod -> newest sample time consumed
    last_oom_time: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "containers": {name: h.to_dict() for name, h in sorted(self.containers.items())},
            "peaks": {key: [p.window_end, p.peak] for key, p in sorted(self.peaks.items())},
            "seen": dict(sorted(self.seen.items())),
        }
        if self.last_oom_time is not None:
            out["lastOOMTime"] = self.last_oom_time
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], half_life: float) -> VerticalState:
        try:
            last_oom = data.get("lastOOMTime")
            return cls(
                containers={
                    str(n): ContainerHistory.from_dict(h, half_life)
                    for n, h in dict(data.get("containers", {})).items()
                },
                peaks={
                    str(k): MemoryPeak(float(v[0]), float(v[1]))
                    for k, v in dict(data.get("peaks", {})).items()
                },
                seen={str(k): float(v) for k, v in dict(data.get("seen", {})).items()},
                last_oom_time=None if last_oom is None else float(last_oom),
            )
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"invalid vertical state: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ContainerEstimate:
    """A VPA-shaped recommendation (cores / bytes)."""

    container: str
    target: ResourceAmounts
    lower_bound: ResourceAmounts
    upper_bound: ResourceAmounts
    uncapped_target: ResourceAmounts
    history_seconds: float = 0.0  # span of the usage samples behind this estimate
    confidence: float = 0.0  # history in half-lives (span and sample count, the smaller); see _confidence

    def to_status(self) -> ContainerRecommendationStatus:
        return ContainerRecommendationStatus(
            container_name=self.container,
            target=_amounts_text(self.target),
            lower_bound=_amounts_text(self.lower_bound),
            upper_bound=_amounts_text(self.upper_bound),
            uncapped_target=_amounts_text(self.uncapped_target),
        )


@dataclass(frozen=True, slots=True)
class ContainerResize:
    """New requests/limits for one container of the pod template (unchanged values are copied)."""

    container: str
    old_requests: ResourceAmounts
    new_requests: ResourceAmounts
    old_limits: ResourceAmounts
    new_limits: ResourceAmounts
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Kubernetes-shaped ``resources`` for the container, quantities as strings."""
        return {
            "name": self.container,
            "resources": {
                "requests": _amounts_text(self.new_requests),
                "limits": _amounts_text(self.new_limits),
            },
        }


@dataclass(frozen=True, slots=True)
class VerticalOutcome:
    state: VerticalState
    estimates: tuple[ContainerEstimate, ...]
    resizes: tuple[ContainerResize, ...]
    oom_containers: frozenset[str] = frozenset()  # containers with an OOM kill new this tick


def _amounts_text(amounts: ResourceAmounts) -> dict[str, str]:
    out = {}
    if amounts.cpu is not None:
        out["cpu"] = format_cpu(amounts.cpu)
    if amounts.memory is not None:
        out["memory"] = format_memory(amounts.memory)
    return out


# --------------------------------------------------------------------------------------------------
# Model update


def add_observation(state: VerticalState, spec: VerticalSpec, obs: Observation, now: float) -> VerticalState:
    """Fold this tick's usage samples and OOM kills into the histograms."""
    names = [c.name for c in obs.containers if spec.policy_for(c.name).mode is ContainerPolicyMode.AUTO]
    template = {c.name: c for c in obs.containers}
    histories = {n: state.containers.get(n) or ContainerHistory.empty(spec.half_life) for n in names}
    peaks = dict(state.peaks)
    seen: dict[str, float] = {}
    cpu_samples: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    mem_samples: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    sample_times: dict[str, list[float]] = {n: [] for n in names}
    requests_by_pod = {p.name: p.requests for p in obs.pods}

    pod_metrics = obs.pod_metrics if not isinstance(obs.pod_metrics, MetricError) else None
    if pod_metrics is None:
        seen = dict(state.seen)  # a failed fetch must not make old samples look new next time
    for pod, usage in sorted((pod_metrics or {}).items()):
        previous = state.seen.get(pod)
        seen[pod] = max(usage.timestamp, previous or usage.timestamp)
        if previous is not None and usage.timestamp <= previous:
            continue  # metrics-server returned the same window again
        for name in names:
            amounts = usage.containers.get(name)
            if amounts is None:
                continue
            sample_times[name].append(usage.timestamp)
            if amounts.cpu is not None:
                request = requests_by_pod.get(pod, {}).get(name, template[name].requests).cpu
                weight = max(request or 0.0, MIN_CPU_SAMPLE_WEIGHT)
                cpu_samples[name].append((amounts.cpu, weight, usage.timestamp))
            if amounts.memory is not None:
                mem_samples[name].extend(
                    _memory_peak(peaks, f"{pod}/{name}", amounts.memory, usage.timestamp, spec)
                )

    last_oom = state.last_oom_time
    for oom in _new_ooms(obs.ooms, state.last_oom_time):
        if oom.container not in histories:
            continue
        histories[oom.container], extra = _record_oom(histories[oom.container], oom, template[oom.container])
        mem_samples[oom.container].extend(extra)
        last_oom = oom.timestamp if last_oom is None else max(last_oom, oom.timestamp)

    for name in names:
        hist = histories[name]
        times = [
            t for t in (*sample_times[name], hist.first_sample_time, hist.last_sample_time) if t is not None
        ]
        histories[name] = ContainerHistory(
            cpu=hist.cpu.add_samples(cpu_samples[name]),
            memory=hist.memory.add_samples(mem_samples[name]),
            first_sample_time=min(times, default=None),
            last_sample_time=max(times, default=None),
            cpu_samples=hist.cpu_samples + len(cpu_samples[name]),
            oom_floor=hist.oom_floor,
            oom_time=hist.oom_time,
        )
    # Forget peaks of pods that are gone and whose window is over.
    live = {f"{pod}/" for pod in seen}
    peaks = {
        k: p for k, p in peaks.items() if p.window_end > now or any(k.startswith(prefix) for prefix in live)
    }
    return VerticalState(containers=histories, peaks=peaks, seen=seen, last_oom_time=last_oom)


def _new_ooms(ooms: Sequence[OOMEvent], last_seen: float | None) -> list[OOMEvent]:
    """OOM kills not seen in an earlier tick, each once, oldest first."""
    fresh = {(o.container, o.timestamp): o for o in ooms if last_seen is None or o.timestamp > last_seen}
    return sorted(fresh.values(), key=lambda o: o.timestamp)


def _memory_peak(
    peaks: dict[str, MemoryPeak], key: str, usage: float, time: float, spec: VerticalSpec
) -> list[tuple[float, float, float]]:
    """VPA's addMemorySample: keep one peak per window; replace it when exceeded (mutates ``peaks``)."""
    interval = spec.half_life
    current = peaks.get(key)
    if current is not None and time < current.window_end:
        if usage <= current.peak:
            return []
        peaks[key] = MemoryPeak(current.window_end, usage)
        # Subtract the old peak, add the new one, both stamped at the window end.
        return [(current.peak, -1.0, current.window_end), (usage, 1.0, current.window_end)]
    if current is None:
        window_end = time + interval
    else:
        window_end = current.window_end + (math.floor((time - current.window_end) / interval) + 1) * interval
    peaks[key] = MemoryPeak(window_end, usage)
    return [(usage, 1.0, window_end)]


def _record_oom(
    hist: ContainerHistory, oom: OOMEvent, container: ContainerResources
) -> tuple[ContainerHistory, list[tuple[float, float, float]]]:
    used = max(oom.memory, container.requests.memory or 0.0)
    needed = max(used * OOM_BUMP_RATIO, used + OOM_MIN_BUMP)
    updated = ContainerHistory(
        cpu=hist.cpu,
        memory=hist.memory,
        first_sample_time=hist.first_sample_time,
        last_sample_time=hist.last_sample_time,
        cpu_samples=hist.cpu_samples,
        oom_floor=needed,
        oom_time=oom.timestamp,
    )
    return updated, [(needed, 1.0, oom.timestamp)]


# --------------------------------------------------------------------------------------------------
# Recommendation


def _confidence(hist: ContainerHistory, half_life: float) -> float:
    # VPA: min(lifespan in days, samples / samples-per-day-at-1/min); days become half-lives here.
    if hist.first_sample_time is None or hist.last_sample_time is None:
        return 0.0
    lifespan = (hist.last_sample_time - hist.first_sample_time) / half_life
    samples = hist.cpu_samples * 60.0 / half_life
    return max(min(lifespan, samples), 0.0)


def _clamp(value: float, lo: float | None, hi: float | None) -> float:
    if lo is not None:
        value = max(value, lo)
    if hi is not None:
        value = min(value, hi)
    return value


def _round(resource: str, value: float) -> float:
    # Round up to what a human would write: whole millicores, whole MiB.
    if resource == "cpu":
        return math.ceil(value * 1000 - 1e-9) / 1000
    return float(math.ceil(value / MI - 1e-9) * MI)


def recommend(
    state: VerticalState, spec: VerticalSpec, containers: Sequence[ContainerResources], now: float
) -> tuple[ContainerEstimate, ...]:
    """Recommendations for every Auto container with data, in template order."""
    out = []
    for container in containers:
        policy = spec.policy_for(container.name)
        hist = state.containers.get(container.name)
        if policy.mode is not ContainerPolicyMode.AUTO or hist is None:
            continue
        estimate = _estimate(hist, spec, policy, container.name, now)
        if estimate is not None:
            out.append(estimate)
    return tuple(out)


def _estimate(
    hist: ContainerHistory, spec: VerticalSpec, policy: ContainerPolicy, name: str, now: float
) -> ContainerEstimate | None:
    margin = 1 + spec.safety_margin_fraction
    measured = _confidence(hist, spec.half_life)
    confidence = max(measured, 1e-6)
    upper_mult = min(1 + 1 / confidence, MAX_UPPER_MULTIPLIER)
    lower_mult = (1 + 0.001 / confidence) ** -2
    values: dict[str, dict[str, float]] = {"target": {}, "lower": {}, "upper": {}, "uncapped": {}}
    for resource in policy.controlled_resources:
        histogram = hist.cpu if resource == "cpu" else hist.memory
        floor = MIN_CPU if resource == "cpu" else MIN_MEMORY
        if resource == "memory" and hist.oom_time is not None and now < hist.oom_time + spec.half_life:
            floor = max(floor, hist.oom_floor / margin)  # the OOM bump survives the margin exactly
        if histogram.is_empty() and floor <= (MIN_CPU if resource == "cpu" else MIN_MEMORY):
            continue
        lo, hi = policy.min_allowed.get(resource), policy.max_allowed.get(resource)
        raw = {
            "target": max(histogram.percentile(spec.target_percentile), floor) * margin,
            "lower": max(histogram.percentile(spec.lower_bound_percentile), floor) * margin * lower_mult,
            "upper": max(histogram.percentile(spec.upper_bound_percentile), floor) * margin * upper_mult,
        }
        values["uncapped"][resource] = _round(resource, raw["target"])
        for key, value in raw.items():
            values[key][resource] = _clamp(_round(resource, value), lo, hi)
    if not values["target"]:
        return None

    def amounts(key: str) -> ResourceAmounts:
        return ResourceAmounts(cpu=values[key].get("cpu"), memory=values[key].get("memory"))

    span = 0.0
    if hist.first_sample_time is not None and hist.last_sample_time is not None:
        span = hist.last_sample_time - hist.first_sample_time
    return ContainerEstimate(
        name, amounts("target"), amounts("lower"), amounts("upper"), amounts("uncapped"), span, measured
    )


# --------------------------------------------------------------------------------------------------
# Resizing


def plan_resizes(
    estimates: Sequence[ContainerEstimate],
    spec: VerticalSpec,
    containers: Sequence[ContainerResources],
    oom_containers: frozenset[str] = frozenset(),
) -> tuple[ContainerResize, ...]:
    """Which containers to resize, and to what, given the current template values."""
    if spec.update_mode is UpdateMode.OFF:
        return ()
    by_name = {c.name: c for c in containers}
    resizes = []
    for est in estimates:
        container = by_name.get(est.container)
        if container is None:
            continue
        policy = spec.policy_for(est.container)
        requests = {"cpu": container.requests.cpu, "memory": container.requests.memory}
        limits = {"cpu": container.limits.cpu, "memory": container.limits.memory}
        reasons = []
        for resource in policy.controlled_resources:
            target = est.target.get(resource)
            if target is None:
                continue
            current = requests[resource]
            limit = limits[resource]
            if policy.controlled_values is ControlledValues.REQUESTS_ONLY and limit is not None:
                target = min(target, limit)  # a request above the limit is invalid
            if current is not None and target < current and est.confidence < SHRINK_CONFIDENCE:
                # Too little history to trust a lower number (raising is always allowed); only the
                # user's maxAllowed, which is no guess, still brings a request down.
                cap = policy.max_allowed.get(resource)
                if cap is None or current <= cap:
                    continue
                capped = policy.controlled_values is ControlledValues.REQUESTS_ONLY and limit is not None
                target = min(cap, limit) if capped and limit is not None else cap
            why = _resize_reason(resource, current, target, est, spec, est.container in oom_containers)
            if why is None:
                continue
            reasons.append(why)
            requests[resource] = target
            if (
                policy.controlled_values is ControlledValues.REQUESTS_AND_LIMITS
                and limit is not None
                and current
            ):
                limits[resource] = _round(resource, target * limit / current)  # keep the ratio
        if reasons:
            resizes.append(
                ContainerResize(
                    container=est.container,
                    old_requests=container.requests,
                    new_requests=ResourceAmounts(requests["cpu"], requests["memory"]),
                    old_limits=container.limits,
                    new_limits=ResourceAmounts(limits["cpu"], limits["memory"]),
                    reason="; ".join(reasons),
                )
            )
    return tuple(resizes)


def _resize_reason(
    resource: str,
    current: float | None,
    target: float,
    est: ContainerEstimate,
    spec: VerticalSpec,
    oom: bool,
) -> str | None:
    fmt = format_cpu if resource == "cpu" else format_memory
    if current is None or current <= 0:
        return f"{resource} request unset -> {fmt(target)}"
    if target == current:
        return None
    change = f"{resource} {fmt(current)} -> {fmt(target)}"
    if oom and resource == "memory" and target > current:
        return f"{change} after OOM kill"
    lower, upper = est.lower_bound.get(resource), est.upper_bound.get(resource)
    if lower is not None and current < lower:
        return f"{change} (request below lower bound {fmt(lower)})"
    if upper is not None and current > upper:
        return f"{change} (request above upper bound {fmt(upper)})"
    # Like VPA's updater (12h of pod life at a 24h half-life), small in-range moves wait until the
    # estimate rests on half a half-life of history; bounds and OOMs act at once.
    mature = est.history_seconds >= spec.half_life / 2
    if mature and abs(target - current) / current >= spec.min_change_fraction:
        return f"{change} ({(target - current) / current:+.0%})"
    return None


def vertical_step(state: VerticalState, spec: VerticalSpec, obs: Observation, now: float) -> VerticalOutcome:
    """One tick: add samples, recommend, decide resizes."""
    new_state = add_observation(state, spec, obs, now)
    estimates = recommend(new_state, spec, obs.containers, now)
    oom_containers = frozenset(o.container for o in _new_ooms(obs.ooms, state.last_oom_time))
    resizes = plan_resizes(estimates, spec, obs.containers, oom_containers)
    return VerticalOutcome(new_state, estimates, resizes, oom_containers)
