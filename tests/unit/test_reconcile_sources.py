"""Metric sources behind the registry, and the bodies the real ports send (preconditions)."""

from __future__ import annotations

import asyncio

import pytest

from surge.actuation.scale import scale_patch
from surge.api import reasons
from surge.api.spec import (
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    MetricType,
    PodsMetric,
    PodsMetricSpec,
    PrometheusMetric,
    PrometheusMetricSpec,
)
from surge.decision.model import MetricError, PodsReading, ScalarReading
from surge.metrics.registry import SOURCES, build_registry
from surge.metrics.types import MetricUnavailable
from surge.policy_store import status_body
from tests.unit.fakes import FakePrometheus

AVG = MetricTarget(MetricTargetType.AVERAGE_VALUE, average_value=10.0)


def test_every_metric_type_has_a_source_and_a_reason() -> None:
    assert set(SOURCES) == set(MetricType)
    for metric_type in MetricType:
        assert reasons.failed_metric(metric_type).startswith("FailedGet")


def test_the_reasons_of_conditions_and_events_are_hpa_words() -> None:
    assert reasons.failed_metric(MetricType.RESOURCE) == "FailedGetResourceMetric"
    assert reasons.failed_metric(MetricType.PODS) == "FailedGetPodsMetric"
    assert reasons.failed_metric(MetricType.PROMETHEUS) == "FailedGetExternalMetric"
    assert reasons.failed_metric(MetricType.BUFFER) == "FailedGetExternalMetric"


def test_pods_source_reads_one_value_per_pod_and_needs_the_pods() -> None:
    prom = FakePrometheus(by_pod={"avg(players) by (pod)": {"p0": 12.0, "p1": 8.0}})
    source = build_registry(prom)[MetricType.PODS]
    metric = PodsMetricSpec("pods-0", PodsMetric("avg(players) by (pod)", AVG))
    assert source.needs.pods
    assert not source.needs.pod_metrics
    assert asyncio.run(source.read(metric)) == PodsReading({"p0": 12.0, "p1": 8.0})


@pytest.mark.parametrize("metric_type", [MetricType.PODS, MetricType.PROMETHEUS])
def test_an_unavailable_query_is_a_metric_error_reading(metric_type: MetricType) -> None:
    down = MetricUnavailable("FailedGetPrometheusMetric", "Prometheus at http://127.0.0.1:9 unreachable")
    prom = FakePrometheus(answers={"q": down}, by_pod={"q": down})
    metric: MetricSpec = (
        PodsMetricSpec("m", PodsMetric("q", AVG))
        if metric_type is MetricType.PODS
        else PrometheusMetricSpec("m", PrometheusMetric("q", AVG))
    )
    reading = asyncio.run(build_registry(prom)[metric_type].read(metric))
    assert reading == MetricError(down.message)


def test_prometheus_source_reads_one_number() -> None:
    prom = FakePrometheus(answers={"sum(players)": 42.0})
    metric = PrometheusMetricSpec("p", PrometheusMetric("sum(players)", AVG))
    assert asyncio.run(build_registry(prom)[MetricType.PROMETHEUS].read(metric)) == ScalarReading(42.0)


def test_resource_metrics_read_the_shared_pod_metrics() -> None:
    source = build_registry(FakePrometheus())[MetricType.RESOURCE]
    assert source.needs.pods
    assert source.needs.pod_metrics


def test_writes_carry_the_resource_version_they_were_based_on() -> None:
    assert scale_patch(7, "42") == {"spec": {"replicas": 7}, "metadata": {"resourceVersion": "42"}}
    assert scale_patch(7, "") == {"spec": {"replicas": 7}}
    assert status_body({"desiredReplicas": 3}, "9") == {
        "status": {"desiredReplicas": 3},
        "metadata": {"resourceVersion": "9"},
    }
