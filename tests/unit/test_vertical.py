"""Decaying histogram and the VPA-style recommender, with time injected."""

from __future__ import annotations

from typing import Any

import pytest

from surge.api.quantity import format_cpu, format_memory
from surge.api.spec import ResourceAmounts, VerticalSpec
from surge.decision.histogram import CPU_HISTOGRAM, MEMORY_HISTOGRAM, DecayingHistogram, HistogramOptions
from surge.decision.model import ContainerResources, MetricError, Observation, OOMEvent, PodUsage
from surge.decision.vertical import (
    SHRINK_CONFIDENCE,
    VerticalOutcome,
    VerticalState,
    plan_resizes,
    recommend,
    vertical_step,
)
from tests.unit.builders import MI, spec

HALF_LIFE = 600.0


# ---- histogram


def test_bucket_layout_matches_vpa() -> None:
    assert CPU_HISTOGRAM.num_buckets == 176
    assert MEMORY_HISTOGRAM.num_buckets == 176
    assert CPU_HISTOGRAM.bucket_start(0) == 0
    assert CPU_HISTOGRAM.bucket_start(1) == pytest.approx(0.01)
    assert CPU_HISTOGRAM.bucket_start(2) == pytest.approx(0.0205)
    assert CPU_HISTOGRAM.find_bucket(0.0) == 0
    assert CPU_HISTOGRAM.find_bucket(0.015) == 1
    assert CPU_HISTOGRAM.find_bucket(1e9) == CPU_HISTOGRAM.num_buckets - 1
    assert CPU_HISTOGRAM.bucket_start(CPU_HISTOGRAM.num_buckets - 1) >= 1000


@pytest.mark.parametrize("value", [0.001, 0.05, 0.5, 1, 3.7, 64, 999])
def test_percentile_is_the_end_of_the_sample_bucket(value: float) -> None:
    hist = DecayingHistogram(CPU_HISTOGRAM, HALF_LIFE).add_samples([(value, 1.0, 0.0)])
    result = hist.percentile(0.9)
    assert result > value
    assert result == CPU_HISTOGRAM.bucket_start(CPU_HISTOGRAM.find_bucket(value) + 1)
    if value >= 1:
        assert result <= value * 1.06  # buckets approach 5% width (the first ones are wider)


def test_percentiles_follow_weights() -> None:
    samples = [(0.1, 1.0, 0.0)] * 8 + [(1.0, 1.0, 0.0)] * 2
    hist = DecayingHistogram(CPU_HISTOGRAM, HALF_LIFE).add_samples(samples)
    assert hist.percentile(0.5) == pytest.approx(0.1, rel=0.11)
    assert hist.percentile(0.8) == pytest.approx(0.1, rel=0.11)
    assert hist.percentile(0.9) == pytest.approx(1.0, rel=0.06)
    assert DecayingHistogram(CPU_HISTOGRAM, HALF_LIFE).percentile(0.9) == 0.0


def test_newer_samples_weigh_more() -> None:
    # One sample each, one half-life apart: weights 1 and 2, so the median is the newer value.
    hist = DecayingHistogram(CPU_HISTOGRAM, HALF_LIFE).add_samples([(1.0, 1.0, 0.0), (2.0, 1.0, HALF_LIFE)])
    assert hist.percentile(0.5) == pytest.approx(2.0, rel=0.06)
    same_time = DecayingHistogram(CPU_HISTOGRAM, HALF_LIFE).add_samples([(1.0, 1.0, 0.0), (2.0, 1.0, 0.0)])
    assert same_time.percentile(0.5) == pytest.approx(1.0, rel=0.06)


def test_reference_shift_keeps_ratios_and_drops_ancient_samples() -> None:
    hist = DecayingHistogram(CPU_HISTOGRAM, 1.0).add_samples([(1.0, 1.0, 0.0)])
    hist = hist.add_samples([(2.0, 1.0, 150.0), (3.0, 2.0, 150.0)])  # 150 half-lives later: renormalised
    assert hist.reference_time == 150.0
    assert len(hist.weights) == 2  # the sample at t=0 decayed below epsilon
    assert hist.percentile(0.3) == pytest.approx(2.0, rel=0.06)
    assert hist.percentile(0.5) == pytest.approx(3.0, rel=0.06)


def test_subtract_and_round_trip() -> None:
    hist = DecayingHistogram(MEMORY_HISTOGRAM, HALF_LIFE).add_samples(
        [(300 * MI, 1.0, 10.0), (500 * MI, 1.0, 10.0)]
    )
    hist = hist.add_samples([(500 * MI, -1.0, 10.0)])
    assert len(hist.weights) == 1
    restored = DecayingHistogram.from_dict(hist.to_dict(), MEMORY_HISTOGRAM, HALF_LIFE)
    assert restored == hist
    with pytest.raises(ValueError, match="checkpoint"):
        DecayingHistogram.from_dict({"buckets": {"999": 1.0}}, MEMORY_HISTOGRAM, HALF_LIFE)
    with pytest.raises(ValueError, match="checkpoint"):
        DecayingHistogram.from_dict({"buckets": {"x": 1.0}}, MEMORY_HISTOGRAM, HALF_LIFE)


def test_custom_options() -> None:
    opts = HistogramOptions(first_bucket_size=1.0, max_value=100.0, ratio=2.0)
    assert [opts.bucket_start(i) for i in range(4)] == [0, 1, 3, 7]
    assert opts.find_bucket(2.5) == 1


# ---- recommender


def vspec(**overrides: Any) -> VerticalSpec:
    raw: dict[str, Any] = {"updateMode": "InPlace", "halfLife": "10m"}
    raw.update(overrides)
    parsed = spec(vertical=raw).vertical
    assert parsed is not None
    return parsed


def template(
    cpu: float | None = 0.25,
    memory: float | None = 256 * MI,
    cpu_limit: float | None = None,
    memory_limit: float | None = None,
) -> list[ContainerResources]:
    return [ContainerResources("app", ResourceAmounts(cpu, memory), ResourceAmounts(cpu_limit, memory_limit))]


def feed(
    vs: VerticalSpec,
    *,
    cpu: float = 0.5,
    memory: float = 300 * MI,
    pods: int = 3,
    seconds: float = 3600,
    step: float = 15,
    containers: list[ContainerResources] | None = None,
    state: VerticalState | None = None,
    start: float = 0.0,
) -> tuple[VerticalState, VerticalOutcome]:
    """Constant usage on ``pods`` pods, one sample per ``step`` seconds."""
    containers = containers if containers is not None else template()
    state = state or VerticalState()
    outcome = None
    t = start
    while t <= start + seconds:
        metrics = {
            f"p{i}": PodUsage(t, {"app": ResourceAmounts(cpu=cpu, memory=memory)}) for i in range(pods)
        }
        outcome = vertical_step(
            state, vs, Observation(current_replicas=pods, pod_metrics=metrics, containers=containers), t
        )
        state = outcome.state
        t += step
    assert outcome is not None
    return state, outcome


def test_steady_usage_recommendation() -> None:
    _, out = feed(vspec())
    (est,) = out.estimates
    assert est.container == "app"
    # P90 of a constant is the end of its 5% bucket, plus the 15% safety margin.
    assert est.target.cpu == pytest.approx(0.5 * 1.15, rel=0.06)
    assert est.target.memory == pytest.approx(300 * MI * 1.15, rel=0.06)
    assert est.lower_bound.cpu is not None
    assert est.upper_bound.cpu is not None
    assert est.lower_bound.cpu <= est.target.cpu <= est.upper_bound.cpu
    assert est.uncapped_target == est.target
    status = est.to_status()
    assert status.target["cpu"].endswith("m")
    assert status.target["memory"].endswith("Mi")
    # Resize: 250m -> ~588m (over the 10% gate); memory 256Mi -> ~354Mi.
    (resize,) = out.resizes
    assert resize.new_requests == est.target
    assert "cpu 250m ->" in resize.reason
    assert resize.to_dict()["resources"]["requests"] == {
        "cpu": format_cpu(est.target.cpu),
        "memory": format_memory(est.target.memory or 0),
    }


def test_bounds_are_wide_with_little_history_and_narrow_later() -> None:
    _, young = feed(vspec(), seconds=60)
    _, old = feed(vspec(), seconds=6 * 3600, step=60)
    y, o = young.estimates[0], old.estimates[0]
    assert y.upper_bound.cpu is not None
    assert o.upper_bound.cpu is not None
    assert y.upper_bound.cpu > o.upper_bound.cpu
    assert y.lower_bound.cpu is not None
    assert o.lower_bound.cpu is not None
    assert y.lower_bound.cpu < o.lower_bound.cpu


def test_caps_and_uncapped_target() -> None:
    vs = vspec(
        containerPolicies=[
            {"containerName": "app", "maxAllowed": {"cpu": "400m"}, "minAllowed": {"memory": "1Gi"}}
        ]
    )
    _, out = feed(vs)
    (est,) = out.estimates
    assert est.target.cpu == 0.4
    assert est.upper_bound.cpu == 0.4
    assert est.target.memory == 2**30
    assert est.lower_bound.memory == 2**30
    assert est.uncapped_target.cpu is not None
    assert est.uncapped_target.cpu > 0.4


def test_controlled_resources_and_mode_off() -> None:
    _, out = feed(vspec(containerPolicies=[{"containerName": "app", "controlledResources": ["cpu"]}]))
    (est,) = out.estimates
    assert est.target.memory is None
    assert out.resizes[0].new_requests.memory == 256 * MI  # untouched
    _, off = feed(vspec(containerPolicies=[{"containerName": "*", "mode": "Off"}]))
    assert off.estimates == ()
    assert off.resizes == ()


def test_update_mode_off_recommends_without_resizing() -> None:
    _, out = feed(vspec(updateMode="Off"))
    assert out.estimates
    assert out.resizes == ()


def test_min_change_fraction_gates_small_moves() -> None:
    vs = vspec()
    _, first = feed(vs)
    target = first.estimates[0].target
    # Within [lowerBound, upperBound] and less than 10% away: no resize.
    near = template(cpu=(target.cpu or 0) * 1.05, memory=(target.memory or 0) * 1.05)
    assert plan_resizes(first.estimates, vs, near) == ()
    far = template(cpu=(target.cpu or 0) * 1.5, memory=target.memory)
    (resize,) = plan_resizes(first.estimates, vs, far)
    assert resize.new_requests.cpu == target.cpu
    assert resize.new_requests.memory == target.memory  # unchanged resource is carried over
    strict = vspec(minChangeFraction=0.0)
    assert plan_resizes(first.estimates, strict, near)  # any difference resizes
    # Below the lower bound (which equals the target for a constant load) always resizes.
    below = template(cpu=target.cpu, memory=(target.memory or 0) * 0.97)
    (resize,) = plan_resizes(first.estimates, vs, below)
    assert "below lower bound" in resize.reason


def test_requests_and_limits_keeps_ratio() -> None:
    containers = template(cpu=0.25, memory=256 * MI, cpu_limit=0.5, memory_limit=1024 * MI)
    _, out = feed(vspec(), containers=containers)
    (resize,) = out.resizes
    assert resize.new_limits.cpu == pytest.approx((resize.new_requests.cpu or 0) * 2, abs=0.001)
    assert resize.new_limits.memory == pytest.approx((resize.new_requests.memory or 0) * 4, rel=0.01)


def test_requests_only_never_exceeds_limit() -> None:
    containers = [ContainerResources("app", ResourceAmounts(0.25, 256 * MI), ResourceAmounts(cpu=0.3))]
    vs = vspec(containerPolicies=[{"containerName": "*", "controlledValues": "RequestsOnly"}])
    _, out = feed(vs, containers=containers)
    (resize,) = out.resizes
    assert resize.new_requests.cpu == 0.3
    assert resize.new_limits == containers[0].limits


def test_oom_bumps_memory() -> None:
    vs = vspec()
    containers = template(memory=256 * MI)
    state, before = feed(vs, memory=200 * MI, containers=containers)
    assert before.estimates[0].target.memory is not None
    assert before.estimates[0].target.memory < 256 * MI * 1.2
    oom = OOMEvent("app", timestamp=3601, memory=256 * MI)
    obs = Observation(current_replicas=3, containers=containers, ooms=[oom])
    out = vertical_step(state, vs, obs, 3602)
    (est,) = out.estimates
    assert est.target.memory is not None
    assert est.target.memory >= 356 * MI  # max(256Mi * 1.2, 256Mi + 100Mi)
    (resize,) = out.resizes
    assert "after OOM kill" in resize.reason
    # The same OOM reported again is not counted twice; the floor lasts one half-life.
    again = vertical_step(out.state, vs, obs, 3610)
    assert again.state.containers["app"].memory == out.state.containers["app"].memory
    later = vertical_step(
        out.state, vs, Observation(current_replicas=3, containers=containers), 3602 + 2 * HALF_LIFE
    )
    assert (later.estimates[0].target.memory or 0) < (est.target.memory or 0)


def test_ooms_in_two_containers_at_once_both_count() -> None:
    vs = vspec()
    containers = [
        ContainerResources("app", ResourceAmounts(0.1, 256 * MI)),
        ContainerResources("sidecar", ResourceAmounts(0.1, 64 * MI)),
    ]
    ooms = [OOMEvent("app", 50, 256 * MI), OOMEvent("sidecar", 50, 64 * MI), OOMEvent("app", 50, 256 * MI)]
    out = vertical_step(VerticalState(), vs, Observation(1, containers=containers, ooms=ooms), 51)
    targets = {e.container: e.target.memory for e in out.estimates}
    assert targets["app"] is not None
    assert targets["app"] >= 356 * MI
    assert targets["sidecar"] is not None
    assert targets["sidecar"] >= 164 * MI
    assert {r.container for r in out.resizes} == {"app", "sidecar"}


def test_repeated_samples_are_not_double_counted() -> None:
    vs = vspec()
    metrics = {"p0": PodUsage(100.0, {"app": ResourceAmounts(cpu=0.5, memory=100 * MI)})}
    obs = Observation(current_replicas=1, pod_metrics=metrics, containers=template())
    once = vertical_step(VerticalState(), vs, obs, 101)
    twice = vertical_step(once.state, vs, obs, 116)
    assert twice.state.containers["app"].cpu_samples == 1
    assert twice.state.containers["app"].cpu == once.state.containers["app"].cpu


def test_failed_fetch_keeps_the_dedup_marks() -> None:
    vs = vspec()
    metrics = {"p0": PodUsage(100.0, {"app": ResourceAmounts(cpu=0.5, memory=100 * MI)})}
    first = vertical_step(
        VerticalState(), vs, Observation(1, pod_metrics=metrics, containers=template()), 101
    )
    failed = vertical_step(
        first.state, vs, Observation(1, pod_metrics=MetricError("down"), containers=template()), 116
    )
    assert failed.state.seen == first.state.seen
    again = vertical_step(failed.state, vs, Observation(1, pod_metrics=metrics, containers=template()), 131)
    assert again.state.containers["app"].cpu_samples == 1


def test_memory_keeps_one_peak_per_window() -> None:
    vs = vspec()
    state = VerticalState()
    for t, mem in [(0, 100 * MI), (60, 300 * MI), (120, 200 * MI)]:
        metrics = {"p0": PodUsage(float(t), {"app": ResourceAmounts(memory=mem)})}
        state = vertical_step(state, vs, Observation(1, pod_metrics=metrics, containers=template()), t).state
    hist = state.containers["app"].memory
    assert hist.total_weight == pytest.approx(hist.total_weight)  # one unit of (decayed) weight...
    assert len(hist.weights) == 1  # ...in the bucket of the 300Mi peak
    assert hist.percentile(0.5) == pytest.approx(300 * MI, rel=0.06)


def test_state_round_trip() -> None:
    vs = vspec()
    state, out = feed(vs, seconds=300)
    restored = VerticalState.from_dict(state.to_dict(), vs.half_life)
    assert restored == state
    assert recommend(restored, vs, template(), 300) == out.estimates
    with pytest.raises(ValueError, match="invalid vertical state"):
        VerticalState.from_dict({"peaks": {"x": [1]}}, vs.half_life)


def test_no_data_no_recommendation() -> None:
    out = vertical_step(VerticalState(), vspec(), Observation(current_replicas=1, containers=template()), 0)
    assert out.estimates == ()
    assert out.resizes == ()


# ---- low confidence: raise, never shrink


def idle_after_restart(vs: VerticalSpec, samples: int, step: float = 60.0) -> VerticalOutcome:
    """A 2-CPU pod that is idle (5m used) for ``samples`` samples, starting from an empty state."""
    containers = template(cpu=2.0, memory=2048 * MI)
    _, out = feed(
        vs, cpu=0.005, memory=32 * MI, pods=1, seconds=(samples - 1) * step, step=step, containers=containers
    )
    return out


def test_one_idle_sample_after_a_restart_never_shrinks_a_2_cpu_pod() -> None:
    out = idle_after_restart(vspec(halfLife="24h"), samples=1)
    (est,) = out.estimates
    assert est.confidence < SHRINK_CONFIDENCE
    assert est.target.cpu is not None
    assert est.target.cpu < 0.2  # the recommendation itself is small...
    assert out.resizes == ()  # ...but one sample is no reason to take 2 CPUs away


def test_enough_history_shrinks_an_idle_pod() -> None:
    vs = vspec(halfLife="10m")
    young = idle_after_restart(vs, samples=4)  # 3 min of history: below half a half-life
    assert young.resizes == ()
    old = idle_after_restart(vs, samples=12)  # 11 min: more than half a half-life, 12 samples
    (est,) = old.estimates
    assert est.confidence >= SHRINK_CONFIDENCE
    (resize,) = old.resizes
    assert resize.new_requests.cpu is not None
    assert resize.new_requests.cpu < 0.1
    assert resize.new_requests.memory is not None
    assert resize.new_requests.memory < 2048 * MI


def test_low_confidence_still_raises() -> None:
    # 3 minutes of a busy pod at a 10m half-life: too little history to shrink, enough to raise.
    vs = vspec(halfLife="10m")
    _, out = feed(vs, cpu=1.5, memory=32 * MI, pods=1, seconds=180, step=60, containers=template(cpu=0.25))
    (est,) = out.estimates
    assert est.confidence < SHRINK_CONFIDENCE
    (resize,) = out.resizes
    assert resize.new_requests.cpu is not None
    assert resize.new_requests.cpu > 1.5
    assert resize.new_requests.memory == 256 * MI  # memory would shrink: left alone


def test_low_confidence_still_enforces_max_allowed() -> None:
    vs = vspec(halfLife="24h", containerPolicies=[{"containerName": "app", "maxAllowed": {"cpu": "1"}}])
    out = idle_after_restart(vs, samples=1)
    (resize,) = out.resizes
    assert resize.new_requests.cpu == 1.0  # down to the user's cap, not to the 1-sample guess
    assert resize.new_requests.memory == 2048 * MI
