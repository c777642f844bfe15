"""The simulation loop: a virtual clock drives the fleet, the two metric pipelines and the autoscaler's ticks.

Each tick does what `surge.reconcile` does with the answers the simulated cluster gives: build an
`Observation`, call `surge.decision.plan` with the policy's `PlanState`, turn the decision into writes with
`surge.decision.actuation_plan.plan_actuation`, keep `decision.state` when the write happened and
`decision.unapplied_state` when it did not. Nothing of the engine is re-implemented here, so whatever the
engine knows (behavior, predictive, fallback, saturation, schedules...) applies in simulation too.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from surge_game.vocabulary import CostModel
from surge_loadgen.summary import summarize
from surge_loadgen.timeline import Sample
from surge_loadgen.trace import Trace

from surge.api.quantity import quantity_to_float
from surge.api.spec import (
    BufferMetricSpec,
    Mode,
    PodsMetricSpec,
    PolicySpec,
    PrometheusMetricSpec,
    ResourceAmounts,
    ResourceMetricSpec,
    UpdateMode,
)
from surge.decision.actuation_plan import ActuationPlan, PodView, plan_actuation
from surge.decision.model import (
    BufferReading,
    ContainerResources,
    EngineSettings,
    MetricError,
    Observation,
    PodsReading,
    Reading,
    ScalarReading,
)
from surge.decision.plan import Decision, PlanState, plan
from surge.simulate.fleet import Fleet, FleetTiming
from surge.simulate.oracle import oracle_replica_seconds
from surge.simulate.policy import FleetSpec
from surge.simulate.promql import TSDB, PromQLError, Query, Vector, parse

__all__ = ["Contender", "SimConfig", "SimResult", "VirtualClock", "simulate"]

# The operator's per-tick jitter (surge.reconcile.JITTER, +-5%); the HPA controller has none.
OPERATOR_JITTER = 0.05
MAX_SAMPLE_AGE = 180.0  # the operator drops metrics.k8s.io samples older than this (surge.metrics.resource)


@dataclass(frozen=True)
class Contender:
    """One autoscaler to replay: its policy and how it ticks."""

    key: str
    title: str
    spec: PolicySpec
    jitter: float = OPERATOR_JITTER  # 0 for the HPA controller's fixed sync period


@dataclass(frozen=True)
class SimConfig:
    timing: FleetTiming = field(default_factory=FleetTiming)
    warmup: float = 45.0  # seconds at the trace's first demand before t = 0 (bench/spike does the same)
    start_jitter: float = 10.0  # plus U(0, this): the bench's random start offset
    seed: int = 1  # phases of ticks and scrapes, jitter; same seed, same result
    # Epoch seconds where the warm-up starts: the engine's `now` is this plus the virtual seconds, so rules
    # that look at the time of day (schedules) see the date chosen here. 0 = 1970-01-01T00:00:00Z.
    start: float = 0.0
    settings: EngineSettings = field(default_factory=EngineSettings)


@dataclass(frozen=True)
class Tick:
    t: float  # trace time
    from_replicas: int
    to_replicas: int
    reason: str


@dataclass
class SimResult:
    contender: Contender
    samples: list[Sample]
    summary: dict[str, Any]
    ticks: list[Tick]


class VirtualClock:
    """Events at virtual times, run in time order (ties: by priority, then by scheduling order)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, int, Callable[[], None]]] = []
        self._seq = 0

    def at(self, t: float, priority: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, priority, self._seq, action))

    def run_until(self, end: float) -> None:
        while self._heap and self._heap[0][0] <= end:
            t, _, _, action = heapq.heappop(self._heap)
            self.now = t
            action()
        self.now = end


# Same-time order: the data plane moves first, then the pipelines scrape it, then the autoscaler reads.
_PLANE, _METRICS_SERVER, _PROMETHEUS, _TICK = 0, 1, 2, 3


def _one(value: float | Vector, query: str) -> float | MetricError:
    """One number, as surge.metrics.prom_answer.reduce_result wants it."""
    if not isinstance(value, dict):
        return value
    if not value:
        return MetricError(f"query returned no data (no series match, or they are stale): {query}")
    if len(value) > 1:
        return MetricError(f"query returned {len(value)} series, expected one number; wrap it in sum(...)")
    number = next(iter(value.values()))
    if number != number or number in (float("inf"), float("-inf")):
        return MetricError(f"query returned {number}: {query}")
    return number


class _Autoscaler:
    """One policy's loop: the pure engine fed with the simulated cluster's answers."""

    def __init__(self, contender: Contender, fleet: Fleet, db: TSDB, settings: EngineSettings) -> None:
        self.spec = contender.spec
        self.fleet, self.db, self.settings = fleet, db, settings
        self.state = PlanState()
        self.last_tick: float | None = None
        self.queries: dict[str, Query] = {}
        metrics = self.spec.horizontal.metrics if self.spec.horizontal else ()
        for metric in metrics:
            for text in _queries(metric):
                try:
                    self.queries[text] = parse(text)
                except PromQLError as exc:
                    raise ValueError(
                        f"metric {metric.name}: surge simulate cannot evaluate {text!r}: {exc}"
                    ) from exc
        vertical = self.spec.vertical is not None
        self.needs_pods = vertical or any(isinstance(m, ResourceMetricSpec | PodsMetricSpec) for m in metrics)
        self.needs_usage = vertical or any(isinstance(m, ResourceMetricSpec) for m in metrics)

    def _scalar(self, text: str, t: float) -> float | MetricError:
        return _one(self.queries[text].evaluate(self.db, t), text)

    def _reading(self, metric: Any, t: float) -> Reading | None:
        if isinstance(metric, BufferMetricSpec):
            used = self._scalar(metric.buffer.used_query, t)
            if isinstance(used, MetricError):
                return used
            capacity: float | None = None
            if metric.buffer.capacity_query is not None:
                answer = self._scalar(metric.buffer.capacity_query, t)
                if isinstance(answer, MetricError):
                    return answer
                capacity = answer
            return BufferReading(used=used, capacity_per_replica=capacity)
        if isinstance(metric, PrometheusMetricSpec):
            value = self._scalar(metric.prometheus.query, t)
            return value if isinstance(value, MetricError) else ScalarReading(value)
        if isinstance(metric, PodsMetricSpec):
            result = self.queries[metric.pods.query].evaluate(self.db, t)
            if not isinstance(result, dict) or not result:
                return MetricError(f"query returned no per-pod data: {metric.pods.query}")
            per_pod = {dict(labels).get("pod", ""): v for labels, v in result.items()}
            return PodsReading({pod: v for pod, v in per_pod.items() if pod})
        return None

    def observe(self, t: float) -> Observation:
        metrics = self.spec.horizontal.metrics if self.spec.horizontal else ()
        readings: dict[str, Reading] = {}
        for metric in metrics:
            reading = self._reading(metric, t)
            if reading is not None:
                readings[metric.name] = reading
        usage = None
        if self.needs_usage:
            usage = {n: u for n, u in self.fleet.pod_usage().items() if t - u.timestamp <= MAX_SAMPLE_AGE}
        fleet = self.fleet
        template = ContainerResources(
            fleet.container,
            requests=ResourceAmounts(cpu=fleet.cpu_request_m / 1000.0, memory=fleet.memory_request),
        )
        return Observation(
            current_replicas=fleet.replicas,
            pods=fleet.pod_infos(t) if self.needs_pods else (),
            pod_metrics=usage,
            readings=readings,
            containers=(template,) if self.spec.vertical else (),
            ready_replicas=None if self.needs_pods else len(fleet.pods),  # /scale status.replicas
        )

    def tick(self, t: float) -> Decision:
        obs = self.observe(t)
        decision = plan(self.spec, obs, self.state, t, self.settings)
        dry = self.spec.mode is Mode.DRY_RUN
        actions = plan_actuation(
            from_replicas=decision.from_replicas,
            to_replicas=decision.to_replicas,
            resizes=decision.resizes,
            update_mode=self.spec.vertical.update_mode if self.spec.vertical else UpdateMode.OFF,
            pods=[self._view(p.name, p.created) for p in self.fleet.pods],
            previous_tick=self.last_tick,
            dry_run=dry,
            estimates=decision.estimates,
            vertical=self.spec.vertical,
            oom_containers=decision.oom_containers,
        )
        scaled = self._act(actions, decision, t)
        applied = not dry and (scaled or not decision.scale_changed)
        self.state = decision.state if applied else decision.unapplied_state
        self.last_tick = t
        return decision

    def _view(self, name: str, created: float) -> PodView:
        pod = next(p for p in self.fleet.pods if p.name == name)
        requests = ResourceAmounts(cpu=pod.cpu_request_m / 1000.0, memory=pod.memory_request)
        return PodView(name, created, False, (ContainerResources(self.fleet.container, requests=requests),))

    def _act(self, actions: ActuationPlan, decision: Decision, t: float) -> bool:
        if actions.dry_run:
            return False
        for resize in actions.pod_resizes:  # in-place resizes take effect at once (KWOK actuates them)
            requests = resize.resources.get(self.fleet.container, {}).get("requests", {})
            cpu = requests.get("cpu")
            memory = requests.get("memory")
            self.fleet.resize(
                resize.pod,
                None if cpu is None else quantity_to_float(cpu) * 1000.0,
                None if memory is None else quantity_to_float(memory),
            )
        patch = actions.template_patch
        if patch is not None:  # Recreate: new pods get the new size (no rollout of old pods is simulated)
            requests = patch.get(self.fleet.container, {}).get("requests", {})
            if "cpu" in requests:
                self.fleet.cpu_request_m = quantity_to_float(requests["cpu"]) * 1000.0
        if actions.scale_to is None:
            return False
        self.fleet.scale(decision.to_replicas, t)
        return True


def _queries(metric: Any) -> list[str]:
    if isinstance(metric, BufferMetricSpec):
        return [q for q in (metric.buffer.used_query, metric.buffer.capacity_query) if q is not None]
    if isinstance(metric, PrometheusMetricSpec):
        return [metric.prometheus.query]
    if isinstance(metric, PodsMetricSpec):
        return [metric.pods.query]
    return []


def simulate(
    contender: Contender,
    trace: Trace,
    fleet_spec: FleetSpec,
    config: SimConfig,
    cost: CostModel | None = None,
) -> SimResult:
    """Replays `trace` (already time-scaled) against one contender; deterministic for a given config."""
    timing = config.timing
    rng = random.Random(f"{config.seed}")  # phases differ per seed, not per contender: a fair comparison
    lead = config.warmup + rng.uniform(0.0, config.start_jitter)
    ms_phase = rng.uniform(0.0, timing.metrics_resolution)
    prom_phase = rng.uniform(0.0, timing.scrape_interval)
    tick_phase = rng.uniform(0.0, contender.spec.interval)
    jitter_rng = random.Random(f"{config.seed}-jitter")

    fleet = Fleet(
        fleet_spec.container, fleet_spec.cpu_request_m, fleet_spec.memory_request, timing, cost or CostModel()
    )
    t0 = config.start
    fleet.scale(fleet_spec.replicas, t0 - timing.pod_start_delay)  # the fleet is up before the warm-up
    db = TSDB()
    scaler = _Autoscaler(contender, fleet, db, config.settings)
    clock = VirtualClock()
    end = t0 + lead + trace.duration
    samples: list[Sample] = []
    ticks: list[Tick] = []
    first_demand = round(trace.demand_at(0.0))

    def every(start: float, period: float, priority: int, action: Callable[[float], None]) -> None:
        def fire(k: int) -> None:
            t = start + k * period
            action(t)
            if start + (k + 1) * period <= end:
                clock.at(start + (k + 1) * period, priority, lambda: fire(k + 1))

        if start <= end:
            clock.at(start, priority, lambda: fire(0))

    def plane(t: float) -> None:
        trace_t = round(t - t0 - lead, 6)
        demand = first_demand if trace_t < 0 else round(trace.demand_at(trace_t))
        sample = fleet.step(t, demand)
        if trace_t >= 0:
            samples.append(Sample(**{**sample.__dict__, "t": trace_t}))

    def tick() -> None:
        t = clock.now
        decision = scaler.tick(t)
        ticks.append(
            Tick(round(t - t0 - lead, 3), decision.from_replicas, decision.to_replicas, decision.reason)
        )
        wobble = 1 + jitter_rng.uniform(-contender.jitter, contender.jitter) if contender.jitter else 1.0
        clock.at(t + contender.spec.interval * wobble, _TICK, tick)

    step = timing.plane_step
    first_step = lead - int(lead / step) * step
    every(t0 + first_step, step, _PLANE, plane)
    every(t0 + ms_phase, timing.metrics_resolution, _METRICS_SERVER, fleet.metrics_server_scrape)
    every(t0 + prom_phase, timing.scrape_interval, _PROMETHEUS, lambda t: db.scrape(t, fleet.exported(t)))
    clock.at(t0 + tick_phase, _TICK, tick)
    clock.run_until(end + 1e-9)
    if not samples:
        raise ValueError("the trace is shorter than one step of the data plane")

    summary = summarize(
        samples, scenario=trace.name, plane="simulate", time_scale=trace.time_scale, end=trace.duration
    )
    summary.update(
        {
            "contender": contender.key,
            "title": contender.title,
            "seed": config.seed,
            "lead_in_s": round(lead, 2),
            "interval_s": contender.spec.interval,
        }
    )
    oracle = oracle_replica_seconds(samples, fleet.cost.capacity(fleet_spec.cpu_request_m), trace.duration)
    summary["oracle_replica_seconds"] = round(oracle, 1)
    summary["replica_seconds_vs_oracle"] = round(summary["replica_seconds"] / oracle, 3) if oracle else None
    return SimResult(contender, samples, summary, ticks)
