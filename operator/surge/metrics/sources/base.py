"""What every metric source is, and the PromQL client the Prometheus-backed ones share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from surge.api.spec import MetricSpec
from surge.decision.model import Reading
from surge.metrics.types import Sample


@dataclass(frozen=True, slots=True)
class Needs:
    """What a metric type reads besides its own query, fetched once per tick for all metrics."""

    pods: bool = False  # the target's pods (readiness, start times, requests)
    pod_metrics: bool = False  # metrics.k8s.io usage of those pods


class MetricSource(Protocol):
    @property
    def needs(self) -> Needs: ...

    async def read(self, metric: MetricSpec, namespace: str | None = None) -> Reading | None:
        """This metric's reading; None when it reads only the shared pods and pod metrics.

        `namespace` is the policy's: in tenancy mode its queries can only see series of that namespace, and
        without it they are not sent. A metric that cannot be read is a MetricError reading, never an
        exception.
        """
        ...


class PromQL(Protocol):
    """Instant queries against Prometheus (surge.metrics.prometheus.PrometheusSource).

    Both raise MetricUnavailable on any failure. `namespace` is the namespace of the policy asking: in
    tenancy mode it is the label value the query is confined to (surge.metrics.prom_tenancy).
    """

    async def query(self, query: str, server: str | None = None, namespace: str | None = None) -> Sample:
        """One number."""
        ...

    async def query_by_pod(
        self, query: str, server: str | None = None, namespace: str | None = None
    ) -> dict[str, Sample]:
        """One series per pod, keyed by its ``pod`` label."""
        ...


def confined_to(namespace: str | None) -> dict[str, str]:
    """The keyword that confines a PromQL call to the policy's namespace; none when it is not known.

    Without a namespace the call keeps its two-argument form (PromQL implementations written before
    tenancy, e.g. test fakes, still fit); the real client then refuses to send it if tenancy is on.
    """
    return {} if namespace is None else {"namespace": namespace}
