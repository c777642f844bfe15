"""The oracle's replica-seconds (surge.simulate.oracle) and where simulate reports it."""

from __future__ import annotations

import pytest
from surge_loadgen.timeline import Sample

from surge.simulate.oracle import oracle_replica_seconds


def _samples(points: list[tuple[float, int]]) -> list[Sample]:
    return [
        Sample(
            t=t,
            demand=d,
            served=d,
            unserved=0,
            capacity=0,
            replicas_ready=0,
            replicas_desired=0,
            cpu_request_m=0,
            rejected_total=0,
            dropped_total=0,
            api_writes_total=0,
        )
        for t, d in points
    ]


@pytest.mark.parametrize(
    ("points", "capacity", "end", "expected"),
    [
        ([(0.0, 0)], 100, 10.0, 0.0),  # no demand, no pods
        ([(0.0, 100)], 100, 10.0, 10.0),  # exactly one full pod
        ([(0.0, 101)], 100, 10.0, 20.0),  # one player more needs a second pod
        ([(0.0, 50), (5.0, 250)], 100, 10.0, 5.0 + 15.0),  # 1 pod for 5 s, then 3 pods for 5 s
        ([(0.0, 250), (4.0, 250)], 100, 2.0, 12.0),  # `end` before the last sample: that one holds 0 s
    ],
)
def test_oracle_holds_ceil_demand_over_capacity_pods(
    points: list[tuple[float, int]], capacity: int, end: float, expected: float
) -> None:
    assert oracle_replica_seconds(_samples(points), capacity, end) == pytest.approx(expected)


def test_oracle_refuses_pods_without_capacity() -> None:
    with pytest.raises(ValueError, match="capacity per pod"):
        oracle_replica_seconds(_samples([(0.0, 10)]), 0, 1.0)
