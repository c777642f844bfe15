"""Resource (cpu/memory) metrics read the shared metrics.k8s.io usage of the target's pods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from surge.api.spec import MetricSpec
from surge.decision.model import Reading
from surge.metrics.sources.base import Needs


@dataclass(frozen=True, slots=True)
class ResourceSource:
    needs: ClassVar[Needs] = Needs(pods=True, pod_metrics=True)

    async def read(self, metric: MetricSpec, namespace: str | None = None) -> Reading | None:
        return None  # the engine reads Observation.pod_metrics, fetched once for all Resource metrics
