"""The operator's own metrics (prometheus_client) and its HTTP endpoints: /metrics and /healthz.

One `OperatorMetrics` per process, on a registry of its own (tests make as many as they like); the
supervisor reports every finished tick to it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from surge.api.quantity import quantity_to_float
from surge.api.reasons import failed_metric
from surge.decision.horizontal import MetricProposal
from surge.reconcile import PolicyObject, TickResult

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.tick_seconds = Histogram(
            "surge_tick_seconds",
            "Duration of one policy evaluation (observe, decide, act, status), by outcome.",
            ["outcome"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "surge_decisions",
            "Evaluations that produced a decision, by direction.",
            ["direction"],
            registry=r,
        )
        self.scale_actions = Counter(
            "surge_scale_actions",
            "Replica changes written to targets, by direction.",
            ["direction"],
            registry=r,
        )
        self.errors = Counter(
            "surge_tick_errors",
            "Evaluations that did not complete normally, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.desired = Gauge(
            "surge_desired_replicas", "Replicas the policy wants now.", ["namespace", "policy"], registry=r
        )
        self.current = Gauge(
            "surge_current_replicas",
            "Replicas of the target at the last evaluation.",
            ["namespace", "policy"],
            registry=r,
        )
        # One series per metric of a policy (the CRD allows at most 16 metrics per policy), in the units the
        # status shows: percent for Utilization, base units (cores, bytes, plain numbers) otherwise.
        per_metric = ["namespace", "policy", "metric"]
        self.metric_value = Gauge(
            "surge_metric_value",
            "Value of a policy's metric at the last evaluation (what is compared with the target).",
            per_metric,
            registry=r,
        )
        self.metric_target = Gauge(
            "surge_metric_target",
            "Target of a policy's metric, same units as surge_metric_value.",
            per_metric,
            registry=r,
        )
        self.metric_failures = Counter(
            "surge_metric_failures",
            "Evaluations in which a policy's metric could not be read, by reason (as in the Warning Event).",
            [*per_metric, "reason"],
            registry=r,
        )
        self._metric_series: dict[tuple[str, str], set[tuple[str, ...]]] = {}
        self.leader = Gauge("surge_leader", "1 while this replica holds the lease or runs alone.", registry=r)
        self.policies = Gauge("surge_policies", "Policies this replica knows.", registry=r)

    def tick_done(self, obj: PolicyObject, result: TickResult, seconds: float) -> None:
        self.tick_seconds.labels(result.outcome or "ok").observe(seconds)
        if result.outcome not in ("ok", "", "conflict", "invalid", "no-target"):
            self.errors.labels(result.outcome).inc()
        decision = result.decision
        if decision is None:
            return
        direction = (
            "up"
            if decision.to_replicas > decision.from_replicas
            else "down"
            if decision.to_replicas < decision.from_replicas
            else "none"
        )
        self.decisions.labels(direction).inc()
        self._metrics_seen(obj, decision.proposals)
        if result.scaled and direction != "none":
            self.scale_actions.labels(direction).inc()
        self.desired.labels(obj.namespace, obj.name).set(decision.to_replicas)
        self.current.labels(obj.namespace, obj.name).set(decision.from_replicas)

    def _metrics_seen(self, obj: PolicyObject, proposals: tuple[MetricProposal, ...]) -> None:
        seen: set[tuple[str, ...]] = set()
        for p in proposals:
            labels = (obj.namespace, obj.name, p.name)
            if (target := _number(p.target)) is not None:
                self.metric_target.labels(*labels).set(target)
                seen.add(("target", *labels))
            if p.ok and (value := _number(p.value)) is not None:
                self.metric_value.labels(*labels).set(value)
                seen.add(("value", *labels))
            if not p.ok:
                reason = failed_metric(p.type)
                self.metric_failures.labels(*labels, reason).inc()
                seen.add(("failures", *labels, reason))
        key = (obj.namespace, obj.name)
        names = {p.name for p in proposals}
        # A failure count lives as long as its metric (a counter that vanished would restart at 0); a failed
        # metric has no value now, a metric removed from the spec no series at all.
        old = self._metric_series.get(key, set())
        seen |= {s for s in old if s[0] == "failures" and s[3] in names}
        self._drop(old - seen)
        self._metric_series[key] = seen

    def _drop(self, series: set[tuple[str, ...]]) -> None:
        families = {
            "value": self.metric_value,
            "target": self.metric_target,
            "failures": self.metric_failures,
        }
        for kind, *labels in series:
            with contextlib.suppress(KeyError):
                families[kind].remove(*labels)

    def policy_removed(self, namespace: str, name: str) -> None:
        for gauge in (self.desired, self.current):
            with contextlib.suppress(KeyError):  # never evaluated
                gauge.remove(namespace, name)
        self._drop(self._metric_series.pop((namespace, name), set()))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _number(text: str) -> float | None:
    """A status value or target as a number ("72", "350m", "10%"); None for "", "invalid", non-finite."""
    try:
        number = quantity_to_float(text.removesuffix("%"))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


async def serve(
    host: str,
    port: int,
    *,
    metrics: OperatorMetrics | None,
    health: Callable[[], list[str]] | None,
    health_path: str = "/healthz",
) -> web.AppRunner:
    """Serves /metrics (when `metrics`) and the health path (when `health`: problems, empty = ok)."""
    app = web.Application()
    if metrics is not None:

        async def metrics_page(_: web.Request) -> web.Response:
            return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app.router.add_get("/metrics", metrics_page)
    if health is not None:

        async def health_page(_: web.Request) -> web.Response:
            problems = health()
            if problems:
                shown = "; ".join(problems[:5]) + (
                    f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
                )
                return web.Response(status=503, text=f"stalled: {shown}\n")
            return web.Response(text="ok\n")

        app.router.add_get(health_path, health_page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
