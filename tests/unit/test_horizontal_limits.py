"""Tolerances without an upper bound, the int32 cap, and inputs that must never raise."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.api.spec import (
    BufferMetric,
    BufferMetricSpec,
    BufferSize,
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    MetricType,
    PodsMetric,
    PodsMetricSpec,
    PrometheusMetric,
    PrometheusMetricSpec,
    ResourceMetric,
    ResourceMetricSpec,
    Tolerance,
)
from surge.decision.horizontal import MAX_REPLICAS, MetricCalcError, is_within_tolerance, propose
from surge.decision.model import BufferReading, Observation, PodsReading, PodUsage, Reading, ScalarReading
from tests.unit.builders import NOW, cpu_usage, pods, usage

AVG = MetricTargetType.AVERAGE_VALUE


def cpu(utilization: int = 50) -> MetricSpec:
    target = MetricTarget(MetricTargetType.UTILIZATION, average_utilization=utilization)
    return ResourceMetricSpec("cpu", ResourceMetric("cpu", target))


def cpu_average(cores: float = 0.5) -> MetricSpec:
    return ResourceMetricSpec("cpu", ResourceMetric("cpu", MetricTarget(AVG, average_value=cores)))


def prom(average: float | None = None, value: float | None = None) -> MetricSpec:
    target = (
        MetricTarget(AVG, average_value=average)
        if average is not None
        else MetricTarget(MetricTargetType.VALUE, value=value)
    )
    return PrometheusMetricSpec("prometheus-0", PrometheusMetric("q", target))


def per_pod(average: float = 10.0) -> MetricSpec:
    return PodsMetricSpec("pods-0", PodsMetric("q", MetricTarget(AVG, average_value=average)))


def buffer(capacity: float = 100.0, size: BufferSize | None = None) -> MetricSpec:
    return BufferMetricSpec(
        "buffer-0", BufferMetric("u", size or BufferSize(absolute=0), capacity_per_replica=capacity)
    )


def obs_for(metric: MetricSpec, value: float, current: int = 4) -> Observation:
    """An observation where every one of ``current`` pods (or the one query) reports ``value``."""
    readings: dict[str, Reading] = {}
    if metric.type is MetricType.PODS:
        readings[metric.name] = PodsReading({f"p{i}": value for i in range(current)})
    elif metric.type is MetricType.PROMETHEUS:
        readings[metric.name] = ScalarReading(value)
    elif metric.type is MetricType.BUFFER:
        readings[metric.name] = BufferReading(value)
    return Observation(
        current_replicas=current,
        pods=pods(current),
        pod_metrics=cpu_usage([value] * current) if metric.type is MetricType.RESOURCE else None,
        readings=readings,
    )


# ---- tolerances >= 0 without an upper bound (HPA validates only >= 0)

INF = math.inf


@pytest.mark.parametrize(
    ("ratio", "tolerance", "within"),
    [
        (Fraction(0), Tolerance(scale_up=0.1, scale_down=1.0), True),  # 1 - 1.0 = 0: idle never scales down
        (Fraction(0), Tolerance(scale_up=0.1, scale_down=1.5), True),
        (Fraction(1, 1000), Tolerance(scale_up=0.1, scale_down=0.999), True),
        (Fraction(0), Tolerance(scale_up=0.1, scale_down=0.999), False),
        (Fraction(3), Tolerance(scale_up=2.0, scale_down=0.1), True),  # the edge is inclusive
        (Fraction(3001, 1000), Tolerance(scale_up=2.0, scale_down=0.1), False),
        (Fraction(10**12), Tolerance(scale_up=INF, scale_down=0.1), True),  # never scales up
        (Fraction(0), Tolerance(scale_up=0.1, scale_down=INF), True),
        (Fraction(-5), Tolerance(scale_up=0.1, scale_down=INF), True),
        (Fraction(-5), Tolerance(scale_up=0.1, scale_down=1.5), False),  # negative values are below 1 - 1.5
    ],
)
def test_tolerance_without_upper_bound(ratio: Fraction, tolerance: Tolerance, within: bool) -> None:
    assert is_within_tolerance(ratio, tolerance) is within


@pytest.mark.parametrize("bad", [Tolerance(scale_up=math.nan), Tolerance(scale_down=-0.1)])
def test_invalid_tolerance_is_a_clear_error(bad: Tolerance) -> None:
    with pytest.raises(MetricCalcError, match=r"tolerance scale(Up|Down) must be a number >= 0"):
        is_within_tolerance(Fraction(1), bad)
    prop = propose(cpu(), obs_for(cpu(), 0.1), NOW, bad)
    assert not prop.ok
    assert "must be a number >= 0" in prop.error


NEVER_DOWN = Tolerance(scale_up=0.1, scale_down=1.5)
NEVER_UP = Tolerance(scale_up=INF, scale_down=0.1)
ALL_TOLERANT = [cpu(), cpu_average(0.5), per_pod(0.5), prom(average=0.5), prom(value=2.0)]


@pytest.mark.parametrize("metric", ALL_TOLERANT, ids=lambda m: f"{m.type}-{m.name}")
def test_scale_down_tolerance_above_one_never_scales_down(metric: MetricSpec) -> None:
    idle = obs_for(metric, 0.0)
    assert propose(metric, idle, NOW, Tolerance()).replicas == 0 or metric.type is MetricType.RESOURCE
    assert propose(metric, idle, NOW, NEVER_DOWN).replicas == 4
    busy = obs_for(metric, 5.0)  # 10x the targets: scale-up is unaffected
    assert (propose(metric, busy, NOW, NEVER_DOWN).replicas or 0) > 4


@pytest.mark.parametrize("metric", ALL_TOLERANT, ids=lambda m: f"{m.type}-{m.name}")
def test_infinite_scale_up_tolerance_never_scales_up(metric: MetricSpec) -> None:
    assert propose(metric, obs_for(metric, 1e9), NOW, NEVER_UP).replicas == 4
    assert (propose(metric, obs_for(metric, 0.01), NOW, NEVER_UP).replicas or 0) < 4


def test_resource_idle_scales_down_with_default_tolerance() -> None:
    # Counterpart of the "never scales down" test for cpu: 0% utilization -> ceil(0 x 4) = 0 proposal.
    assert propose(cpu(), obs_for(cpu(), 0.0), NOW, Tolerance()).replicas == 0


# ---- the int32 cap, for every metric type

HUGE = [cpu(), cpu_average(0.001), per_pod(0.001), prom(average=0.001), prom(value=0.001)]


@pytest.mark.parametrize("metric", HUGE, ids=lambda m: f"{m.type}-{m.name}")
@pytest.mark.parametrize("value", [1e12, 1e300, 1.7976931348623157e308])
def test_huge_values_are_capped_at_int32(metric: MetricSpec, value: float) -> None:
    prop = propose(metric, obs_for(metric, value), NOW, Tolerance())
    assert prop.replicas == MAX_REPLICAS == 2**31 - 1
    assert f"capped at {MAX_REPLICAS}" in prop.detail
    assert len(prop.value) <= 64
    assert len(prop.target) <= 64


@pytest.mark.parametrize(
    ("used", "capacity", "size"),
    [
        (1e300, 1.0, BufferSize(absolute=0)),
        (1.0, 1e-300, BufferSize(absolute=0)),
        (0.0, 1.0, BufferSize(absolute=1e300)),
        (1e308, 1.0, BufferSize(percent=1000)),
    ],
)
def test_buffer_is_capped_at_int32(used: float, capacity: float, size: BufferSize) -> None:
    metric = buffer(capacity, size)
    prop = propose(
        metric, Observation(current_replicas=1, readings={"buffer-0": BufferReading(used)}), NOW, Tolerance()
    )
    assert prop.replicas == MAX_REPLICAS
    assert len(prop.value) <= 64
    assert len(prop.target) <= 64


def test_just_below_the_cap_is_exact() -> None:
    # 2^31 - 2 replicas' worth: exact arithmetic, no float rounding up to the cap.
    metric = prom(average=1.0)
    prop = propose(
        metric,
        Observation(current_replicas=1, readings={"prometheus-0": ScalarReading(2**31 - 2)}),
        NOW,
        Tolerance(),
    )
    assert prop.replicas == 2**31 - 2
    assert "capped" not in prop.detail


# ---- non-finite inputs: a failed metric with a message, never an exception


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("metric", [*HUGE, buffer()], ids=lambda m: f"{m.type}-{m.name}")
def test_non_finite_values_fail_the_metric(metric: MetricSpec, value: float) -> None:
    prop = propose(metric, obs_for(metric, value), NOW, Tolerance())
    assert not prop.ok
    assert "finite" in prop.error


@pytest.mark.parametrize("target", [math.inf, math.nan])
@pytest.mark.parametrize("make", [cpu_average, per_pod, lambda t: prom(average=t), lambda t: prom(value=t)])
def test_non_finite_targets_fail_the_metric(make: object, target: float) -> None:
    metric = make(target)  # type: ignore[operator]
    prop = propose(metric, obs_for(metric, 1.0), NOW, Tolerance())
    assert not prop.ok
    assert "target: value" in prop.error
    assert len(prop.target) <= 64


def test_non_finite_request_fails_the_metric() -> None:
    obs = Observation(
        current_replicas=2, pods=pods(2, cpu_request=math.inf), pod_metrics=cpu_usage([0.5, 0.5])
    )
    prop = propose(cpu(), obs, NOW, Tolerance())
    assert not prop.ok
    assert "not a finite number" in prop.error


def test_non_finite_capacity_query_fails_the_metric() -> None:
    reading = BufferReading(used=10.0, capacity_per_replica=math.inf)
    prop = propose(
        buffer(), Observation(current_replicas=1, readings={"buffer-0": reading}), NOW, Tolerance()
    )
    assert "non-finite" in prop.error


finite_or_not = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e308, -1e308, 2.0**31, 2.0**31 - 1]),
)


@settings(max_examples=300, deadline=None)
@given(
    metric=st.sampled_from(
        [*HUGE, cpu(), per_pod(), prom(average=3.0), prom(value=3.0), buffer(), buffer(1e-300)]
    ),
    values=st.lists(finite_or_not, min_size=1, max_size=5),
    current=st.integers(min_value=0, max_value=2**31 - 1),
    tolerance=st.builds(Tolerance, finite_or_not.map(abs), finite_or_not.map(abs)),
)
def test_propose_never_raises_and_stays_in_int32(
    metric: MetricSpec, values: list[float], current: int, tolerance: Tolerance
) -> None:
    n = len(values)
    obs = Observation(
        current_replicas=current,
        pods=pods(n),
        pod_metrics={f"p{i}": usage(cpu=v) for i, v in enumerate(values)}
        if isinstance(metric, ResourceMetricSpec)
        else None,
        readings={
            "pods-0": PodsReading({f"p{i}": v for i, v in enumerate(values)}),
            "prometheus-0": ScalarReading(values[0]),
            "buffer-0": BufferReading(values[0], values[-1] if n > 1 else None),
        },
    )
    prop = propose(metric, obs, NOW, tolerance)
    if prop.ok:
        assert prop.replicas is not None
        assert 0 <= prop.replicas <= MAX_REPLICAS
        assert len(prop.value) <= 64
    else:
        assert prop.error
    assert len(prop.target) <= 64


def test_pod_usage_type_is_what_the_property_test_builds() -> None:
    # Guard for the property above: usage(cpu=v) is a PodUsage whose total is v.
    assert isinstance(usage(cpu=1.5), PodUsage)
    assert usage(cpu=1.5).total("cpu") == 1.5
