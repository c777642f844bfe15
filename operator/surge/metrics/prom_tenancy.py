"""Namespace tenancy: every query of a policy carries the policy's namespace as the enforced label value.

In tenancy mode the operator's Prometheus URL points at a label-enforcing proxy (prom-label-proxy with
`-label namespace`): the proxy reads the value from the `namespace` query parameter and rewrites the PromQL so
that only series labelled with it are visible. The value is always the policy's own namespace, set here and
never taken from anything a tenant writes; a query that cannot be given one is not sent at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from surge.metrics.prom_answer import REASON, clip
from surge.metrics.types import MetricUnavailable

OFF = ""
NAMESPACE = "namespace"
MODES = (OFF, NAMESPACE)
SETTING = "--prometheus-tenancy / SURGE_PROMETHEUS_TENANCY"
# The query parameter prom-label-proxy reads (its -query-param, which defaults to the -label name).
PARAM = "namespace"
# A Kubernetes namespace name (RFC 1123 label); the API server allows nothing else in metadata.namespace.
_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class Tenancy:
    """The operator's tenancy mode: "" (off) or "namespace"."""

    mode: str = OFF

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"invalid {SETTING} {self.mode!r}: use '' (off) or 'namespace'")

    @property
    def enabled(self) -> bool:
        return self.mode == NAMESPACE

    def params(self, namespace: str | None, query: str) -> dict[str, str]:
        """The extra query parameters of a request; MetricUnavailable (and nothing sent) if unusable."""
        if not self.enabled:
            return {}
        if not namespace:
            raise MetricUnavailable(
                REASON,
                "tenancy mode is on but this query has no policy namespace to enforce, so no request "
                f"was made: {clip(query)}",
            )
        if not _NAMESPACE_NAME.fullmatch(namespace):
            raise MetricUnavailable(
                REASON, f"namespace {clip(namespace, 63)!r} is not a namespace name; no request was made"
            )
        return {PARAM: namespace}
