"""Pure parts of the metric sources: result shapes, error texts, pod and PodMetrics parsing."""

from __future__ import annotations

from typing import Any

import pytest

from surge.metrics.pods import parse_pod
from surge.metrics.prom_http import reduce_error_answer
from surge.metrics.prometheus import reduce_result
from surge.metrics.resource import parse_pod_metrics
from surge.metrics.timeparse import go_duration_seconds, rfc3339_to_unix
from surge.metrics.types import MetricUnavailable


@pytest.mark.parametrize(
    ("result", "value"),
    [
        ([1700000000.0, "42"], 42.0),  # scalar
        ([{"metric": {}, "value": [1700000000.0, "7.5"]}], 7.5),  # one-element vector
    ],
)
def test_reduce_result_takes_one_number(result: Any, value: float) -> None:
    sample = reduce_result("q", result)
    assert sample.value == value
    assert sample.timestamp == 1700000000.0


@pytest.mark.parametrize(
    ("result", "fragment"),
    [
        ([], "no data"),
        ([{"value": [1, "1"]}, {"value": [1, "2"]}], "2 series"),
        ([{"value": [1, "NaN"]}], "NaN"),
        ([{"value": [1, "+Inf"]}], "+Inf"),
        ({"weird": True}, "unexpected result"),
    ],
)
def test_reduce_result_refuses_what_is_not_one_number(result: Any, fragment: str) -> None:
    with pytest.raises(MetricUnavailable) as info:
        reduce_result("sum(x)", result)
    assert fragment in info.value.message
    assert info.value.reason == "FailedGetPrometheusMetric"


def test_error_answer_keeps_only_prometheus_fields() -> None:
    body = (
        b'{"status":"error","errorType":"bad_data",'
        b'"error":"invalid parameter \\"query\\": 1:5: parse error: unclosed left parenthesis",'
        b'"data":"secret page"}'
    )
    answer = reduce_error_answer(400, body)
    assert (answer.status, answer.error_type) == (400, "bad_data")
    assert answer.error == 'invalid parameter "query": 1:5: parse error: unclosed left parenthesis'
    assert "secret" not in str(answer)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>internal admin page</html>",
        b"",
        b'{"message": "internal admin page"}',
        b'["internal admin page"]',
        b'{"error": {"nested": "internal admin page"}}',
        b"[" * 100_000,
    ],
)
def test_error_answer_without_prometheus_fields_is_only_the_status(body: bytes) -> None:
    answer = reduce_error_answer(502, body)
    assert str(answer) == "HTTP 502"
    assert answer.error is None


def test_error_answer_fields_are_clipped_and_printable() -> None:
    answer = reduce_error_answer(422, rb'{"errorType":"x\u0007y","error":"' + b"e" * 5000 + rb'\nz"}')
    assert answer.error_type == "x y"
    assert answer.error is not None
    assert len(answer.error) <= 303
    assert all(ch.isprintable() for ch in answer.error)


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5.0), ("1m0.5s", 60.5), ("10.012s", 10.012), ("1h2m", 3720.0)]
)
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration_seconds(text) == pytest.approx(seconds)


def test_pod_metrics_are_parsed_in_cores_and_bytes() -> None:
    name, labels, usage = parse_pod_metrics(
        {
            "metadata": {"name": "web-1", "labels": {"app": "web"}},
            "timestamp": "2026-11-27T10:00:00Z",
            "window": "10.5s",
            "containers": [
                {"name": "app", "usage": {"cpu": "250000000n", "memory": "300Mi"}},
                {"name": "side", "usage": {"cpu": "5m", "memory": "1Ki"}},
            ],
        }
    )
    assert name == "web-1"
    assert labels == {"app": "web"}
    assert usage.timestamp == rfc3339_to_unix("2026-11-27T10:00:00Z")
    assert usage.window == 10.5
    assert usage.total("cpu") == pytest.approx(0.255)
    assert usage.total("memory", "app") == 300 * 2**20


def test_pod_is_reduced_to_what_the_engine_reads() -> None:
    snap = parse_pod(
        {
            "metadata": {"name": "p", "uid": "u1", "creationTimestamp": "2026-11-27T10:00:00Z"},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "resources": {
                            "requests": {"cpu": "500m", "memory": "1Gi"},
                            "limits": {"memory": "2Gi"},
                        },
                    }
                ]
            },
            "status": {
                "phase": "Running",
                "startTime": "2026-11-27T10:00:01Z",
                "conditions": [
                    {"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-27T10:00:02Z"}
                ],
                "containerStatuses": [
                    {
                        "name": "app",
                        "lastState": {
                            "terminated": {"reason": "OOMKilled", "finishedAt": "2026-11-27T10:05:00Z"}
                        },
                    }
                ],
            },
        }
    )
    assert snap.uid == "u1"
    assert snap.info.ready is False
    assert snap.info.requests["app"].cpu == 0.5
    assert snap.containers[0].limits.memory == 2 * 2**30
    assert snap.ooms[0].container == "app"
    assert snap.ooms[0].memory == 2 * 2**30  # the limit it was killed at
    assert snap.ooms[0].timestamp == rfc3339_to_unix("2026-11-27T10:05:00Z")


def test_pod_without_ready_condition_is_unknown_not_unready() -> None:
    snap = parse_pod({"metadata": {"name": "p"}, "spec": {"containers": []}, "status": {"phase": "Pending"}})
    assert snap.info.ready is None
    assert snap.info.phase == "Pending"
