"""The simulator's tiny Prometheus: scrapes, staleness, rate() extrapolation, aggregation, errors."""

from __future__ import annotations

import math

import pytest

from surge.simulate.promql import TSDB, PromQLError, evaluate, extrapolated_rate, parse

A = frozenset({("pod", "a"), ("namespace", "sim")})
B = frozenset({("pod", "b"), ("namespace", "sim")})


def _db(points: dict[float, dict[str, float]], name: str = "m") -> TSDB:
    db = TSDB()
    for t, values in sorted(points.items()):
        db.scrape(t, {(name, A if pod == "a" else B): v for pod, v in values.items()})
    return db


def test_instant_selector_sees_the_latest_scrape_not_the_future() -> None:
    db = _db({0.0: {"a": 1}, 5.0: {"a": 2}, 10.0: {"a": 3}})
    assert evaluate("sum(m)", db, 7.0) == {frozenset(): 2.0}
    assert evaluate("sum(m)", db, 10.0) == {frozenset(): 3.0}


def test_a_vanished_series_is_stale_at_the_next_scrape() -> None:
    db = _db({0.0: {"a": 1, "b": 10}, 5.0: {"a": 2}})
    assert evaluate("sum(m)", db, 4.0) == {frozenset(): 11.0}
    assert evaluate("sum(m)", db, 6.0) == {frozenset(): 2.0}


def test_rate_extrapolates_like_prometheus() -> None:
    # Counter growing 10/s, sampled every 5 s; window [15s] ending 2 s after the last sample.
    pts = [(5.0, 50.0), (10.0, 100.0), (15.0, 150.0)]
    # sampled 10 s, 2 to the end (< 1.1 x 5: extrapolated), 3 to the start (< threshold too)
    assert extrapolated_rate(pts, 2.0, 17.0, is_rate=True) == pytest.approx(100.0 * 15.0 / 10.0 / 15.0)
    # A counter born inside the window is extrapolated at most to where it would have been zero.
    born = [(10.0, 0.0), (15.0, 50.0)]
    assert extrapolated_rate(born, 2.0, 17.0, is_rate=False) == pytest.approx(50.0 * (5 + 0 + 2) / 5)
    assert extrapolated_rate([(1.0, 3.0)], 0.0, 15.0, is_rate=True) is None


def test_rate_counts_a_counter_reset() -> None:
    pts = [(0.0, 10.0), (5.0, 20.0), (10.0, 5.0)]
    increase = extrapolated_rate(pts, 0.0, 10.0, is_rate=False)
    assert increase == pytest.approx(15.0)  # 10 -> 20 (+10), reset, 0 -> 5 (+5)


def test_buffer_query_of_the_bench_evaluates_with_namespace_matchers_ignored() -> None:
    db = TSDB()
    for t in (0.0, 5.0, 10.0, 15.0):
        db.scrape(
            t,
            {
                ("surge_game_players_online", A): 100.0,
                ("surge_game_players_online", B): 50.0,
                ("surge_game_join_rejected_total", A): 2.0 * t,
                ("surge_game_join_rejected_total", B): 0.0,
                ("surge_game_capacity_players", A): 100.0,
                ("surge_game_capacity_players", B): 200.0,
            },
        )
    used = parse(
        'sum(surge_game_players_online{namespace="games"})'
        ' + sum(rate(surge_game_join_rejected_total{namespace="games"}[15s]))'
    )
    assert used.evaluate(db, 15.0) == {frozenset(): 152.0}  # 150 online + 2 rejections/s
    assert evaluate('avg(surge_game_capacity_players{namespace="x"})', db, 15.0) == {frozenset(): 150.0}
    by_pod = evaluate('sum by (pod) (surge_game_players_online{pod=~"a|b"})', db, 15.0)
    assert by_pod == {frozenset({("pod", "a")}): 100.0, frozenset({("pod", "b")}): 50.0}
    assert evaluate('count(surge_game_players_online{pod!="a"}) * 2 - 1', db, 15.0) == {frozenset(): 1.0}


def test_arithmetic_and_division_by_zero() -> None:
    db = TSDB()
    assert evaluate("(1 + 2) * -3 / 2", db, 0.0) == pytest.approx(-4.5)
    value = evaluate("1 / 0", db, 0.0)
    assert isinstance(value, float)
    assert math.isinf(value)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("histogram_quantile(0.9, x)", "not supported"),
        ("m[5m]", "inside a function"),
        ("sum(m", r"expected \)"),
        ("m{pod~'a'}", "cannot parse"),
    ],
)
def test_unsupported_or_malformed_promql_is_a_clear_error(query: str, message: str) -> None:
    with pytest.raises(PromQLError, match=message):
        parse(query)
