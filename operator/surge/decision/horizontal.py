"""Per-metric replica proposals with the HPA controller's semantics (replica_calculator.go).

Arithmetic is exact: values become integer milli-units (CPU millicores, memory bytes, other values
x1000) and ratios are Fractions, so ``ceil(1.1 * 10)`` is 11, not float64's 12. Every proposal is
capped at ``MAX_REPLICAS`` (int32, like HPA); non-finite inputs become a MetricCalcError, never an
exception out of ``propose``. Differences from HPA: docs/hpa-differences.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import assert_never

from surge.api.quantity import format_cpu, format_memory, format_quantity
from surge.api.spec import (
    BufferMetric,
    BufferMetricSpec,
    BufferSize,
    MetricSpec,
    MetricTargetType,
    MetricType,
    PodsMetric,
    PodsMetricSpec,
    PrometheusMetric,
    PrometheusMetricSpec,
    ResourceMetric,
    ResourceMetricSpec,
    Saturation,
    Tolerance,
)
from surge.decision.model import (
    BufferReading,
    EngineSettings,
    MetricError,
    Observation,
    PodInfo,
    PodsReading,
    PodUsage,
    Reading,
    ScalarReading,
)

__all__ = [
    "MAX_REPLICAS",
    "MetricCalcError",
    "MetricProposal",
    "PodGroups",
    "ReplicaCalc",
    "buffer_replicas",
    "group_pods",
    "is_within_tolerance",
    "pods_average_value_replicas",
    "prometheus_average_value_replicas",
    "prometheus_value_replicas",
    "propose",
    "resource_average_value_replicas",
    "resource_utilization_replicas",
]

# HPA keeps replica counts in int32 and caps its proposals there; /scale's spec.replicas is int32 too.
MAX_REPLICAS = 2**31 - 1

_DEFAULT_SETTINGS = EngineSettings()


class MetricCalcError(ValueError):
    """The metric cannot produce a proposal (no pods, no samples, missing requests...)."""


@dataclass(frozen=True, slots=True)
class ReplicaCalc:
    replicas: int
    value: Fraction  # utilization percent, or average/total value in base units
    detail: str


@dataclass(frozen=True, slots=True)
class MetricProposal:
    """One metric's outcome: a replica proposal, or an error (failed metric)."""

    name: str
    type: MetricType
    replicas: int | None
    value: str = ""  # current value for status ("72" percent, "350m", "1200")
    target: str = ""
    detail: str = ""  # human text: what was measured and why this count
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.replicas is not None


@dataclass(frozen=True, slots=True)
class PodGroups:
    ready_count: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def _frac(value: float) -> Fraction:
    # Via repr so 0.1 is 1/10, not the binary float 0.1000000000000000055...
    if not math.isfinite(value):
        raise MetricCalcError(f"value {value} is not a finite number")
    return Fraction(repr(float(value)))


def _milli(resource: str, value: float) -> int:
    """Integer units like HPA: CPU and plain values in milli-units, memory in bytes.

    Exact for any finite float (1e308 x 1000 does not overflow); NaN and infinity are refused.
    """
    return round(_frac(value)) if resource == "memory" else round(_frac(value) * 1000)


def _div_trunc(numerator: int, denominator: int) -> int:
    # Go's integer division truncates toward zero (HPA's averages); Python's // floors.
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def is_within_tolerance(ratio: Fraction, tolerance: Tolerance) -> bool:
    """HPA's asymmetric tolerance: no change while 1 - scaleDown <= ratio <= 1 + scaleUp.

    No upper bound, like HPA: scaleDown >= 1 never scales down on a non-negative metric, and an
    infinite tolerance never scales in that direction at all.
    """
    down, up = tolerance.scale_down, tolerance.scale_up
    for name, amount in (("scaleDown", down), ("scaleUp", up)):
        if math.isnan(amount) or amount < 0:
            raise MetricCalcError(f"tolerance {name} must be a number >= 0, got {amount}")
    above_floor = math.isinf(down) or 1 - _frac(down) <= ratio
    below_ceiling = math.isinf(up) or ratio <= 1 + _frac(up)
    return above_floor and below_ceiling


def _group(
    pods: Sequence[PodInfo],
    has_sample: Callable[[PodInfo], bool],
    sample_unready: Callable[[PodInfo], bool] | None,
) -> PodGroups:
    """HPA's groupPods: ignored (deleting, Failed), unready (Pending, or the CPU rule), missing, ready.

    ``sample_unready`` is the CPU-only readiness rule; every other metric (memory, per-pod custom
    values) counts a Running pod's sample whether or not the pod is Ready.
    """
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        # Being deleted, or failed: consumes nothing and will not come back. Succeeded pods are not
        # ignored (HPA does not); without a sample they count as missing.
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        if not has_sample(pod):
            missing.add(pod.name)
            continue
        if sample_unready is not None and sample_unready(pod):
            unready.add(pod.name)
            continue
        ready += 1
    return PodGroups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def group_pods(
    pods: Sequence[PodInfo],
    metrics: Mapping[str, PodUsage],
    resource: str,
    now: float,
    container: str | None = None,
    settings: EngineSettings = _DEFAULT_SETTINGS,
) -> PodGroups:
    """Split pods for a Resource metric like HPA's groupPods: ready, unready, missing, ignored."""

    def has_sample(pod: PodInfo) -> bool:
        sample = metrics.get(pod.name)
        return sample is not None and sample.total(resource, container) is not None

    def cpu_unready(pod: PodInfo) -> bool:
        return _cpu_sample_unready(pod, metrics[pod.name], now, settings)

    return _group(pods, has_sample, cpu_unready if resource == "cpu" else None)


def _cpu_sample_unready(pod: PodInfo, sample: PodUsage, now: float, settings: EngineSettings) -> bool:
    # CPU of a starting pod is distorted (JIT, caches): HPA ignores it while it can't be trusted.
    if pod.ready is None or pod.start_time is None:
        return True
    transition = pod.ready_transition_time
    if pod.start_time + settings.cpu_initialization_period > now:
        # Within the initialization period: unready, or the sample window began before readiness.
        return pod.ready is False or (
            transition is not None and sample.timestamp < transition + sample.window
        )
    # Later: unready only if the pod has not been ready since its initial readiness delay.
    return pod.ready is False and (
        transition is None or pod.start_time + settings.initial_readiness_delay > transition
    )


def _pod_request(pod: PodInfo, resource: str, container: str | None) -> int:
    total = 0
    found = False
    for name, requests in pod.requests.items():
        if container is not None and name != container:
            continue
        found = True
        value = requests.get(resource)
        if value is None:
            raise MetricCalcError(f"missing request for {resource} in container {name} of pod {pod.name}")
        total += _milli(resource, value)
    if not found:
        where = f"container {container}" if container else "containers"
        raise MetricCalcError(f"pod {pod.name} has no {where} with a {resource} request")
    return total


def _replicas_with_pod_fixups(
    current_replicas: int,
    usage: dict[str, int],
    groups: PodGroups,
    tolerance: Tolerance,
    ratio_of: Callable[[Mapping[str, int]], Fraction],
    assumed_full: Callable[[str], int],
) -> int:
    """The common tail of GetResourceReplicas / calcPlainMetricReplicas.

    Missing pods are assumed at 0 on scale-up and at 100% of target on scale-down, unready pods at 0
    on scale-up (ignored on scale-down): both damp the change. The result never flips direction.
    """
    ratio = ratio_of(usage)
    scale_up_with_unready = bool(groups.unready) and ratio > 1
    if not scale_up_with_unready and not groups.missing:
        if is_within_tolerance(ratio, tolerance):
            return current_replicas
        return math.ceil(ratio * groups.ready_count)
    adjusted = dict(usage)
    if groups.missing:
        for name in groups.missing:
            if ratio < 1:
                adjusted[name] = assumed_full(name)
            elif ratio > 1:
                adjusted[name] = 0
    if scale_up_with_unready:
        for name in groups.unready:
            adjusted[name] = 0
    new_ratio = ratio_of(adjusted)
    if is_within_tolerance(new_ratio, tolerance) or (ratio < 1 < new_ratio) or (new_ratio < 1 < ratio):
        return current_replicas
    new_replicas = math.ceil(new_ratio * len(adjusted))
    if (new_ratio < 1 and new_replicas > current_replicas) or (
        new_ratio > 1 and new_replicas < current_replicas
    ):
        return current_replicas
    return new_replicas


def _ready_usage(
    pods: Sequence[PodInfo],
    groups: PodGroups,
    value_of: Callable[[str], float],
    resource: str,
) -> dict[str, int]:
    """Integer usage of the ready pods (those with a sample that counts), by pod name."""
    skip = groups.unready | groups.missing | groups.ignored
    usage: dict[str, int] = {}
    for pod in pods:
        if pod.name in skip:
            continue
        try:
            usage[pod.name] = _milli(resource, value_of(pod.name))
        except MetricCalcError as exc:
            raise MetricCalcError(f"pod {pod.name}: {exc}") from exc
    if not usage:
        raise MetricCalcError("did not receive metrics for targeted pods (pods might be unready)")
    return usage


def _resource_value(
    metrics: Mapping[str, PodUsage], resource: str, container: str | None
) -> Callable[[str], float]:
    def value_of(name: str) -> float:
        value = metrics[name].total(resource, container)
        assert value is not None  # group_pods put pods without a value in ``missing``
        return value

    return value_of


def resource_utilization_replicas(
    *,
    current_replicas: int,
    target_utilization: int,
    resource: str,
    pods: Sequence[PodInfo],
    metrics: Mapping[str, PodUsage],
    now: float,
    tolerance: Tolerance,
    container: str | None = None,
    saturation: Saturation | None = None,
    settings: EngineSettings = _DEFAULT_SETTINGS,
) -> ReplicaCalc:
    """HPA Resource/ContainerResource metric with a Utilization target (percent of requests).

    With ``saturation`` (opt-in, not HPA): when the ready pods with a sample average at least
    ``saturation.utilization`` percent, the utilization is only a lower bound of the demand (a full
    pod cannot use more), so propose at least ``ceil(those pods x scaleUpFactor)``. Only ever raises
    a proposal that is already a scale-up (the threshold is above the target), never a scale-down.
    """
    if not pods:
        raise MetricCalcError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now, container, settings)
    usage = _ready_usage(pods, groups, _resource_value(metrics, resource, container), resource)
    requests = {p.name: _pod_request(p, resource, container) for p in pods if p.name not in groups.ignored}
    if sum(requests[n] for n in usage) == 0:
        raise MetricCalcError(f"{resource} requests of the measured pods sum to zero")

    def ratio_of(values: Mapping[str, int]) -> Fraction:
        # HPA truncates utilization to a whole percent before dividing by the target.
        utilization = sum(values.values()) * 100 // sum(requests[n] for n in values)
        return Fraction(utilization, target_utilization)

    utilization = sum(usage.values()) * 100 // sum(requests[n] for n in usage)
    # HPA assumes max(100%, target) for missing pods on scale-down: never less than "fully used".
    fallback_pct = max(100, target_utilization)
    replicas = _replicas_with_pod_fixups(
        current_replicas, usage, groups, tolerance, ratio_of, lambda n: requests[n] * fallback_pct // 100
    )
    detail = (
        f"{resource} utilization {utilization}% of {target_utilization}% target "
        f"over {len(usage)} ready pod(s)" + _pod_notes(groups)
    )
    if saturation is not None and utilization >= saturation.utilization:
        # Judged on, and multiplied from, the ready pods with a sample only: they are the pods whose
        # fullness was measured. Pods without a sample or still starting may already absorb the
        # excess, so multiplying the current count would compound on unmeasured pods every tick.
        factor = _frac(saturation.scale_up_factor)
        floor = math.ceil(len(usage) * factor)
        detail += (
            f"; saturated (>= {saturation.utilization}% of request, demand unmeasurable): "
            f"at least {len(usage)} x {_human(saturation.scale_up_factor)} = {floor}"
        )
        if floor > replicas:
            detail += f" instead of {replicas}"
        replicas = max(replicas, floor)
    return ReplicaCalc(replicas, Fraction(utilization), detail)


def _average_value_replicas(
    current_replicas: int, usage: dict[str, int], groups: PodGroups, target: int, tolerance: Tolerance
) -> tuple[int, int]:
    """HPA's calcPlainMetricReplicas on integer usage: (replicas, average of the ready pods)."""

    def ratio_of(values: Mapping[str, int]) -> Fraction:
        # HPA's GetMetricUsageRatio: integer average (truncated), then ratio to the target.
        return Fraction(_div_trunc(sum(values.values()), len(values)), target)

    replicas = _replicas_with_pod_fixups(
        current_replicas, usage, groups, tolerance, ratio_of, lambda _: target
    )
    return replicas, _div_trunc(sum(usage.values()), len(usage))


def resource_average_value_replicas(
    *,
    current_replicas: int,
    target_value: float,
    resource: str,
    pods: Sequence[PodInfo],
    metrics: Mapping[str, PodUsage],
    now: float,
    tolerance: Tolerance,
    container: str | None = None,
    settings: EngineSettings = _DEFAULT_SETTINGS,
) -> ReplicaCalc:
    """HPA Resource metric with an AverageValue target (usage per pod, e.g. 500m CPU)."""
    if not pods:
        raise MetricCalcError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now, container, settings)
    usage = _ready_usage(pods, groups, _resource_value(metrics, resource, container), resource)
    target = _positive_target(resource, target_value)
    replicas, average = _average_value_replicas(current_replicas, usage, groups, target, tolerance)
    unit = 1000 if resource != "memory" else 1
    fmt = format_memory if resource == "memory" else format_cpu
    detail = (
        f"average {resource} {fmt(average / unit)} per pod vs {fmt(target / unit)} target "
        f"over {len(usage)} ready pod(s)" + _pod_notes(groups)
    )
    return ReplicaCalc(replicas, Fraction(average, unit), detail)


def pods_average_value_replicas(
    *,
    current_replicas: int,
    target_average: float,
    pods: Sequence[PodInfo],
    values: Mapping[str, float],
    tolerance: Tolerance,
) -> ReplicaCalc:
    """HPA's Pods metric (calcPlainMetricReplicas): one value per pod, averaged over the ready pods.

    The CPU readiness rules do not apply (HPA applies them to the cpu resource only): a Running pod's
    value counts even while the pod is not Ready; only Pending pods are unready. Pods being deleted
    and Failed pods are ignored; pods without a value are missing (0 on scale-up, the target on
    scale-down); unready pods count as 0 on scale-up. Values of pods outside the target are unused.
    """
    if not pods:
        raise MetricCalcError("no pods returned by selector while calculating replica count")
    groups = _group(pods, lambda p: p.name in values, None)
    usage = _ready_usage(pods, groups, values.__getitem__, "")
    target = _positive_target("", target_average)
    replicas, average = _average_value_replicas(current_replicas, usage, groups, target, tolerance)
    detail = (
        f"average {_human(Fraction(average, 1000))} per pod vs {_human(Fraction(target, 1000))} target "
        f"over {len(usage)} ready pod(s)" + _pod_notes(groups)
    )
    return ReplicaCalc(replicas, Fraction(average, 1000), detail)


def _positive_target(resource: str, value: float) -> int:
    try:
        target = _milli(resource, value)
    except MetricCalcError as exc:
        raise MetricCalcError(f"target: {exc}") from exc
    if target <= 0:
        raise MetricCalcError(f"target {value:g} is below the resolution of 0.001")
    return target


def _pod_notes(groups: PodGroups) -> str:
    notes = []
    if groups.missing:
        notes.append(f"{len(groups.missing)} without metrics")
    if groups.unready:
        notes.append(f"{len(groups.unready)} not ready")
    if groups.ignored:
        notes.append(f"{len(groups.ignored)} deleting or failed, ignored")
    return f" ({', '.join(notes)})" if notes else ""


def prometheus_average_value_replicas(
    *, current_replicas: int, value: float, target_average: float, tolerance: Tolerance
) -> ReplicaCalc:
    """HPA External metric with AverageValue: ceil(value / target) unless within tolerance."""
    usage = _milli("", value)
    target = _positive_target("", target_average)
    if current_replicas == 0:
        replicas = math.ceil(Fraction(max(usage, 0), target))  # scale from zero
        return ReplicaCalc(replicas, Fraction(usage, 1000), f"value {_human(value)} at 0 replicas")
    ratio = Fraction(usage, target * current_replicas)
    replicas = current_replicas
    if not is_within_tolerance(ratio, tolerance):
        replicas = math.ceil(Fraction(max(usage, 0), target))
    average = Fraction(math.ceil(Fraction(usage, current_replicas)), 1000)
    detail = f"value {_human(value)} = {_human(average)} per replica vs {_human(target_average)} target"
    return ReplicaCalc(replicas, average, detail)


def prometheus_value_replicas(
    *, current_replicas: int, ready_replicas: int, value: float, target_value: float, tolerance: Tolerance
) -> ReplicaCalc:
    """HPA External metric with Value: ceil(readyPods * value / target) unless within tolerance."""
    ratio = Fraction(_milli("", value), _positive_target("", target_value))
    detail = f"value {_human(value)} vs {_human(target_value)} target"
    if current_replicas == 0:
        return ReplicaCalc(max(math.ceil(ratio), 0), _frac(value), detail + " at 0 replicas")
    if is_within_tolerance(ratio, tolerance):
        return ReplicaCalc(current_replicas, _frac(value), detail)
    # HPA multiplies by the ready pod count; with no ready pod (all starting) use the current count
    # rather than HPA's 0, which would scale a starting workload down to minReplicas.
    base = ready_replicas if ready_replicas > 0 else current_replicas
    return ReplicaCalc(max(math.ceil(ratio * base), 0), _frac(value), f"{detail} over {base} ready pod(s)")


def buffer_replicas(
    *,
    used: float,
    size: BufferSize,
    capacity_per_replica: float,
    min_free: float = 0.0,
    min_free_by: str = "",
) -> ReplicaCalc:
    """Agones-style buffer: replicas = ceil((used + buffer) / capacityPerReplica).

    ``buffer`` is ``size.absolute`` free slots, or ``size.percent`` of ``used``, raised to ``min_free``
    (a schedule's minFreeCapacity, named by ``min_free_by``) while one is open: a floor only ever raises.
    No tolerance: the point is to always have the free capacity ready before a burst arrives.
    """
    if capacity_per_replica <= 0:
        raise MetricCalcError(f"capacity per replica must be > 0, got {capacity_per_replica:g}")
    used_f = max(_frac(used), Fraction(0))
    free = used_f * _frac(size.percent) / 100 if size.percent is not None else _frac(size.absolute or 0.0)
    raised = f" (raised from {_human(free)} by {min_free_by})" if _frac(min_free) > free else ""
    free = max(free, _frac(min_free))
    replicas = math.ceil((used_f + free) / _frac(capacity_per_replica))
    detail = (
        f"used {_human(used_f)} + buffer {_human(free)}{raised} at {_human(capacity_per_replica)} per replica"
    )
    return ReplicaCalc(replicas, used_f, detail)


def _ready_count(obs: Observation) -> int:
    if obs.ready_replicas is not None:
        return obs.ready_replicas
    # HPA's getReadyPodsCount: Running and Ready, whether or not the pod is being deleted.
    return sum(1 for p in obs.pods if p.phase == "Running" and p.ready is True)


def propose(
    metric: MetricSpec,
    obs: Observation,
    now: float,
    tolerance: Tolerance,
    pods: Sequence[PodInfo] | None = None,
    settings: EngineSettings | None = None,
    min_free: float = 0.0,
    min_free_by: str = "",
) -> MetricProposal:
    """One metric's proposal from this tick's observation; errors become a failed proposal.

    ``pods`` overrides ``obs.pods`` (the planner passes pods with the new vertical requests).
    ``settings`` are the operator-wide knobs (HPA's controller-manager flags); None: HPA's defaults.
    ``min_free`` is the free capacity a Buffer metric keeps at least (an open schedule's minFreeCapacity,
    named by ``min_free_by``); other metric types ignore it.
    Proposals are whole numbers in [0, MAX_REPLICAS].
    """
    engine = settings if settings is not None else _DEFAULT_SETTINGS
    try:
        calc, target = _calculate(
            metric, obs, now, tolerance, obs.pods if pods is None else pods, engine, (min_free, min_free_by)
        )
    except MetricCalcError as exc:
        return MetricProposal(metric.name, metric.type, None, error=str(exc), target=_target_text(metric))
    except ArithmeticError as exc:  # a bug or an input no check foresaw: a failed metric, not a crash
        error = f"cannot compute a proposal from these values ({type(exc).__name__}: {exc})"
        return MetricProposal(metric.name, metric.type, None, error=error, target=_target_text(metric))
    replicas, detail = calc.replicas, calc.detail
    if replicas > MAX_REPLICAS:
        detail += f"; {replicas} capped at {MAX_REPLICAS}"
        replicas = MAX_REPLICAS
    # A negative per-pod value can make the formula negative; there is no such thing as -1 replicas.
    replicas = max(replicas, 0)
    return MetricProposal(
        name=metric.name,
        type=metric.type,
        replicas=replicas,
        value=_value_text(metric, calc.value),
        target=target,
        detail=detail,
    )


def _calculate(
    metric: MetricSpec,
    obs: Observation,
    now: float,
    tolerance: Tolerance,
    pods: Sequence[PodInfo],
    settings: EngineSettings,
    free_floor: tuple[float, str] = (0.0, ""),
) -> tuple[ReplicaCalc, str]:
    target_text = _target_text(metric)
    match metric:
        case ResourceMetricSpec(resource=res):
            calc = _calculate_resource(res, obs, now, tolerance, pods, settings)
        case PodsMetricSpec():
            calc = _calculate_pods(metric, _reading(metric, obs), obs, tolerance, pods)
        case PrometheusMetricSpec():
            calc = _calculate_prometheus(metric, _reading(metric, obs), obs, tolerance)
        case BufferMetricSpec():
            calc = _calculate_buffer(metric, _reading(metric, obs), free_floor)
        case _:
            assert_never(metric)
    return calc, target_text


def _reading(metric: MetricSpec, obs: Observation) -> Reading:
    """This metric's reading from the observation; a missing or failed one fails the metric."""
    reading = obs.readings.get(metric.name)
    if reading is None:
        raise MetricCalcError(f"no reading for metric {metric.name}")
    if isinstance(reading, MetricError):
        raise MetricCalcError(reading.message)
    return reading


def _calculate_pods(
    metric: PodsMetricSpec, reading: Reading, obs: Observation, tolerance: Tolerance, pods: Sequence[PodInfo]
) -> ReplicaCalc:
    if not isinstance(reading, PodsReading):
        raise MetricCalcError(f"metric {metric.name} expects one value per pod")
    member = metric.pods
    if member.target.average_value is None:
        raise MetricCalcError("a Pods metric needs an AverageValue target")
    return pods_average_value_replicas(
        current_replicas=obs.current_replicas,
        target_average=member.target.average_value,
        pods=pods,
        values=reading.values,
        tolerance=tolerance,
    )


def _calculate_prometheus(
    metric: PrometheusMetricSpec, reading: Reading, obs: Observation, tolerance: Tolerance
) -> ReplicaCalc:
    if not isinstance(reading, ScalarReading):
        raise MetricCalcError(f"metric {metric.name} expects a scalar reading")
    if not math.isfinite(reading.value):
        raise MetricCalcError(f"query returned a non-finite value ({reading.value})")
    tgt = metric.prometheus.target
    if tgt.type is MetricTargetType.AVERAGE_VALUE:
        assert tgt.average_value is not None
        return prometheus_average_value_replicas(
            current_replicas=obs.current_replicas,
            value=reading.value,
            target_average=tgt.average_value,
            tolerance=tolerance,
        )
    assert tgt.value is not None
    return prometheus_value_replicas(
        current_replicas=obs.current_replicas,
        ready_replicas=_ready_count(obs),
        value=reading.value,
        target_value=tgt.value,
        tolerance=tolerance,
    )


def _calculate_buffer(
    metric: BufferMetricSpec, reading: Reading, free_floor: tuple[float, str]
) -> ReplicaCalc:
    if not isinstance(reading, BufferReading):
        raise MetricCalcError(f"metric {metric.name} expects a buffer reading")
    capacity = reading.capacity_per_replica or metric.buffer.capacity_per_replica
    if capacity is None:
        raise MetricCalcError("capacity query returned no value")
    if not (math.isfinite(reading.used) and math.isfinite(capacity)):
        raise MetricCalcError("buffer query returned a non-finite value")
    min_free, by = free_floor
    return buffer_replicas(
        used=reading.used,
        size=metric.buffer.size,
        capacity_per_replica=capacity,
        min_free=min_free,
        min_free_by=by,
    )


def _calculate_resource(
    res: ResourceMetric,
    obs: Observation,
    now: float,
    tolerance: Tolerance,
    pods: Sequence[PodInfo],
    settings: EngineSettings,
) -> ReplicaCalc:
    if obs.pod_metrics is None:
        raise MetricCalcError("no pod metrics were fetched")
    if isinstance(obs.pod_metrics, MetricError):
        raise MetricCalcError(obs.pod_metrics.message)
    if res.target.type is MetricTargetType.UTILIZATION:
        assert res.target.average_utilization is not None
        return resource_utilization_replicas(
            current_replicas=obs.current_replicas,
            target_utilization=res.target.average_utilization,
            resource=res.name,
            pods=pods,
            metrics=obs.pod_metrics,
            now=now,
            tolerance=tolerance,
            container=res.container,
            saturation=res.saturation,
            settings=settings,
        )
    assert res.target.average_value is not None
    return resource_average_value_replicas(
        current_replicas=obs.current_replicas,
        target_value=res.target.average_value,
        resource=res.name,
        pods=pods,
        metrics=obs.pod_metrics,
        now=now,
        tolerance=tolerance,
        container=res.container,
        settings=settings,
    )


# status.currentMetrics[].value and .target are strings of at most 64 characters in the CRD.
_MAX_TEXT = 32


def _bounded(text: str, value: float | Fraction) -> str:
    """A quantity short enough for status: 1e+300 instead of 301 digits."""
    return text if len(text) <= _MAX_TEXT else f"{_as_float(value):.6g}"


def _target_text(metric: MetricSpec) -> str:
    try:
        return _target_text_unbounded(metric)
    except (ArithmeticError, ValueError):  # a non-finite target: the error message says which
        return "invalid"


def _target_text_unbounded(metric: MetricSpec) -> str:
    match metric:
        case ResourceMetricSpec(resource=res):
            tgt = res.target
            if tgt.type is MetricTargetType.UTILIZATION:
                return str(tgt.average_utilization)
            assert tgt.average_value is not None
            return _bounded(_resource_format(res)(tgt.average_value), tgt.average_value)
        case (
            PrometheusMetricSpec(prometheus=PrometheusMetric(target=tgt))
            | PodsMetricSpec(pods=PodsMetric(target=tgt))
        ):
            amount = (tgt.average_value if tgt.type is MetricTargetType.AVERAGE_VALUE else tgt.value) or 0.0
            return _bounded(format_quantity(amount), amount)
        case BufferMetricSpec(buffer=BufferMetric(size=size)):
            if size.percent is not None:
                return f"{size.percent:g}%"
            return _bounded(format_quantity(size.absolute or 0.0), size.absolute or 0.0)
        case _:
            assert_never(metric)


def _resource_format(res: ResourceMetric) -> Callable[[float], str]:
    return format_memory if res.name == "memory" else format_cpu


def _value_text(metric: MetricSpec, value: Fraction) -> str:
    number = _as_float(value)
    if not math.isfinite(number):
        return f"{number}"
    if (
        isinstance(metric, ResourceMetricSpec)
        and metric.resource.target.type is MetricTargetType.AVERAGE_VALUE
    ):
        return _bounded(_resource_format(metric.resource)(number), number)
    return _bounded(format_quantity(number), number)


def _human(value: float | Fraction) -> str:
    """Numbers in reason texts: people read 72.4, not the quantity 72400m (status fields keep quantities)."""
    number = _as_float(value)
    return f"{number:.6g}" if abs(number) < 1e6 or abs(number) >= 1e15 else f"{number:.0f}"


def _as_float(value: float | Fraction) -> float:
    try:
        return float(value)
    except OverflowError:  # a Fraction beyond float range: only ever shown, never computed with
        return math.inf if value > 0 else -math.inf
