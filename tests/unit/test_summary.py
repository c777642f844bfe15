"""The run summary over hand-made timelines: every number is checked against arithmetic done by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from surge_loadgen.summary import scale_events, summarize
from surge_loadgen.timeline import Sample, dominant, read_csv, write_csv

PER_POD = 100  # players per pod in these timelines


def row(t: float, demand: int, replicas: int, *, cpu: int = 500, desired: int | None = None) -> Sample:
    capacity = replicas * PER_POD * cpu // 500
    served = min(demand, capacity)
    return Sample(
        t=t,
        demand=demand,
        served=served,
        unserved=demand - served,
        capacity=capacity,
        replicas_ready=replicas,
        replicas_desired=replicas if desired is None else desired,
        cpu_request_m=cpu,
    )


def run(samples: list[Sample], end: float | None = None) -> dict[str, Any]:
    return summarize(samples, scenario="hand", plane="sim", time_scale=0.5, end=end)


# A launch spike by hand, 1 s steps: baseline 100, surge to 600 at t=2..3, capacity catches up at t=5.
SPIKE = [
    row(0, 100, 2),
    row(1, 100, 2),
    row(2, 300, 2),  # onset: 300 >= 1.5 * 100; capacity 200 < 0.9 * 300
    row(3, 600, 2),  # unserved 400
    row(4, 600, 4),  # capacity 400 < 540
    row(5, 600, 6),  # 600 >= 540: covered from here on
    row(6, 600, 6),
    row(7, 200, 6),
    row(8, 200, 3),
    row(9, 200, 2),
]


def test_integrals_use_each_sample_until_the_next_one() -> None:
    s = run(SPIKE, end=10)
    assert s["duration_s"] == 10
    assert s["demand_player_seconds"] == 100 + 100 + 300 + 600 * 4 + 200 * 3
    # unserved: t=2: 100, t=3: 400, t=4: 200
    assert s["unserved_player_seconds"] == 700
    assert s["served_player_seconds"] == s["demand_player_seconds"] - 700
    assert s["unserved_fraction"] == round(700 / s["demand_player_seconds"], 4)
    assert s["replica_seconds"] == 2 + 2 + 2 + 2 + 4 + 6 + 6 + 6 + 3 + 2
    assert s["cpu_request_core_seconds"] == s["replica_seconds"] * 0.5


def test_without_end_the_last_sample_has_no_duration() -> None:
    s = run(SPIKE)
    assert s["duration_s"] == 9
    assert s["replica_seconds"] == 2 + 2 + 2 + 2 + 4 + 6 + 6 + 6 + 3


def test_peaks_onset_and_time_to_cover() -> None:
    s = run(SPIKE, end=10)
    assert (s["peak_demand"], s["peak_unserved"], s["peak_unserved_t"]) == (600, 400, 3)
    assert s["surge_onset_s"] == 2
    assert s["peak_end_s"] == 6
    assert s["time_to_cover_90_s"] == 3  # covered for good from t=5


def test_scale_actions_and_reversals() -> None:
    s = run(SPIKE, end=10)
    # 2 -> 4 -> 6 (two ups), 6 -> 3 -> 2 (two downs): one reversal
    assert (s["scale_actions"], s["scale_ups"], s["scale_downs"]) == (4, 2, 2)
    assert s["direction_reversals"] == 1
    assert (s["replicas_min"], s["replicas_max"], s["replicas_final"]) == (2, 6, 2)
    assert [e["t"] for e in s["scale_events"]] == [4, 5, 8, 9]
    assert s["scenario"] == "hand"
    assert s["plane"] == "sim"
    assert s["time_scale"] == 0.5


def test_flapping_reversal_count_is_exact() -> None:
    samples = [row(t, 100, r) for t, r in enumerate([2, 3, 2, 3, 2, 2, 4])]
    directions = [e.direction for e in scale_events(samples)]
    assert directions == [1, -1, 1, -1, 1]
    s = run(samples)
    assert s["horizontal_scale_actions"] == 5
    assert s["direction_reversals"] == 4


def test_scale_actions_follow_desired_not_ready_replicas() -> None:
    samples = [row(0, 100, 2), row(1, 100, 2, desired=5), row(2, 100, 5), row(3, 100, 5)]
    s = run(samples)
    assert s["horizontal_scale_actions"] == 1
    assert s["scale_events"] == [{"t": 1, "kind": "horizontal", "from": 2, "to": 5}]
    assert s["replica_seconds"] == 2 + 2 + 5


def test_vertical_resizes_raise_capacity_and_count_as_actions() -> None:
    samples = [
        row(0, 100, 2, cpu=500),
        row(1, 400, 2, cpu=500),  # onset, 200 < 360
        row(2, 400, 2, cpu=1000),  # 400 >= 360
        row(3, 400, 2, cpu=1000),
        row(4, 100, 2, cpu=500),
    ]
    s = run(samples, end=5)
    assert s["vertical_scale_actions"] == 2
    assert s["horizontal_scale_actions"] == 0
    assert s["scale_actions"] == 2
    assert s["direction_reversals"] == 1
    assert s["time_to_cover_90_s"] == 1
    assert s["unserved_player_seconds"] == 200
    assert (s["cpu_request_m_min"], s["cpu_request_m_max"]) == (500, 1000)
    assert s["cpu_request_core_seconds"] == 2 * (0.5 + 0.5 + 1 + 1 + 0.5)


def test_capacity_never_catching_up_gives_none() -> None:
    samples = [row(0, 100, 1), row(1, 500, 1), row(2, 500, 1), row(3, 500, 1)]
    s = run(samples)
    assert s["surge_onset_s"] == 1
    assert s["time_to_cover_90_s"] is None


def test_capacity_ahead_of_the_surge_covers_at_once() -> None:
    samples = [row(0, 100, 10), row(1, 500, 10), row(2, 900, 10), row(3, 900, 10)]
    s = run(samples)
    assert s["time_to_cover_90_s"] == 0
    assert s["unserved_player_seconds"] == 0
    assert s["peak_unserved"] == 0


def test_a_dip_below_90_percent_restarts_the_clock() -> None:
    samples = [
        row(0, 100, 2),
        row(1, 300, 4),  # onset, covered
        row(2, 600, 4),  # 400 < 540: not covered
        row(3, 600, 6),  # covered from here
        row(4, 600, 6),
    ]
    assert run(samples)["time_to_cover_90_s"] == 2


def test_no_surge_means_no_onset() -> None:
    samples = [row(t, 100, 2) for t in range(5)]
    s = run(samples)
    assert s["surge_onset_s"] is None
    assert s["time_to_cover_90_s"] is None
    assert s["peak_end_s"] is None


def test_counters_are_taken_from_the_last_sample() -> None:
    samples = [
        Sample(0, 10, 10, 0, 20, 1, 1, 100, rejected_total=0, dropped_total=0, api_writes_total=1),
        Sample(4, 30, 20, 10, 20, 1, 1, 100, rejected_total=10, dropped_total=3, api_writes_total=2),
    ]
    s = run(samples, end=8)
    assert (s["rejected_joins"], s["dropped_players"], s["api_writes"]) == (10, 3, 2)
    assert s["api_writes_per_second"] == 0.25


def test_empty_timeline_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        run([])


def test_timeline_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "timeline.csv"
    write_csv(path, SPIKE)
    assert read_csv(path) == SPIKE


def test_dominant_prefers_the_most_common_then_the_larger() -> None:
    assert dominant([500, 500, 1000]) == 500
    assert dominant([500, 1000]) == 1000
    assert dominant([]) == 0
