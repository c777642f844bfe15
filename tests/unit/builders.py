"""Small builders for decision inputs: time is always passed in, never read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from surge.api.spec import PolicySpec, ResourceAmounts, parse_policy_spec
from surge.decision.model import PodInfo, PodUsage

NOW = 1_000_000.0  # an arbitrary "now": tests never read the wall clock
LONG_AGO = NOW - 3600.0
MI = 2**20


def pod(
    name: str,
    *,
    cpu_request: float | None = 1.0,
    memory_request: float | None = 512 * MI,
    phase: str = "Running",
    ready: bool | None = True,
    started: float | None = LONG_AGO,
    ready_since: float | None = None,
    deleting: bool = False,
    container: str = "app",
) -> PodInfo:
    """A pod that (by default) started an hour ago and has been ready since 10s after that."""
    return PodInfo(
        name=name,
        phase=phase,
        ready=ready,
        start_time=started,
        ready_transition_time=ready_since if ready_since is not None else (started or LONG_AGO) + 10.0,
        deleting=deleting,
        requests={container: ResourceAmounts(cpu=cpu_request, memory=memory_request)},
    )


def pods(count: int, **kwargs: Any) -> list[PodInfo]:
    return [pod(f"p{i}", **kwargs) for i in range(count)]


def usage(
    cpu: float | None = None,
    memory: float | None = None,
    *,
    at: float = NOW - 5.0,
    window: float = 30.0,
    container: str = "app",
) -> PodUsage:
    return PodUsage(
        timestamp=at, window=window, containers={container: ResourceAmounts(cpu=cpu, memory=memory)}
    )


def cpu_usage(values: Sequence[float | None], *, at: float = NOW - 5.0) -> dict[str, PodUsage]:
    """Usage for p0..pN; None leaves that pod without a sample (a missing metric)."""
    return {f"p{i}": usage(cpu=v, at=at) for i, v in enumerate(values) if v is not None}


def spec(
    horizontal: Mapping[str, Any] | None = None, vertical: Mapping[str, Any] | None = None
) -> PolicySpec:
    raw: dict[str, Any] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "arena"}}
    if horizontal is not None:
        raw["horizontal"] = dict(horizontal)
    if vertical is not None:
        raw["vertical"] = dict(vertical)
    return parse_policy_spec(raw)


def cpu_metric(utilization: int = 50) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}},
    }


def prom_metric(
    query: str = "sum(players)", *, average: str | None = None, value: str | None = None
) -> dict[str, Any]:
    target: dict[str, Any] = (
        {"type": "AverageValue", "averageValue": average}
        if average is not None
        else {"type": "Value", "value": value}
    )
    return {"type": "Prometheus", "prometheus": {"query": query, "target": target}}
