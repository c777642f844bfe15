"""The simulated fleet: a Deployment's pods, the players on them, and what the metric pipelines see.

It mirrors the test bed piece by piece, so each delay has a measured counterpart there:

- pods: a scale write creates pods that are Running and Ready `pod_start_delay` later (KWOK's fast stage
  plus the Deployment/ReplicaSet controllers and the scheduler); a scale-down deletes at once, unready
  pods first, then the most recently Ready (the ReplicaSet's ranking);
- players: the load generator's own `Sessions` model, one step per `plane_step` second, pod capacity
  from the CPU request (`surge_game.vocabulary.capacity_players`), CPU/memory from its `CostModel`;
- CPU usage: written as KWOK usage annotations through the load generator's `PatchBatcher` (at most
  one write per pod per 5 s, only when the load moved), integrated into a cumulative counter as KWOK's
  kubelet does; metrics-server scrapes it every `metrics_resolution` and serves a pod's usage only from
  its `metrics_first_scrapes`-th scrape on (3 on the test bed, 20-30 s after Ready: bench/simulate_measure),
  averaged over the last scrape interval;
- game metrics: per-pod gauges and counters as the sim plane exports them, scraped by the simulated
  Prometheus every `scrape_interval` (surge.simulate.promql).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from surge_game.vocabulary import (
    CAPACITY_PLAYERS,
    DEMAND_PLAYERS,
    JOIN_ACCEPTED_TOTAL,
    JOIN_REJECTED_TOTAL,
    PLAYERS_ONLINE,
    UNSERVED_PLAYERS,
    CostModel,
)
from surge_loadgen.model import PatchBatcher, Sessions, Usage
from surge_loadgen.timeline import Sample, dominant

from surge.api.spec import ResourceAmounts
from surge.decision.model import PodInfo, PodUsage
from surge.simulate.promql import Labels

__all__ = ["Fleet", "FleetTiming", "SimPod"]

_MIB = 1024.0 * 1024.0


@dataclass(frozen=True)
class FleetTiming:
    """The test bed's timing constants (docs/simulate.md, "Fleet model", says where each comes from)."""

    pod_start_delay: float = 0.1  # scale write -> pod Running+Ready: 0.06-0.14 s measured (KWOK fast stage)
    plane_step: float = 1.0  # the load generator's step
    patch_interval: float = 5.0  # PatchBatcher.min_interval: usage annotation writes per pod
    metrics_resolution: float = 10.0  # metrics-server --metric-resolution
    metrics_first_scrapes: int = 3  # a new pod's first usage point: its 3rd scrape (20.5-29.7 s measured)
    scrape_interval: float = 5.0  # Prometheus scrape_interval of the load generator's /metrics
    hpa_sync_period: float = 15.0  # kube-controller-manager --horizontal-pod-autoscaler-sync-period

    def __post_init__(self) -> None:
        for name in (
            "plane_step",
            "patch_interval",
            "metrics_resolution",
            "scrape_interval",
            "hpa_sync_period",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.pod_start_delay < 0:
            raise ValueError("pod_start_delay must be >= 0")
        if self.metrics_first_scrapes < 1:
            raise ValueError("metrics_first_scrapes must be >= 1")


@dataclass
class SimPod:
    name: str
    created: float
    ready_at: float
    cpu_request_m: float
    memory_request: float  # bytes
    usage_m: float = 0.0  # the KWOK usage annotation now (millicores)
    usage_mi: float = 0.0
    cpu_total: float = 0.0  # cumulative CPU (millicore-seconds) up to `cpu_at`
    cpu_at: float = 0.0
    scrapes: list[tuple[float, float]] = field(default_factory=list)  # metrics-server: last 2 (t, cpu)
    scrape_count: int = 0
    accepted_total: int = 0
    rejected_total: int = 0

    def ready(self, t: float) -> bool:
        return t >= self.ready_at

    def advance_cpu(self, t: float) -> None:
        if t > self.cpu_at:
            if self.cpu_at >= self.ready_at:
                self.cpu_total += self.usage_m * (t - self.cpu_at)
            self.cpu_at = t


@dataclass
class Fleet:
    """One Deployment and its pods; every method takes the virtual time."""

    container: str
    cpu_request_m: float
    memory_request: float
    timing: FleetTiming
    cost: CostModel = field(default_factory=CostModel)
    replicas: int = 0  # spec.replicas
    pods: list[SimPod] = field(default_factory=list)
    sessions: Sessions = field(default_factory=Sessions)
    batcher: PatchBatcher = field(default_factory=PatchBatcher)
    rejected_total: int = 0
    dropped_total: int = 0
    api_writes: int = 0
    demand: int = 0
    unserved: int = 0
    _serial: int = 0

    def __post_init__(self) -> None:
        self.batcher = PatchBatcher(min_interval=self.timing.patch_interval)

    # --- the Deployment and ReplicaSet controllers ------------------------------------------------
    def scale(self, replicas: int, t: float) -> None:
        self.replicas = replicas
        while len(self.pods) < replicas:
            self._serial += 1
            self.pods.append(
                SimPod(
                    f"arena-{self._serial:05d}",
                    created=t,
                    ready_at=t + self.timing.pod_start_delay,
                    cpu_request_m=self.cpu_request_m,
                    memory_request=self.memory_request,
                    cpu_at=t,
                )
            )
        if len(self.pods) > replicas:
            # ReplicaSet ranking: not-ready pods go first, then the most recently ready (then created).
            ranked = sorted(self.pods, key=lambda p: (p.ready(t), -p.ready_at, -p.created))
            gone = {p.name for p in ranked[: len(self.pods) - replicas]}
            self.pods = [p for p in self.pods if p.name not in gone]

    def ready_pods(self, t: float) -> list[SimPod]:
        return [p for p in self.pods if p.ready(t)]

    def resize(self, pod_name: str, cpu_m: float | None, memory: float | None) -> None:
        for pod in self.pods:
            if pod.name == pod_name:
                pod.cpu_request_m = cpu_m if cpu_m is not None else pod.cpu_request_m
                pod.memory_request = memory if memory is not None else pod.memory_request

    # --- the load generator's step (surge_loadgen.sim.SimPlane.step without the API) ---------------
    def step(self, t: float, demand: int) -> Sample:
        ready = self.ready_pods(t)
        capacities = {p.name: self.cost.capacity(p.cpu_request_m) for p in ready}
        result = self.sessions.step(capacities, demand)
        self.rejected_total += result.rejected
        self.dropped_total += result.dropped
        self.demand, self.unserved = demand, result.unserved
        wanted = {
            p.name: Usage(
                cpu_m=round(self.cost.cpu_millis(self.sessions.players[p.name])),
                memory_mi=round(self.cost.memory_mib(self.sessions.players[p.name])),
            )
            for p in ready
        }
        due = self.batcher.due(t, wanted)
        names = sorted(p.name for p in ready)
        share, extra = divmod(result.rejected, len(names)) if names else (0, 0)
        rank = {name: i for i, name in enumerate(names)}
        for pod in ready:
            if pod.name in due:
                pod.advance_cpu(t)
                pod.usage_m, pod.usage_mi = due[pod.name].cpu_m, due[pod.name].memory_mi
                self.batcher.done(pod.name, due[pod.name], t)
                self.api_writes += 1
            pod.accepted_total += result.joined.get(pod.name, 0)
            pod.rejected_total += share + (1 if rank[pod.name] < extra else 0)
        return Sample(
            t=t,
            demand=demand,
            served=result.served,
            unserved=result.unserved,
            capacity=sum(capacities.values()),
            replicas_ready=len(ready),
            replicas_desired=self.replicas,
            cpu_request_m=dominant([round(p.cpu_request_m) for p in ready]),
            rejected_total=self.rejected_total,
            dropped_total=self.dropped_total,
            api_writes_total=self.api_writes,
        )

    # --- metrics pipelines --------------------------------------------------------------------------
    def exported(self, t: float) -> dict[tuple[str, Labels], float]:
        """The load generator's /metrics right now (one series per Ready pod, plus the fleet's)."""
        out: dict[tuple[str, Labels], float] = {}
        for pod in self.ready_pods(t):
            labels: Labels = frozenset({("pod", pod.name), ("namespace", "sim")})
            out[(PLAYERS_ONLINE, labels)] = self.sessions.players.get(pod.name, 0)
            out[(CAPACITY_PLAYERS, labels)] = self.cost.capacity(pod.cpu_request_m)
            out[(JOIN_ACCEPTED_TOTAL, labels)] = pod.accepted_total
            out[(JOIN_REJECTED_TOTAL, labels)] = pod.rejected_total
        fleet: Labels = frozenset({("namespace", "sim")})
        out[(DEMAND_PLAYERS, fleet)] = self.demand
        out[(UNSERVED_PLAYERS, fleet)] = self.unserved
        return out

    def metrics_server_scrape(self, t: float) -> None:
        for pod in self.ready_pods(t):
            pod.advance_cpu(t)
            pod.scrapes = [*pod.scrapes[-1:], (t, pod.cpu_total)]
            pod.scrape_count += 1

    def pod_usage(self) -> dict[str, PodUsage]:
        """metrics.k8s.io PodMetrics: usage over the last scrape interval, for pods with two scrapes."""
        out: dict[str, PodUsage] = {}
        need = max(2, self.timing.metrics_first_scrapes)
        for pod in self.pods:
            if len(pod.scrapes) < 2 or pod.scrape_count < need:
                continue
            (t0, c0), (t1, c1) = pod.scrapes[-2], pod.scrapes[-1]
            cores = (c1 - c0) / (t1 - t0) / 1000.0
            out[pod.name] = PodUsage(
                timestamp=t1,
                containers={self.container: ResourceAmounts(cpu=cores, memory=pod.usage_mi * _MIB)},
                window=t1 - t0,
            )
        return out

    def pod_infos(self, t: float) -> list[PodInfo]:
        infos = []
        for pod in self.pods:
            ready = pod.ready(t)
            requests = {
                self.container: ResourceAmounts(cpu=pod.cpu_request_m / 1000.0, memory=pod.memory_request)
            }
            infos.append(
                PodInfo(
                    name=pod.name,
                    phase="Running" if ready else "Pending",
                    ready=True if ready else None,
                    ready_transition_time=pod.ready_at if ready else None,
                    start_time=pod.ready_at if ready else None,
                    requests=requests,
                )
            )
        return infos
