"""The CRD's openAPIV3Schema as test data: walk its nodes, address them in a spec, and valid carrier specs.

Shared by the schema contract test (every default and limit against the parser) and the fuzz tests
(specs generated from the schema). Paths are tuples of property names, with ``"[]"`` for list items;
in a concrete spec, ``"[]"`` addresses item 0.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "autoscaling.surge.dev_autoscalepolicies.yaml"
CRD: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
OPENAPI: dict[str, Any] = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SPEC_SCHEMA: dict[str, Any] = OPENAPI["properties"]["spec"]

SchemaPath = tuple[str, ...]
ITEM = "[]"
# HPA metric members Surge does not have: declared (open) only so that CEL refuses them with a clear message.
HPA_ONLY_MEMBERS = ("external", "object", "containerResource")
DURATION_PATTERN = "^([0-9]+(ms|s|m|h))+$"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def nodes(schema: dict[str, Any] = SPEC_SCHEMA, path: SchemaPath = ()) -> Iterator[tuple[SchemaPath, Any]]:
    """Every property and list-item node below ``schema`` (not the root itself), depth first."""
    for name, child in (schema.get("properties") or {}).items():
        yield (*path, name), child
        yield from nodes(child, (*path, name))
    if "items" in schema:
        yield (*path, ITEM), schema["items"]
        yield from nodes(schema["items"], (*path, ITEM))


def spec_nodes() -> list[tuple[SchemaPath, dict[str, Any]]]:
    """The spec's nodes, without the insides of the refused HPA members."""
    return [(p, n) for p, n in nodes() if not set(p) & set(HPA_ONLY_MEMBERS)]


def dotted(path: SchemaPath) -> str:
    """The path as the parser and the API server name it: ``spec.horizontal.metrics[0].type``."""
    out = "spec"
    for part in path:
        out += "[0]" if part == ITEM else f".{part}"
    return out


def get(spec: Any, path: SchemaPath) -> Any:
    node = spec
    for part in path:
        if part == ITEM:
            if not isinstance(node, list) or not node:
                return MISSING
            node = node[0]
        else:
            if not isinstance(node, dict) or part not in node:
                return MISSING
            node = node[part]
    return node


def clone(value: Any) -> Any:
    """A deep copy of plain JSON data (several times faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def with_value(spec: dict[str, Any], path: SchemaPath, value: Any) -> dict[str, Any]:
    """A deep copy of ``spec`` with the node at ``path`` set (or removed, for MISSING); parents must exist."""
    out: dict[str, Any] = clone(spec)
    parent = get(out, path[:-1])
    assert parent is not MISSING, f"no parent for {dotted(path)}"
    last = path[-1]
    if last == ITEM:
        if value is MISSING:
            parent.pop(0)
        else:
            parent[0] = value
    elif value is MISSING:
        parent.pop(last, None)
    else:
        parent[last] = value
    return out


# --------------------------------------------------------------------------------------------------
# Carriers: valid specs that together contain every node of the schema. One per metric shape, so that
# a field of one metric member is always tried inside a metric of its own type.

_TARGET_REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "arena"}
_RULES = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max"}
_VERTICAL = {
    "updateMode": "Off",
    "halfLife": "24h",
    "targetPercentile": 0.9,
    "lowerBoundPercentile": 0.5,
    "upperBoundPercentile": 0.95,
    "safetyMarginFraction": 0.15,
    "minChangeFraction": 0.1,
    "containerPolicies": [
        {
            "containerName": "arena",
            "mode": "Auto",
            "controlledResources": ["cpu", "memory"],
            "controlledValues": "RequestsOnly",
            "minAllowed": {"cpu": "100m", "memory": "128Mi"},
            "maxAllowed": {"cpu": "4", "memory": "4Gi"},
        }
    ],
}
METRICS: tuple[dict[str, Any], ...] = (
    {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "container": "arena",
            "target": {"type": "Utilization", "averageUtilization": 60},
            "saturation": {"utilization": 95, "scaleUpFactor": 2},
        },
    },
    {
        "type": "Resource",
        "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 60}},
    },
    {
        "type": "Resource",
        "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}},
    },
    {
        "type": "Prometheus",
        "prometheus": {
            "query": "sum(players)",
            "serverAddress": "http://127.0.0.1:9090",
            "target": {"type": "AverageValue", "averageValue": "80"},
        },
    },
    {
        "type": "Prometheus",
        "prometheus": {"query": "sum(players)", "target": {"type": "Value", "value": "1k"}},
    },
    {"type": "Buffer", "buffer": {"usedQuery": "sum(players)", "capacityPerReplica": 100, "size": "25%"}},
    {"type": "Buffer", "buffer": {"usedQuery": "sum(players)", "capacityQuery": "avg(slots)", "size": "50"}},
    {
        "type": "Pods",
        "pods": {
            "query": "sum by (pod) (rate(requests_total[1m]))",
            "serverAddress": "https://prometheus.monitoring:9090",
            "target": {"type": "AverageValue", "averageValue": "50"},
        },
    },
)


# The three shapes of a schedule; carriers take turns so that each field is item 0 of some carrier.
SCHEDULES: tuple[dict[str, Any], ...] = (
    {"name": "release", "start": "2026-12-08T18:00:00Z", "end": "2026-12-08T20:00:00Z", "minReplicas": 1},
    {"name": "launch", "start": "2026-12-09T19:00:00+01:00", "duration": "90m", "minReplicas": 1},
    {
        "name": "evenings",
        "cron": "0 18 * * MON-FRI",
        "timeZone": "Europe/Berlin",
        "duration": "3h",
        "minReplicas": 1,
    },
)


def carrier(metric: dict[str, Any], schedule: dict[str, Any] = SCHEDULES[0]) -> dict[str, Any]:
    return copy.deepcopy(
        {
            "scaleTargetRef": _TARGET_REF,
            "mode": "Active",
            "interval": "15s",
            "horizontal": {
                "minReplicas": 1,
                "maxReplicas": 60,
                "metrics": [metric],
                "tolerance": {"scaleUp": 0.1, "scaleDown": 0.1},
                "behavior": {
                    "scaleUp": {**_RULES, "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
                    "scaleDown": {
                        **_RULES,
                        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                    },
                },
                "predictive": {"lookahead": "1m", "history": "30m"},
                "fallback": {"failureThreshold": 3, "replicas": 5, "behavior": "RaiseOnly"},
                "schedules": [schedule],
            },
            "vertical": _VERTICAL,
        }
    )


def _carrier_schedule(index: int, metric: dict[str, Any]) -> dict[str, Any]:
    schedule = SCHEDULES[index % len(SCHEDULES)]
    if metric["type"] == "Buffer":  # minFreeCapacity needs a Buffer metric (a CEL rule)
        schedule = {**schedule, "minFreeCapacity": 500}
    return schedule


CARRIERS: tuple[dict[str, Any], ...] = tuple(
    carrier(m, _carrier_schedule(i, m)) for i, m in enumerate(METRICS)
)


def carriers_with(path: SchemaPath) -> list[dict[str, Any]]:
    return [c for c in CARRIERS if get(c, path) is not MISSING]


def carriers_with_parent(path: SchemaPath) -> list[dict[str, Any]]:
    return [c for c in CARRIERS if get(c, path[:-1]) is not MISSING]
