"""Tenancy mode: each query carries exactly its policy's namespace; nothing in the PromQL can change it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest

from surge.api.spec import (
    BufferMetric,
    BufferMetricSpec,
    BufferSize,
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    MetricType,
    PodsMetric,
    PodsMetricSpec,
    PrometheusMetric,
    PrometheusMetricSpec,
)
from surge.decision.model import BufferReading, MetricError, PodsReading, ScalarReading
from surge.metrics.prom_tenancy import PARAM, Tenancy
from surge.metrics.prometheus import PrometheusSource
from surge.metrics.registry import build_registry
from surge.metrics.types import MetricUnavailable
from tests.support.drip_server import Answer, answer_server, prometheus_vector

T = TypeVar("T")
AVG = MetricTarget(MetricTargetType.AVERAGE_VALUE, average_value=10.0)


def one(_path: str = "") -> Answer:
    """A fresh answer (stamped now: a module-level one goes stale when the suite runs long)."""
    return Answer(body=prometheus_vector(({"pod": "p0"}, "7")))


# PromQL written to smuggle a second value of the parameter, or to end the query string early.
HOSTILE = [
    'sum(players{namespace="b"})',
    "up&namespace=b",
    "up\n&namespace=b",
    'up#"&namespace=b',
    "up%26namespace%3Db",
    "up;namespace=b",
    "up?namespace=b&query=up",
]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def params_of(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query, keep_blank_values=True)


@pytest.mark.parametrize("query", HOSTILE)
def test_the_namespace_is_sent_once_and_the_query_text_cannot_override_it(query: str) -> None:
    with answer_server(one) as server:
        source = PrometheusSource(server.url, tenancy="namespace")
        sample = run(lambda: source.query(query, namespace="a"))
        source.close()
    assert sample.value == 7.0
    (path,) = server.paths
    assert urlsplit(path).path == "/api/v1/query"
    params = params_of(path)
    assert params[PARAM] == ["a"]  # one value: prom-label-proxy would enforce the union of several
    assert params["query"] == [query]  # the PromQL arrives whole, as one parameter


def test_per_pod_queries_and_allowed_servers_carry_the_namespace_too() -> None:
    with answer_server(one) as default, answer_server(one) as other:
        source = PrometheusSource(default.url, tenancy="namespace", allowed_urls=[other.url])
        samples = run(lambda: source.query_by_pod("sum by (pod) (x)", other.url, namespace="team-a"))
        source.close()
    assert samples["p0"].value == 7.0
    assert default.requests == 0
    assert [params_of(p)[PARAM] for p in other.paths] == [["team-a"]]


@pytest.mark.parametrize("namespace", [None, "", "A", "a b", "a&namespace=b", "-a", "x" * 64])
def test_without_a_usable_namespace_no_request_is_made(namespace: str | None) -> None:
    async def scenario() -> MetricUnavailable:
        with pytest.raises(MetricUnavailable) as info:
            await source.query("up", namespace=namespace)
        return info.value

    with answer_server(one) as server:
        source = PrometheusSource(server.url, tenancy="namespace")
        error = run(scenario)
        source.close()
    assert server.requests == 0
    assert "no request was made" in error.message


def test_tenancy_off_sends_no_namespace_even_when_one_is_known() -> None:
    with answer_server(one) as server:
        source = PrometheusSource(server.url)
        run(lambda: source.query("up", namespace="a"))
        source.close()
    assert PARAM not in params_of(server.paths[0])


def test_an_unknown_mode_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="SURGE_PROMETHEUS_TENANCY"):
        PrometheusSource("http://127.0.0.1:9", tenancy="tenant")
    assert not Tenancy("").enabled
    assert Tenancy("namespace").enabled


def test_every_prometheus_backed_source_passes_the_policy_namespace() -> None:
    vector = prometheus_vector(({"pod": "p0"}, "3"))
    with answer_server(lambda _path: Answer(body=vector)) as server:
        registry = build_registry(PrometheusSource(server.url, tenancy="namespace"))
        metrics: list[MetricSpec] = [
            PrometheusMetricSpec("p", PrometheusMetric("sum(x)", AVG)),
            PodsMetricSpec("q", PodsMetric("sum by (pod) (x)", AVG)),
            BufferMetricSpec(
                "b", BufferMetric("sum(used)", BufferSize(absolute=5.0), capacity_query="sum(cap)")
            ),
        ]

        async def scenario() -> list[object]:
            return [await registry[m.type].read(m, "games") for m in metrics]

        readings = run(scenario)
    assert readings == [
        ScalarReading(3.0),
        PodsReading({"p0": 3.0}),
        BufferReading(used=3.0, capacity_per_replica=3.0),
    ]
    assert len(server.paths) == 4
    assert all(params_of(p)[PARAM] == ["games"] for p in server.paths)


def test_a_source_without_the_namespace_gets_an_error_reading_not_data() -> None:
    with answer_server(one) as server:
        registry = build_registry(PrometheusSource(server.url, tenancy="namespace"))
        metric = PrometheusMetricSpec("p", PrometheusMetric("sum(x)", AVG))
        reading = run(lambda: registry[MetricType.PROMETHEUS].read(metric))
    assert isinstance(reading, MetricError)
    assert "tenancy mode" in reading.message
    assert server.requests == 0
