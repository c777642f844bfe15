"""The scale-history analysis the fault tests rely on (no cluster: records are built by hand)."""

from __future__ import annotations

from kubernetes import client

from tests.faults.history import ScaleHistory, ScaleRecord


def _history(*points: tuple[float, int]) -> ScaleHistory:
    h = ScaleHistory(client.ApiClient(), "ns", "web")
    h.records = [ScaleRecord(at, n, str(i), ()) for i, (at, n) in enumerate(points)]
    return h


def test_max_growth_counts_the_value_in_effect_at_the_window_start() -> None:
    h = _history((0.0, 2), (1.0, 4), (21.5, 6), (42.0, 8))
    assert h.max_growth(19.5) == (2, 1.0)  # +2 per step, steps more than 19.5 s apart


def test_max_growth_sees_two_steps_inside_one_window() -> None:
    h = _history((0.0, 2), (1.0, 4), (5.7, 6))
    assert h.max_growth(19.5) == (4, 5.7)


def test_max_growth_counts_a_jump_and_value_at_reads_the_value_in_effect() -> None:
    h = _history((0.0, 4), (1.0, 9), (1.4, 4))
    assert h.max_growth(3.0) == (5, 1.0)
    assert h.value_at(1.2) == 9
    assert h.value_at(-1.0) is None
    assert [r.replicas for r in h.after(1.0)] == [4]
