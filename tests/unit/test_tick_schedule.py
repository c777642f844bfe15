"""Tick scheduling: bounded first-tick rate, drift-free period."""

from __future__ import annotations

import itertools

import pytest

from surge.tick_schedule import MIN_SLEEP, FirstTickSlots, next_tick_delay


def test_a_single_new_policy_ticks_at_once() -> None:
    slots = FirstTickSlots(rate=50)
    assert slots.delay(now=100.0) == 0.0
    assert slots.delay(now=200.0) == 0.0  # long after the previous one: no waiting either


def test_a_burst_is_spread_at_the_rate() -> None:
    slots = FirstTickSlots(rate=50)
    delays = [slots.delay(now=10.0) for _ in range(1000)]
    assert delays[0] == 0.0
    assert delays[-1] == pytest.approx(999 / 50)
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(delays)}
    assert gaps == {0.02}


def test_a_burst_arriving_over_time_only_waits_for_what_is_queued() -> None:
    slots = FirstTickSlots(rate=10)
    assert [slots.delay(now=0.0) for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    # 0.25 s later the queue holds one more slot (0.3): this loop waits 0.05 s, not 0.3 s.
    assert slots.delay(now=0.25) == pytest.approx(0.05)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate"):
        FirstTickSlots(rate=0)


@pytest.mark.parametrize(
    ("next_in", "took", "sleep"),
    [(15.0, 0.2, 14.8), (15.0, 0.0, 15.0), (15.0, 16.0, MIN_SLEEP), (2.0, 1.95, MIN_SLEEP)],
)
def test_next_tick_is_measured_from_the_start_of_this_one(next_in: float, took: float, sleep: float) -> None:
    assert next_tick_delay(next_in, took) == pytest.approx(sleep)
