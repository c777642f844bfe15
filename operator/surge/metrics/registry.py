"""Metric sources behind one registry keyed by MetricType.

A source turns one ``MetricSpec`` into a decision-engine ``Reading``. Adding a metric type is one module
under ``metrics/sources/`` and one line in ``SOURCES``, besides its spec class in ``surge.api.spec`` and its
arms in ``surge.decision.horizontal`` (docs/design.md, "Who does what").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from surge.api.spec import MetricType
from surge.metrics.sources.base import MetricSource, Needs, PromQL
from surge.metrics.sources.buffer import BufferSource
from surge.metrics.sources.pods import PodsSource
from surge.metrics.sources.prometheus import PrometheusMetricSource
from surge.metrics.sources.resource import ResourceSource

__all__ = ["SOURCES", "MetricSource", "Needs", "PromQL", "Registry", "build_registry"]

Registry = Mapping[MetricType, MetricSource]

# One line per metric type.
SOURCES: dict[MetricType, Callable[[PromQL], MetricSource]] = {
    MetricType.RESOURCE: lambda _: ResourceSource(),
    MetricType.PROMETHEUS: PrometheusMetricSource,
    MetricType.BUFFER: BufferSource,
    MetricType.PODS: PodsSource,
}


def build_registry(prom: PromQL) -> dict[MetricType, MetricSource]:
    return {metric_type: make(prom) for metric_type, make in SOURCES.items()}
