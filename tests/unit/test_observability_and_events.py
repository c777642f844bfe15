"""Operator-side bookkeeping: the tick histogram's text format and Event repeat suppression."""

from __future__ import annotations

from surge.events import RepeatFilter
from surge.observability import Histogram


def test_histogram_renders_cumulative_buckets_per_outcome() -> None:
    h = Histogram("t_seconds", "help", buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 0.5, 3.0):
        h.observe(value, "ok")
    h.observe(0.01, "error")
    text = h.render()
    assert 't_seconds_bucket{outcome="ok",le="0.1"} 1' in text
    assert 't_seconds_bucket{outcome="ok",le="1.0"} 3' in text
    assert 't_seconds_bucket{outcome="ok",le="+Inf"} 4' in text
    assert 't_seconds_count{outcome="ok"} 4' in text
    assert 't_seconds_sum{outcome="ok"} 4.05' in text
    assert 't_seconds_count{outcome="error"} 1' in text


def test_identical_events_are_suppressed_until_the_repeat_window_passes() -> None:
    now = [1000.0]
    repeats = RepeatFilter(300.0, clock=lambda: now[0])
    key = ("uid-1", "FailedGetScale", "missing")
    assert repeats.due(key)
    assert not repeats.due(key)
    assert repeats.due(("uid-1", "FailedGetScale", "another message"))
    now[0] += 301
    assert repeats.due(key)
