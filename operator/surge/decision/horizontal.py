"""Per-metric replica proposals with the HPA controller's semantics (replica_calculator.go).

Arithmetic is exact: values become integer milli-units (CPU millicores, memory bytes, other values
x1000) and ratios are Fractions, so ``ceil(1.1 * 10)`` is 11, not float64's 12.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from surge.api.quantity import format_cpu, format_memory, format_quantity
from surge.api.spec import BufferSize, MetricSpec, MetricTargetType, MetricType, Saturation, Tolerance
from surge.decision.model import (
    BufferReading,
    EngineSettings,
    MetricError,
    Observation,
    PodInfo,
    PodUsage,
    ScalarReading,
)

__all__ = [
    "CPU_INITIALIZATION_PERIOD",
    "DELAY_OF_INITIAL_READINESS_STATUS",
    "MetricCalcError",
    "MetricProposal",
    "PodGroups",
    "ReplicaCalc",
    "buffer_replicas",
    "group_pods",
    "is_within_tolerance",
    "prometheus_average_value_replicas",
    "prometheus_value_replicas",
    "propose",
    "resource_average_value_replicas",
    "resource_utilization_replicas",
]

# kube-controller-manager defaults (--horizontal-pod-autoscaler-cpu-initialization-period and
# --horizontal-pod-autoscaler-initial-readiness-delay).
CPU_INITIALIZATION_PERIOD = 300.0
DELAY_OF_INITIAL_READINESS_STATUS = 30.0


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
    return Fraction(repr(float(value)))


def _milli(resource: str, value: float) -> int:
    """Integer units like HPA: CPU and plain values in milli-units, memory in bytes."""
    return round(value) if resource == "memory" else round(value * 1000)


def is_within_tolerance(ratio: Fraction, tolerance: Tolerance) -> bool:
    """HPA's asymmetric tolerance: no change while 1 - scaleDown <= ratio <= 1 + scaleUp."""
    return 1 - _frac(tolerance.scale_down) <= ratio <= 1 + _frac(tolerance.scale_up)


def group_pods(
    pods: Sequence[PodInfo],
    metrics: Mapping[str, PodUsage],
    resource: str,
    now: float,
    container: str | None = None,
    cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD,
    delay_of_initial_readiness_status: float = DELAY_OF_INITIAL_READINESS_STATUS,
) -> PodGroups:
    """Split pods like HPA's groupPods: ready (with a sample), unready, missing sample, ignored."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        # Deleted and finished pods consume nothing and will not come back.
        if pod.deleting or pod.phase in ("Failed", "Succeeded"):
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        sample = metrics.get(pod.name)
        if sample is None or sample.total(resource, container) is None:
            missing.add(pod.name)
            continue
        if resource == "cpu" and _cpu_sample_unready(
            pod, sample, now, cpu_initialization_period, delay_of_initial_readiness_status
        ):
            unready.add(pod.name)
            continue
        ready += 1
    return PodGroups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def _cpu_sample_unready(pod: PodInfo, sample: PodUsage, now: float, init_period: float, delay: float) -> bool:
    # CPU of a starting pod is distorted (JIT, caches): HPA ignores it while it can't be trusted.
    if pod.ready is None or pod.start_time is None:
        return True
    if pod.start_time + init_period > now:
        # Within the initialization period: unready, or the sample window began before readiness.
        transition = pod.ready_transition_time
        return pod.ready is False or (
            transition is not None and sample.timestamp < transition + sample.window
        )
    # Later: unready only if the pod has never been ready since it started.
    transition = pod.ready_transition_time
    return pod.ready is False and (transition is None or pod.start_time + delay > transition)


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
    metrics: Mapping[str, PodUsage],
    groups: PodGroups,
    resource: str,
    container: str | None,
) -> dict[str, int]:
    skip = groups.unready | groups.missing | groups.ignored
    usage: dict[str, int] = {}
    for pod in pods:
        if pod.name in skip:
            continue
        value = metrics[pod.name].total(resource, container)
        assert value is not None  # group_pods put pods without a value in ``missing``
        usage[pod.name] = _milli(resource, value)
    if not usage:
        raise MetricCalcError("did not receive metrics for targeted pods (pods might be unready)")
    return usage


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
) -> ReplicaCalc:
    """HPA Resource/ContainerResource metric with a Utilization target (percent of requests).

    With ``saturation`` (opt-in, not HPA): when the ready pods with a sample average at least
    ``saturation.utilization`` percent, the utilization is only a lower bound of the demand (a full
    pod cannot use more), so propose at least ``ceil(those pods x scaleUpFactor)``. Only ever raises
    a proposal that is already a scale-up (the threshold is above the target), never a scale-down.
    """
    if not pods:
        raise MetricCalcError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now, container)
    usage = _ready_usage(pods, metrics, groups, resource, container)
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
) -> ReplicaCalc:
    """HPA Resource metric with an AverageValue target (usage per pod, e.g. 500m CPU)."""
    if not pods:
        raise MetricCalcError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now, container)
    usage = _ready_usage(pods, metrics, groups, resource, container)
    target = _positive_target(resource, target_value)

    def ratio_of(values: Mapping[str, int]) -> Fraction:
        # HPA's GetMetricUsageRatio: integer average, then ratio to the target.
        return Fraction(sum(values.values()) // len(values), target)

    average = sum(usage.values()) // len(usage)
    replicas = _replicas_with_pod_fixups(
        current_replicas, usage, groups, tolerance, ratio_of, lambda _: target
    )
    unit = 1000 if resource != "memory" else 1
    fmt = format_memory if resource == "memory" else format_cpu
    detail = (
        f"average {resource} {fmt(average / unit)} per pod vs {fmt(target / unit)} target "
        f"over {len(usage)} ready pod(s)" + _pod_notes(groups)
    )
    return ReplicaCalc(replicas, Fraction(average, unit), detail)


def _positive_target(resource: str, value: float) -> int:
    target = _milli(resource, value)
    if target <= 0:
        raise MetricCalcError(f"target {value:g} is below the resolution of 0.001")
    return target


def _pod_notes(groups: PodGroups) -> str:
    notes = []
    if groups.missing:
        notes.append(f"{len(groups.missing)} without metrics")
    if groups.unready:
        notes.append(f"{len(groups.unready)} not ready")
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
    detail = (
        f"value {_human(value)} = {_human(float(average))} per replica vs {_human(target_average)} target"
    )
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


def buffer_replicas(*, used: float, size: BufferSize, capacity_per_replica: float) -> ReplicaCalc:
    """Agones-style buffer: replicas = ceil((used + buffer) / capacityPerReplica).

    ``buffer`` is ``size.absolute`` free slots, or ``size.percent`` of ``used``. No tolerance: the
    point is to always have the free capacity ready before a burst arrives.
    """
    if capacity_per_replica <= 0:
        raise MetricCalcError(f"capacity per replica must be > 0, got {capacity_per_replica:g}")
    used_f = max(_frac(used), Fraction(0))
    free = used_f * _frac(size.percent) / 100 if size.percent is not None else _frac(size.absolute or 0.0)
    replicas = math.ceil((used_f + free) / _frac(capacity_per_replica))
    detail = (
        f"used {_human(float(used_f))} + buffer {_human(float(free))} "
        f"at {_human(capacity_per_replica)} per replica"
    )
    return ReplicaCalc(replicas, used_f, detail)


def _ready_count(obs: Observation) -> int:
    if obs.ready_replicas is not None:
        return obs.ready_replicas
    return sum(1 for p in obs.pods if p.phase == "Running" and p.ready is True and not p.deleting)


def propose(
    metric: MetricSpec,
    obs: Observation,
    now: float,
    tolerance: Tolerance,
    pods: Sequence[PodInfo] | None = None,
    settings: EngineSettings | None = None,
) -> MetricProposal:
    """One metric's proposal from this tick's observation; errors become a failed proposal.

    ``pods`` overrides ``obs.pods`` (the planner passes pods with the new vertical requests).
    """
    try:
        calc, target = _calculate(metric, obs, now, tolerance, obs.pods if pods is None else pods)
    except MetricCalcError as exc:
        return MetricProposal(metric.name, metric.type, None, error=str(exc), target=_target_text(metric))
    return MetricProposal(
        name=metric.name,
        type=metric.type,
        replicas=calc.replicas,
        value=_value_text(metric, calc.value),
        target=target,
        detail=calc.detail,
    )


def _calculate(
    metric: MetricSpec, obs: Observation, now: float, tolerance: Tolerance, pods: Sequence[PodInfo]
) -> tuple[ReplicaCalc, str]:
    target_text = _target_text(metric)
    if metric.resource is not None:
        res = metric.resource
        if obs.pod_metrics is None:
            raise MetricCalcError("no pod metrics were fetched")
        if isinstance(obs.pod_metrics, MetricError):
            raise MetricCalcError(obs.pod_metrics.message)
        if res.target.type is MetricTargetType.UTILIZATION:
            assert res.target.average_utilization is not None
            calc = resource_utilization_replicas(
                current_replicas=obs.current_replicas,
                target_utilization=res.target.average_utilization,
                resource=res.name,
                pods=pods,
                metrics=obs.pod_metrics,
                now=now,
                tolerance=tolerance,
                container=res.container,
                saturation=res.saturation,
            )
        else:
            assert res.target.average_value is not None
            calc = resource_average_value_replicas(
                current_replicas=obs.current_replicas,
                target_value=res.target.average_value,
                resource=res.name,
                pods=pods,
                metrics=obs.pod_metrics,
                now=now,
                tolerance=tolerance,
                container=res.container,
            )
        return calc, target_text
    reading = obs.readings.get(metric.name)
    if reading is None:
        raise MetricCalcError(f"no reading for metric {metric.name}")
    if isinstance(reading, MetricError):
        raise MetricCalcError(reading.message)
    if metric.prometheus is not None:
        if not isinstance(reading, ScalarReading):
            raise MetricCalcError(f"metric {metric.name} expects a scalar reading")
        if not math.isfinite(reading.value):
            raise MetricCalcError(f"query returned a non-finite value ({reading.value})")
        tgt = metric.prometheus.target
        if tgt.type is MetricTargetType.AVERAGE_VALUE:
            assert tgt.average_value is not None
            calc = prometheus_average_value_replicas(
                current_replicas=obs.current_replicas,
                value=reading.value,
                target_average=tgt.average_value,
                tolerance=tolerance,
            )
        else:
            assert tgt.value is not None
            calc = prometheus_value_replicas(
                current_replicas=obs.current_replicas,
                ready_replicas=_ready_count(obs),
                value=reading.value,
                target_value=tgt.value,
                tolerance=tolerance,
            )
        return calc, target_text
    assert metric.buffer is not None
    if not isinstance(reading, BufferReading):
        raise MetricCalcError(f"metric {metric.name} expects a buffer reading")
    capacity = reading.capacity_per_replica or metric.buffer.capacity_per_replica
    if capacity is None:
        raise MetricCalcError("capacity query returned no value")
    if not (math.isfinite(reading.used) and math.isfinite(capacity)):
        raise MetricCalcError("buffer query returned a non-finite value")
    return buffer_replicas(
        used=reading.used, size=metric.buffer.size, capacity_per_replica=capacity
    ), target_text


def _target_text(metric: MetricSpec) -> str:
    if metric.resource is not None:
        tgt = metric.resource.target
        if tgt.type is MetricTargetType.UTILIZATION:
            return str(tgt.average_utilization)
        assert tgt.average_value is not None
        fmt = format_memory if metric.resource.name == "memory" else format_cpu
        return fmt(tgt.average_value)
    if metric.prometheus is not None:
        tgt = metric.prometheus.target
        amount = tgt.average_value if tgt.type is MetricTargetType.AVERAGE_VALUE else tgt.value
        return format_quantity(amount or 0.0)
    assert metric.buffer is not None
    size = metric.buffer.size
    return f"{size.percent:g}%" if size.percent is not None else format_quantity(size.absolute or 0.0)


def _value_text(metric: MetricSpec, value: Fraction) -> str:
    if metric.resource is not None and metric.resource.target.type is MetricTargetType.AVERAGE_VALUE:
        return format_memory(float(value)) if metric.resource.name == "memory" else format_cpu(float(value))
    return format_quantity(float(value))


def _human(value: float) -> str:
    """Numbers in reason texts: people read 72.4, not the quantity 72400m (status fields keep quantities)."""
    return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
