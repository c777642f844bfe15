"""Shapes of an instant query's result: one number, one number per pod, and everything malformed."""

from __future__ import annotations

from typing import Any

import pytest

from surge.metrics.prom_answer import reduce_by_pod, reduce_result
from surge.metrics.types import MetricUnavailable

TS = 1_700_000_000.0


def series(value: Any, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [TS, value]}


@pytest.mark.parametrize(
    ("result", "fragment"),
    [
        ([TS, "abc"], "'abc' where a number was expected"),  # a string result
        ([series("1e400")], "returned +Inf"),  # overflows float
        ([series("1e306")], "beyond the largest usable value"),
        ([series("-1e19")], "beyond the largest usable value"),
        ([series(None)], "NoneType where a number was expected"),
        ([series(True)], "bool where a number was expected"),
        ([{"metric": {}, "values": [[TS, "1"]]}], "range vector"),
        ([{"metric": {}, "value": [TS]}], "malformed sample"),
        ([{"metric": {}, "value": ["NaN", "1"]}], "valid timestamp"),
        ([{"metric": "x", "value": [TS, "1"]}], "malformed labels"),
        (["a"], "malformed sample"),
        ("a string", "unexpected result shape str"),
        (None, "unexpected result shape NoneType"),
    ],
)
def test_one_number_refuses_malformed_answers_naming_the_query(result: Any, fragment: str) -> None:
    with pytest.raises(MetricUnavailable) as info:
        reduce_result("sum(players)", result)
    assert fragment in info.value.message
    assert info.value.message.endswith(": sum(players)")


def test_one_number_accepts_plain_json_numbers() -> None:
    assert reduce_result("q", [series(3)]).value == 3.0


def test_by_pod_keys_each_series_by_its_pod_label() -> None:
    samples = reduce_by_pod(
        "q", [series("1.5", pod="a", namespace="n"), series("2", pod="b"), series("0", pod="c")]
    )
    assert {pod: s.value for pod, s in samples.items()} == {"a": 1.5, "b": 2.0, "c": 0.0}
    assert samples["a"].timestamp == TS


def test_by_pod_drops_nan_and_inf_as_missing_for_that_pod() -> None:
    samples = reduce_by_pod("q", [series("NaN", pod="a"), series("+Inf", pod="b"), series("4", pod="c")])
    assert set(samples) == {"c"}


@pytest.mark.parametrize(
    ("result", "fragment"),
    [
        ([], "no data"),
        ([TS, "3"], "returned a scalar"),
        ([series("1", job="x")], "without a `pod` label"),
        ([series("1", pod="")], "without a `pod` label"),
        ([series("1", pod="a"), series("2", pod="a")], "more than one series for pod 'a'"),
        ([series("NaN", pod="a"), series("-Inf", pod="b")], "every one of 2 pods"),
        ([series("x", pod="a")], "where a number was expected"),
        ([series("1e300", pod="a")], "beyond the largest usable value"),
        ({"pod": "a"}, "unexpected result shape dict"),
    ],
)
def test_by_pod_refuses_shapes_it_cannot_key(result: Any, fragment: str) -> None:
    with pytest.raises(MetricUnavailable) as info:
        reduce_by_pod("sum by (pod) (rate(x[1m]))", result)
    assert fragment in info.value.message
    assert "sum by (pod) (rate(x[1m]))" in info.value.message
