"""The simulated fleet: pod start delay, ReplicaSet deletion order, metrics-server and Prometheus delays."""

from __future__ import annotations

import pytest

from surge.simulate.fleet import Fleet, FleetTiming
from surge.simulate.promql import TSDB, evaluate


def _fleet(**timing: float) -> Fleet:
    return Fleet("arena", 500.0, 64 * 2**20, FleetTiming(**timing))  # type: ignore[arg-type]


def test_a_new_pod_serves_players_only_after_the_start_delay() -> None:
    fleet = _fleet(pod_start_delay=3.0)
    fleet.scale(1, 0.0)
    assert fleet.step(0.0, 50).served == 0
    assert fleet.step(2.0, 50).capacity == 0
    sample = fleet.step(3.0, 150)
    assert (sample.served, sample.unserved, sample.capacity, sample.replicas_ready) == (100, 50, 100, 1)
    assert sample.replicas_desired == 1


def test_scale_down_removes_unready_then_most_recently_ready_pods_and_drops_their_players() -> None:
    fleet = _fleet(pod_start_delay=1.0)
    fleet.scale(2, 0.0)  # arena-00001, arena-00002 ready at 1
    fleet.scale(3, 5.0)  # arena-00003 ready at 6
    fleet.scale(4, 10.0)  # arena-00004 ready at 11
    fleet.step(12.0, 400)
    fleet.scale(5, 12.0)  # arena-00005 not ready yet
    fleet.scale(3, 12.5)
    assert [p.name for p in fleet.pods] == ["arena-00001", "arena-00002", "arena-00003"]
    sample = fleet.step(13.0, 400)
    assert sample.dropped_total == 100
    assert sample.served == 300


def test_metrics_server_serves_usage_from_the_second_scrape_averaged_over_the_interval() -> None:
    fleet = _fleet(pod_start_delay=0.0, patch_interval=5.0, metrics_first_scrapes=2)
    fleet.scale(1, 0.0)
    fleet.step(0.0, 50)  # first patch at once: 10m idle + 50 players x 5m = 260m
    fleet.metrics_server_scrape(0.0)
    assert fleet.pod_usage() == {}  # one point is no rate
    for t in range(1, 10):
        fleet.step(float(t), 100)  # the batcher writes the new usage (510m) at t = 5 only
    fleet.metrics_server_scrape(10.0)
    usage = fleet.pod_usage()["arena-00001"]
    assert usage.timestamp == 10.0
    assert usage.window == 10.0
    assert usage.containers["arena"].cpu == pytest.approx((260 * 5 + 510 * 5) / 10 / 1000)


def test_a_pod_needs_as_many_scrapes_as_the_timing_says() -> None:
    fleet = _fleet(pod_start_delay=0.0, metrics_first_scrapes=3)
    fleet.scale(1, 0.0)
    fleet.step(0.0, 10)
    fleet.metrics_server_scrape(0.0)
    fleet.metrics_server_scrape(10.0)
    assert fleet.pod_usage() == {}
    fleet.metrics_server_scrape(20.0)
    assert set(fleet.pod_usage()) == {"arena-00001"}


def test_prometheus_sees_game_metrics_only_once_scraped() -> None:
    fleet = _fleet(pod_start_delay=0.0)
    fleet.scale(2, 0.0)
    db = TSDB()
    fleet.step(0.0, 120)
    db.scrape(0.0, fleet.exported(0.0))
    fleet.step(1.0, 300)  # 100 unserved this step: they count as rejected joins
    assert evaluate("sum(surge_game_players_online)", db, 1.0) == {frozenset(): 120.0}
    db.scrape(5.0, fleet.exported(5.0))
    assert evaluate("sum(surge_game_players_online)", db, 5.0) == {frozenset(): 200.0}
    assert evaluate("sum(surge_game_join_rejected_total)", db, 5.0) == {frozenset(): 100.0}
    assert evaluate("avg(surge_game_capacity_players)", db, 5.0) == {frozenset(): 100.0}


def test_bad_timing_is_refused() -> None:
    with pytest.raises(ValueError, match="scrape_interval"):
        FleetTiming(scrape_interval=0)
    with pytest.raises(ValueError, match="pod_start_delay"):
        FleetTiming(pod_start_delay=-1)
