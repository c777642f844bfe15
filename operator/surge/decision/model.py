"""Input values for the decision engine: what the reconcile loop observed this tick.

Plain frozen data; every time is a float in seconds (epoch or simulated, as long as it is one clock).
CPU is in cores, memory in bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from surge.api.spec import ResourceAmounts

__all__ = [
    "BufferReading",
    "ContainerResources",
    "EngineSettings",
    "MetricError",
    "OOMEvent",
    "Observation",
    "PodInfo",
    "PodUsage",
    "PodsReading",
    "Reading",
    "ScalarReading",
]


@dataclass(frozen=True, slots=True)
class PodInfo:
    """The parts of a Pod the HPA algorithm looks at."""

    name: str
    phase: str = "Running"  # Pending | Running | Succeeded | Failed | Unknown
    ready: bool | None = True  # status of the Ready condition; None: no Ready condition yet
    ready_transition_time: float | None = None  # lastTransitionTime of the Ready condition
    start_time: float | None = None  # status.startTime; None: not started
    deleting: bool = False  # metadata.deletionTimestamp is set
    requests: Mapping[str, ResourceAmounts] = field(default_factory=dict)  # container -> requests


@dataclass(frozen=True, slots=True)
class PodUsage:
    """One metrics.k8s.io PodMetrics item: usage per container over ``window`` ending at ``timestamp``."""

    timestamp: float
    containers: Mapping[str, ResourceAmounts]
    window: float = 30.0

    def total(self, resource: str, container: str | None = None) -> float | None:
        """Usage of ``resource`` summed over containers (or one container); None if not reported."""
        values = [
            amounts.get(resource)
            for name, amounts in self.containers.items()
            if container is None or name == container
        ]
        present = [v for v in values if v is not None]
        if not present:
            return None
        return sum(present)


@dataclass(frozen=True, slots=True)
class ScalarReading:
    """A Prometheus query result (one number)."""

    value: float


@dataclass(frozen=True, slots=True)
class BufferReading:
    """A Buffer metric: used capacity, and the per-replica capacity when it comes from ``capacityQuery``."""

    used: float
    capacity_per_replica: float | None = None


@dataclass(frozen=True, slots=True)
class PodsReading:
    """A Pods metric: one value per pod name (pods without a series are simply absent)."""

    values: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class MetricError:
    """Fetching a metric failed (or its data was stale): counts as a failed metric."""

    message: str


Reading = ScalarReading | BufferReading | PodsReading | MetricError


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Operator-wide knobs of the engine (kube-controller-manager flags for the HPA), with HPA's defaults."""

    # --horizontal-pod-autoscaler-cpu-initialization-period: a CPU sample of a pod younger than this is
    # trusted only if the pod was ready when it was taken.
    cpu_initialization_period: float = 300.0
    # --horizontal-pod-autoscaler-initial-readiness-delay: readiness flips within this time after start
    # count as initial readiness, not as a pod that was ready and became unready.
    initial_readiness_delay: float = 30.0


@dataclass(frozen=True, slots=True)
class ContainerResources:
    """A container of the target's pod template with its current requests and limits."""

    name: str
    requests: ResourceAmounts = field(default_factory=ResourceAmounts)
    limits: ResourceAmounts = field(default_factory=ResourceAmounts)


@dataclass(frozen=True, slots=True)
class OOMEvent:
    """A container was OOM-killed at ``timestamp`` while using ``memory`` bytes (usually its limit)."""

    container: str
    timestamp: float
    memory: float


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything one tick observed about the target.

    - ``current_replicas``: ``spec.replicas`` of the target's /scale subresource.
    - ``pods``: the target's pods (selector from /scale ``status.selector``).
    - ``pod_metrics``: metrics.k8s.io usage by pod name, shared by all Resource metrics and the
      vertical recommender; a MetricError when the fetch failed; None when not fetched.
    - ``readings``: Prometheus / Buffer results keyed by ``MetricSpec.name``.
    - ``containers``: the pod template's containers (current requests/limits) for vertical sizing.
    - ``ooms``: OOM kills seen since the previous tick (older ones are ignored by timestamp).
    """

    current_replicas: int
    pods: Sequence[PodInfo] = ()
    pod_metrics: Mapping[str, PodUsage] | MetricError | None = None
    readings: Mapping[str, Reading] = field(default_factory=dict)
    containers: Sequence[ContainerResources] = ()
    ooms: Sequence[OOMEvent] = ()
    ready_replicas: int | None = None  # ready pods; None: count Running+Ready pods in ``pods``
