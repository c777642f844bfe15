"""The simulation loop: virtual time, determinism, and that it is the operator's engine that decides."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from surge_loadgen.trace import Trace, builtin

from surge.api.spec import Behavior, parse_policy_spec
from surge.simulate.loop import OPERATOR_JITTER, Contender, SimConfig, VirtualClock, simulate
from surge.simulate.policy import FleetSpec, hpa_default, load_policy

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "manifests" / "bench" / "spike"
USED = "sum(surge_game_players_online) + sum(rate(surge_game_join_rejected_total[15s]))"
RAMP = Trace("ramp", ((0.0, 100.0), (30.0, 100.0), (90.0, 1500.0), (240.0, 1500.0)))


def _buffer_policy(**extra: Any) -> dict[str, Any]:
    horizontal: dict[str, Any] = {
        "minReplicas": 2,
        "maxReplicas": 40,
        "metrics": [
            {
                "type": "Buffer",
                "buffer": {
                    "usedQuery": USED,
                    "capacityQuery": "avg(surge_game_capacity_players)",
                    "size": "20%",
                },
            }
        ],
        **extra,
    }
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "arena"},
        "interval": "5s",
        "horizontal": horizontal,
    }


def _run(spec: dict[str, Any], trace: Trace = RAMP, seed: int = 1, **kw: Any) -> Any:
    contender = Contender("p", "p", parse_policy_spec(spec), kw.pop("jitter", 0.05))
    return simulate(contender, trace, FleetSpec(), SimConfig(seed=seed, **kw))


def test_virtual_clock_runs_events_in_time_then_priority_order() -> None:
    clock = VirtualClock()
    seen: list[str] = []
    clock.at(2.0, 0, lambda: seen.append("b"))
    clock.at(1.0, 3, lambda: seen.append("a-tick"))
    clock.at(1.0, 0, lambda: seen.append("a-plane"))
    clock.at(9.0, 0, lambda: seen.append("late"))
    clock.run_until(5.0)
    assert seen == ["a-plane", "a-tick", "b"]
    assert clock.now == 5.0


def test_same_seed_same_result_other_seed_other_phases() -> None:
    one, again, other = _run(_buffer_policy()), _run(_buffer_policy()), _run(_buffer_policy(), seed=2)
    assert one.summary == again.summary
    assert one.ticks == again.ticks
    assert one.samples == again.samples
    assert one.summary["lead_in_s"] != other.summary["lead_in_s"]
    assert [t.t for t in one.ticks] != [t.t for t in other.ticks]


def test_the_timeline_is_the_load_generators_and_starts_after_the_warm_up() -> None:
    result = _run(_buffer_policy(), warmup=20.0, start_jitter=0.0)
    assert result.summary["lead_in_s"] == 20.0
    assert [s.t for s in result.samples[:3]] == [0.0, 1.0, 2.0]
    assert result.samples[-1].t == 240.0
    assert result.summary["samples"] == 241
    assert result.summary["plane"] == "simulate"
    assert result.summary["replicas_max"] >= 18  # 1500 x 1.2 / 100
    ticks = [t.t for t in result.ticks]
    assert all(4.7 <= b - a <= 5.3 for a, b in itertools.pairwise(ticks))  # 5 s +-5%


def test_a_scale_up_rate_limit_of_the_policy_is_respected() -> None:
    limit = {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}],
        }
    }
    free = _run(_buffer_policy())
    limited = _run(_buffer_policy(behavior=limit))
    assert max(t.to_replicas - t.from_replicas for t in free.ticks) > 1  # the limit would bind
    ups = [(t.t, t.to_replicas - t.from_replicas) for t in limited.ticks if t.to_replicas > t.from_replicas]
    assert ups
    assert all(step == 1 for _, step in ups)
    assert all(b - a >= 30.0 for (a, _), (b, _) in itertools.pairwise(ups))
    assert any("ScaleUpLimit" in t.reason for t in limited.ticks)
    assert limited.summary["unserved_player_seconds"] > free.summary["unserved_player_seconds"]


def test_dry_run_reports_but_never_scales() -> None:
    result = _run({**_buffer_policy(), "mode": "DryRun"})
    assert any(t.to_replicas > t.from_replicas for t in result.ticks)
    assert result.summary["scale_actions"] == 0
    assert result.summary["replicas_max"] == 2


def test_hpa_manifest_replays_with_hpa_semantics_on_censored_cpu() -> None:
    loaded = load_policy(BENCH / "hpa-default.yaml")
    assert loaded.kind == "HorizontalPodAutoscaler"
    assert loaded.spec.interval == 15.0
    result = simulate(
        Contender("hpa", "hpa", loaded.spec, 0.0), builtin("launch-spike"), FleetSpec(), SimConfig()
    )
    ups = [(e["from"], e["to"]) for e in result.summary["scale_events"] if e["to"] > e["from"]]
    # A full pod reads 102% of its request: ceil(n x 1.02 / 0.70) per step, the series of the real HPA.
    assert ups[:5] == [(2, 3), (3, 5), (5, 8), (8, 12), (12, 18)]
    ticks = [t.t for t in result.ticks]
    assert all(b - a == pytest.approx(15.0) for a, b in itertools.pairwise(ticks))


def test_hpa_default_contender_is_cpu_utilization_with_default_behavior() -> None:
    policy = parse_policy_spec(_buffer_policy())
    hpa = hpa_default(policy, 15.0, 70)
    assert hpa.interval == 15.0
    assert hpa.horizontal is not None
    assert hpa.horizontal.min_replicas == 2
    assert hpa.horizontal.max_replicas == 40
    (metric,) = hpa.horizontal.metrics
    assert metric.type.value == "Resource"
    assert hpa.horizontal.behavior == Behavior()  # HPA's defaults


def test_a_query_the_simulator_cannot_evaluate_is_refused_up_front() -> None:
    spec = _buffer_policy()
    spec["horizontal"]["metrics"][0]["buffer"]["usedQuery"] = "histogram_quantile(0.9, x)"
    with pytest.raises(ValueError, match="cannot evaluate"):
        _run(spec)


def test_a_failing_query_is_a_failed_metric_not_a_crash() -> None:
    spec = _buffer_policy()
    spec["horizontal"]["metrics"][0]["buffer"]["usedQuery"] = "sum(no_such_metric)"
    result = _run(spec)
    assert result.summary["scale_actions"] == 0
    assert all("no data" in t.reason for t in result.ticks)


def test_an_hour_long_trace_replays_every_second() -> None:
    trace = builtin("diurnal").scaled(3600.0 / builtin("diurnal").duration)
    result = _run(_buffer_policy(), trace=trace)
    assert result.summary["samples"] == 3601
    assert result.summary["duration_s"] == 3600.0
    assert len(result.ticks) > 3600 / 5.3


def test_policy_file_with_a_deployment_sizes_the_fleet(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    fleet = (BENCH / "fleet.yaml").read_text()
    path.write_text(
        fleet.replace("cpu: 500m", "cpu: '1'") + "\n---\n" + (BENCH / "surge-game.yaml").read_text()
    )
    loaded = load_policy(path)
    assert loaded.kind == "AutoScalePolicy"
    assert loaded.spec.interval == 5.0
    assert loaded.fleet == FleetSpec(replicas=2, container="arena", cpu_request_m=1000.0)
    (tmp_path / "none.yaml").write_text(fleet)
    with pytest.raises(ValueError, match="no AutoScalePolicy"):
        load_policy(tmp_path / "none.yaml")


def test_the_simulated_operator_jitters_its_ticks_like_the_real_one() -> None:
    from surge.reconcile import JITTER  # the loop must not import reconcile (kubernetes); the test may

    assert OPERATOR_JITTER == JITTER


def test_the_virtual_clock_can_start_at_any_date_without_changing_the_run() -> None:
    at_epoch = _run(_buffer_policy())
    in_2026 = _run(_buffer_policy(), start=1_796_000_000.0)  # the engine's `now` is then a 2026 date
    assert in_2026.samples == at_epoch.samples
    assert [(t.t, t.to_replicas) for t in in_2026.ticks] == [(t.t, t.to_replicas) for t in at_epoch.ticks]


def test_a_scheduled_free_capacity_floor_raises_the_buffer_in_simulate_too() -> None:
    # The window covers the whole run (virtual time starts at epoch 0): every Buffer tick keeps >= 1000 free.
    release = {"name": "release", "start": "1970-01-01T00:00:00Z", "duration": "1h", "minFreeCapacity": 1000}
    plain = _run(_buffer_policy())
    floored = _run(_buffer_policy(schedules=[release]))
    assert not any("by schedule release" in t.reason for t in plain.ticks)
    assert any("(raised from" in t.reason and "by schedule release" in t.reason for t in floored.ticks)
    # At 100 players per replica: 100 used + 1000 free -> 11 replicas before the ramp, against 2 without.
    assert max(t.to_replicas for t in floored.ticks if t.t < 30.0) >= 11
    assert max(t.to_replicas for t in plain.ticks if t.t < 30.0) <= 2
    assert floored.summary["unserved_player_seconds"] <= plain.summary["unserved_player_seconds"]
