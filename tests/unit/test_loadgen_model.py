"""Pure parts of the game data plane: capacity formula, cost model, player placement, patch batching,
pod parsing, and the Prometheus text rendering."""

from __future__ import annotations

from typing import Any

import pytest
from surge_game import vocabulary as v
from surge_game.exposition import Registry, labelset
from surge_game.protocol import Stats
from surge_loadgen.model import PatchBatcher, Sessions, Usage
from surge_loadgen.sim import container_cpu_request_m, is_ready, label_selector


@pytest.mark.parametrize(
    ("quantity", "millis"),
    [
        ("500m", 500),
        ("2", 2000),
        ("0.25", 250),
        (".5", 500),
        ("1500000n", 1.5),
        ("250000u", 250),
        ("1k", 1e6),
    ],
)
def test_parse_cpu_millis(quantity: str, millis: float) -> None:
    assert v.parse_cpu_millis(quantity) == pytest.approx(millis)


@pytest.mark.parametrize("bad", ["", "m", "500Mi", "-1", "1.2.3", "abc"])
def test_parse_cpu_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="CPU quantity"):
        v.parse_cpu_millis(bad)


@pytest.mark.parametrize(
    ("cpu_m", "per_core", "capacity"),
    [
        (500, 200, 100),
        (1000, 200, 200),
        (700, 200, 140),
        (250, 200, 50),
        (99, 10, 0),
        (0, 200, 0),
        (1500, 33, 49),
    ],
)
def test_capacity_formula(cpu_m: float, per_core: float, capacity: int) -> None:
    assert v.capacity_players(cpu_m, per_core) == capacity


def test_cost_model_full_pod_uses_its_request_plus_base() -> None:
    cost = v.CostModel(players_per_core=200, base_cpu_millis=10)
    assert cost.cpu_per_player_millis == 5
    full = cost.capacity(500)
    assert cost.cpu_millis(full) == 510
    assert cost.memory_mib(100) == cost.base_memory_mib + 100 * cost.memory_per_player_mib
    assert cost.tick_seconds(0, 500) < cost.tick_seconds(100, 500) < cost.tick_seconds(200, 500)


def test_sessions_fill_the_least_loaded_pod_first() -> None:
    s = Sessions()
    r = s.step({"a": 100, "b": 100}, 50)
    assert (r.served, r.unserved, r.rejected) == (50, 0, 0)
    assert s.players == {"a": 25, "b": 25}
    r = s.step({"a": 100, "b": 100, "c": 100}, 80)  # the new pod fills up to the others, then round robin
    assert s.players == {"a": 27, "b": 27, "c": 26}
    assert r.joined == {"c": 26, "a": 2, "b": 2}


def test_sessions_least_loaded_is_relative_to_capacity() -> None:
    s = Sessions()
    s.step({"small": 50, "big": 150}, 100)
    assert s.players == {"small": 25, "big": 75}


def test_sessions_count_unserved_when_full() -> None:
    s = Sessions()
    r = s.step({"a": 100, "b": 100}, 260)
    assert (r.served, r.unserved, r.rejected) == (200, 60, 60)
    r = s.step({"a": 100, "b": 100}, 260)  # the waiting players retry and are turned away again
    assert r.rejected == 60


def test_sessions_leave_in_proportion_and_stick_to_their_pod() -> None:
    s = Sessions(players={"a": 60, "b": 30, "c": 10})
    s.step({"a": 100, "b": 100, "c": 100}, 50)
    assert s.players == {"a": 30, "b": 15, "c": 5}
    assert s.total == 50


def test_sessions_leave_rounding_is_exact_and_deterministic() -> None:
    s = Sessions(players={"a": 1, "b": 1, "c": 1})
    s.step({"a": 10, "b": 10, "c": 10}, 1)
    assert s.total == 1
    assert s.players == {"a": 0, "b": 0, "c": 1}  # equal remainders: by name


def test_removed_pod_drops_its_players_who_rejoin_elsewhere() -> None:
    s = Sessions(players={"a": 50, "b": 50})
    r = s.step({"a": 100, "c": 100}, 100)
    assert r.dropped == 50
    assert s.players == {"a": 50, "c": 50}
    assert r.joined == {"c": 50}


def test_shrunk_pod_keeps_its_players_but_takes_no_new_ones() -> None:
    s = Sessions(players={"a": 100, "b": 10})
    r = s.step({"a": 50, "b": 50}, 150)
    assert s.players == {"a": 100, "b": 50}
    assert r.unserved == 0
    assert r.served == 150


def test_no_pods_means_everyone_is_unserved() -> None:
    r = Sessions().step({}, 30)
    assert (r.served, r.unserved) == (0, 30)


def test_batcher_patches_new_pods_at_once_then_at_most_every_interval() -> None:
    b = PatchBatcher(min_interval=5)
    u1, u2 = Usage(100, 60), Usage(300, 60)
    assert b.due(0, {"a": u1}) == {"a": u1}
    b.done("a", u1, 0)
    assert b.due(1, {"a": u2}) == {}  # changed, but too soon
    assert b.due(5, {"a": u2}) == {"a": u2}
    b.done("a", u2, 5)
    assert b.due(20, {"a": Usage(305, 61)}) == {}  # below the thresholds: no write


def test_batcher_thresholds_are_relative_and_absolute() -> None:
    b = PatchBatcher(min_interval=5, rel=0.05, cpu_abs_m=10, mem_abs_mi=4)
    b.done("a", Usage(1000, 100), 0)
    assert b.due(10, {"a": Usage(1049, 100)}) == {}
    assert b.due(10, {"a": Usage(1050, 100)}) == {"a": Usage(1050, 100)}
    assert b.due(10, {"a": Usage(1000, 105)}) == {"a": Usage(1000, 105)}
    b.done("b", Usage(20, 50), 0)
    assert b.due(10, {"b": Usage(29, 50)}) == {}
    assert b.due(10, {"b": Usage(30, 50)}) == {"b": Usage(30, 50)}


def test_batcher_forgets_gone_pods() -> None:
    b = PatchBatcher()
    b.done("a", Usage(1, 1), 0)
    b.due(1, {})
    assert b.last == {}


def test_usage_annotations_are_kwok_quantities() -> None:
    assert Usage(250, 98).annotations() == {
        "kwok.x-k8s.io/usage-cpu": "250m",
        "kwok.x-k8s.io/usage-memory": "98Mi",
    }


def _pod(spec_cpu: str | None, status_cpu: str | None = None, **status: Any) -> dict[str, Any]:
    resources = {"requests": {"cpu": spec_cpu}} if spec_cpu else {}
    pod: dict[str, Any] = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "side", "resources": {}}, {"name": "game", "resources": resources}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], **status},
    }
    if status_cpu:
        pod["status"]["containerStatuses"] = [
            {"name": "game", "resources": {"requests": {"cpu": status_cpu}}}
        ]
    return pod


def test_cpu_request_prefers_the_applied_status_then_the_spec() -> None:
    assert container_cpu_request_m(_pod("500m"), "game") == 500
    assert container_cpu_request_m(_pod("1", status_cpu="500m"), "game") == 500  # resize not actuated yet
    assert container_cpu_request_m(_pod("1", status_cpu="1"), "game") == 1000
    assert container_cpu_request_m(_pod("500m"), None) == 0  # first container has no request
    assert container_cpu_request_m(_pod("500m"), "missing") == 0


def test_readiness() -> None:
    assert is_ready(_pod("1"))
    assert not is_ready(_pod("1", phase="Pending"))
    assert not is_ready(_pod("1", conditions=[{"type": "Ready", "status": "False"}]))
    terminating = _pod("1")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not is_ready(terminating)


def test_label_selector() -> None:
    sel = {
        "matchLabels": {"app": "arena", "tier": "game"},
        "matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert label_selector(sel) == "app=arena,tier=game,zone in (a,b),!canary"


def test_prometheus_text_rendering() -> None:
    reg = Registry()
    g = reg.gauge(v.PLAYERS_ONLINE, "Players.")
    c = reg.counter(v.JOIN_REJECTED_TOTAL, "Rejected.")
    h = reg.histogram(v.TICK_SECONDS, "Tick.", (0.01, 0.1))
    pod = labelset(pod='a"b', namespace="ns")
    g.set(pod, 7)
    c.inc(pod, 2)
    h.observe(pod, 0.005)
    h.observe(pod, 0.05)
    h.observe(pod, 5)
    text = reg.render()
    assert (
        '# TYPE surge_game_players_online gauge\nsurge_game_players_online{namespace="ns",pod="a\\"b"} 7'
        in text
    )
    assert 'surge_game_join_rejected_total{namespace="ns",pod="a\\"b"} 2' in text
    assert 'surge_game_tick_seconds_bucket{namespace="ns",pod="a\\"b",le="0.01"} 1' in text
    assert 'surge_game_tick_seconds_bucket{namespace="ns",pod="a\\"b",le="0.1"} 2' in text
    assert 'surge_game_tick_seconds_bucket{namespace="ns",pod="a\\"b",le="+Inf"} 3' in text
    assert 'surge_game_tick_seconds_count{namespace="ns",pod="a\\"b"} 3' in text
    reg.drop_labels(pod)
    assert "pod=" not in reg.render()
    with pytest.raises(ValueError, match="only go up"):
        c.inc(pod, -1)
    with pytest.raises(ValueError, match="twice"):
        reg.gauge(v.PLAYERS_ONLINE, "again")


def test_stats_line_round_trip() -> None:
    stats = Stats(online=3, capacity=100, cpu_request_m=500, tick=42)
    assert Stats.parse(stats.line()) == stats
    with pytest.raises(ValueError, match="malformed"):
        Stats.parse("STATS online=x")
