"""Policies for the simulator: the AutoScalePolicy YAML a user applies, an HPA, and the HPA-default contender.

An AutoScalePolicy is parsed by `surge.api.spec.parse_policy_spec`, exactly as the operator parses it. A
HorizontalPodAutoscaler (autoscaling/v2) is replayed as the policy Surge's engine runs with HPA semantics:
the same minReplicas/maxReplicas/metrics/behavior fields, ticking at the controller-manager's sync period.
A Deployment in the same file (e.g. `manifests/bench/spike/fleet.yaml` concatenated) sizes the fleet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from surge.api.quantity import quantity_to_float
from surge.api.spec import PolicySpec, SpecError, parse_policy_spec

__all__ = ["FleetSpec", "LoadedPolicy", "fleet_spec", "hpa_default", "load_policy", "policy_from_hpa"]

HPA_KIND = "HorizontalPodAutoscaler"
POLICY_KIND = "AutoScalePolicy"
HPA_DEFAULT_TARGET = 70  # the CPU utilization target of every CPU contender in bench/spike


@dataclass(frozen=True)
class FleetSpec:
    """The target Deployment: initial replicas and the game container's requests."""

    replicas: int = 2
    container: str = "arena"
    cpu_request_m: float = 500.0
    memory_request: float = 64 * 1024 * 1024.0


@dataclass(frozen=True)
class LoadedPolicy:
    name: str
    kind: str  # AutoScalePolicy | HorizontalPodAutoscaler
    spec: PolicySpec
    fleet: FleetSpec | None = None  # from a Deployment in the same file


def policy_from_hpa(doc: Mapping[str, Any], sync_period: float) -> PolicySpec:
    """An autoscaling/v2 HPA as an AutoScalePolicy spec ticking every `sync_period` seconds."""
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        raise SpecError("spec", "a HorizontalPodAutoscaler needs a spec")
    horizontal: dict[str, Any] = {
        "minReplicas": spec.get("minReplicas", 1),
        "maxReplicas": spec.get("maxReplicas"),
        "metrics": spec.get("metrics")
        or [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ],
    }
    if spec.get("behavior") is not None:
        horizontal["behavior"] = spec["behavior"]
    return parse_policy_spec(
        {
            "scaleTargetRef": spec.get("scaleTargetRef"),
            "interval": f"{sync_period:g}s",
            "horizontal": horizontal,
        }
    )


def hpa_default(policy: PolicySpec, sync_period: float, target: int = HPA_DEFAULT_TARGET) -> PolicySpec:
    """The HPA-default contender for `policy`'s target: CPU Utilization `target`%, default behavior."""
    hor = policy.horizontal
    ref = policy.scale_target_ref
    return parse_policy_spec(
        {
            "scaleTargetRef": {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name},
            "interval": f"{sync_period:g}s",
            "horizontal": {
                "minReplicas": hor.min_replicas if hor else 1,
                "maxReplicas": hor.max_replicas if hor else 10,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": target},
                        },
                    }
                ],
            },
        }
    )


def fleet_spec(doc: Mapping[str, Any]) -> FleetSpec:
    """A Deployment manifest's initial replicas and first container's requests."""
    spec = doc.get("spec") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        raise SpecError("Deployment.spec.template.spec.containers", "is required")
    first = containers[0]
    requests = (first.get("resources") or {}).get("requests") or {}
    if "cpu" not in requests:
        raise SpecError(
            f"Deployment container {first.get('name')!r}", "needs a CPU request (capacity comes from it)"
        )
    return FleetSpec(
        replicas=int(spec.get("replicas", 1)),
        container=str(first.get("name", "arena")),
        cpu_request_m=quantity_to_float(requests["cpu"]) * 1000.0,
        memory_request=quantity_to_float(requests.get("memory", "64Mi")),
    )


def load_policy(path: str | Path, sync_period: float = 15.0) -> LoadedPolicy:
    """The first AutoScalePolicy or HPA in a (multi-document) YAML file; SpecError/ValueError on bad input."""
    path = Path(path)
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    fleet = next(
        (fleet_spec(d) for d in docs if isinstance(d, Mapping) and d.get("kind") == "Deployment"), None
    )
    for doc in docs:
        if not isinstance(doc, Mapping):
            continue
        name = str((doc.get("metadata") or {}).get("name", path.stem))
        if doc.get("kind") == POLICY_KIND:
            return LoadedPolicy(name, POLICY_KIND, parse_policy_spec(doc.get("spec") or {}), fleet)
        if doc.get("kind") == HPA_KIND:
            return LoadedPolicy(name, HPA_KIND, policy_from_hpa(doc, sync_period), fleet)
    raise ValueError(f"{path}: no {POLICY_KIND} or {HPA_KIND} document found")
