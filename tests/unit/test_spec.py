from __future__ import annotations

import copy
from typing import Any, get_args

import pytest

from surge.api.spec import (
    BufferMetricSpec,
    ContainerPolicyMode,
    ControlledValues,
    MetricSpec,
    MetricTargetType,
    MetricType,
    Mode,
    PodsMetricSpec,
    PrometheusMetricSpec,
    ResourceMetricSpec,
    Saturation,
    ScalingPolicy,
    ScalingPolicyType,
    SelectPolicy,
    SpecError,
    UpdateMode,
    parse_policy_spec,
)

FULL: dict[str, Any] = {
    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "arena"},
    "mode": "DryRun",
    "interval": "30s",
    "horizontal": {
        "minReplicas": 2,
        "maxReplicas": 60,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
            },
            {
                "type": "Prometheus",
                "prometheus": {
                    "query": "sum(players)",
                    "target": {"type": "AverageValue", "averageValue": "80"},
                },
            },
            {
                "type": "Buffer",
                "buffer": {"usedQuery": "sum(players)", "capacityPerReplica": "100", "size": "25%"},
            },
            {
                "type": "Resource",
                "resource": {
                    "name": "memory",
                    "container": "arena",
                    "target": {"type": "AverageValue", "averageValue": "1Gi"},
                },
            },
        ],
        "tolerance": {"scaleUp": 0.05, "scaleDown": 0.1},
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": 60,
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}],
            }
        },
        "predictive": {"lookahead": "1m", "history": "30m"},
        "fallback": {"failureThreshold": 3, "replicas": 10},
    },
    "vertical": {
        "updateMode": "InPlaceOrRecreate",
        "halfLife": "10m",
        "containerPolicies": [
            {
                "containerName": "arena",
                "controlledResources": ["cpu", "memory"],
                "controlledValues": "RequestsOnly",
                "minAllowed": {"cpu": "100m", "memory": "128Mi"},
                "maxAllowed": {"cpu": "4", "memory": "4Gi"},
            },
            {"containerName": "*", "mode": "Off"},
        ],
    },
}


def test_full_spec_parses() -> None:
    spec = parse_policy_spec(FULL)
    assert spec.mode is Mode.DRY_RUN
    assert spec.interval == 30
    assert spec.scale_target_ref.name == "arena"
    hor = spec.horizontal
    assert hor is not None
    assert (hor.min_replicas, hor.max_replicas) == (2, 60)
    assert [m.type for m in hor.metrics] == [
        MetricType.RESOURCE,
        MetricType.PROMETHEUS,
        MetricType.BUFFER,
        MetricType.RESOURCE,
    ]
    assert [m.name for m in hor.metrics] == ["cpu", "prometheus-1", "buffer-2", "arena/memory"]
    cpu, prom, buf, memory = hor.metrics
    assert isinstance(cpu, ResourceMetricSpec)
    assert cpu.resource.target.average_utilization == 60
    assert isinstance(prom, PrometheusMetricSpec)
    assert prom.prometheus.target.average_value == 80
    assert isinstance(buf, BufferMetricSpec)
    assert buf.buffer.size.percent == 25
    assert buf.buffer.capacity_per_replica == 100
    assert isinstance(memory, ResourceMetricSpec)
    assert memory.resource.target.average_value == 2**30
    assert hor.tolerance.scale_up == 0.05
    # scaleDown given partially: its policies replace the default; scaleUp stays at the HPA default.
    assert hor.behavior.scale_down.stabilization_window_seconds == 60
    assert hor.behavior.scale_down.policies == (ScalingPolicy(ScalingPolicyType.PODS, 1, 30),)
    assert hor.behavior.scale_up.stabilization_window_seconds == 0
    assert hor.predictive is not None
    assert (hor.predictive.lookahead, hor.predictive.history) == (60, 1800)
    assert hor.fallback is not None
    assert hor.fallback.replicas == 10
    ver = spec.vertical
    assert ver is not None
    assert ver.update_mode is UpdateMode.IN_PLACE_OR_RECREATE
    assert ver.half_life == 600
    arena = ver.policy_for("arena")
    assert arena.controlled_values is ControlledValues.REQUESTS_ONLY
    assert arena.min_allowed.cpu == 0.1
    assert arena.max_allowed.memory == 4 * 2**30
    assert ver.policy_for("sidecar").mode is ContainerPolicyMode.OFF


def test_defaults_match_hpa_and_doc() -> None:
    spec = parse_policy_spec(
        {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "a"},
            "horizontal": {"maxReplicas": 5, "metrics": [FULL["horizontal"]["metrics"][0]]},
            "vertical": {},
        }
    )
    assert spec.mode is Mode.ACTIVE
    assert spec.interval == 15
    hor = spec.horizontal
    assert hor is not None
    assert hor.min_replicas == 1
    assert (hor.tolerance.scale_up, hor.tolerance.scale_down) == (0.1, 0.1)
    up, down = hor.behavior.scale_up, hor.behavior.scale_down
    assert up.stabilization_window_seconds == 0
    assert up.select_policy is SelectPolicy.MAX
    assert up.policies == (
        ScalingPolicy(ScalingPolicyType.PERCENT, 100, 15),
        ScalingPolicy(ScalingPolicyType.PODS, 4, 15),
    )
    assert down.stabilization_window_seconds == 300
    assert down.policies == (ScalingPolicy(ScalingPolicyType.PERCENT, 100, 15),)
    assert hor.predictive is None
    assert hor.fallback is None
    ver = spec.vertical
    assert ver is not None
    assert ver.update_mode is UpdateMode.OFF
    assert ver.half_life == 86400
    assert (ver.target_percentile, ver.lower_bound_percentile, ver.upper_bound_percentile) == (0.9, 0.5, 0.95)
    assert ver.safety_margin_fraction == 0.15
    assert ver.min_change_fraction == 0.1
    default = ver.policy_for("anything")
    assert default.controlled_resources == ("cpu", "memory")
    assert default.mode is ContainerPolicyMode.AUTO


def _with(path: str, value: Any) -> dict[str, Any]:
    """FULL with one field replaced (None deletes it); path like 'horizontal.metrics.1.prometheus.query'."""
    raw = copy.deepcopy(FULL)
    node: Any = raw
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (
            "horizontal.metrics.1.prometheus.query",
            "",
            "spec.horizontal.metrics[1].prometheus.query: must not be empty",
        ),
        (
            "horizontal.metrics.1.prometheus.query",
            "x" * 4097,
            "spec.horizontal.metrics[1].prometheus.query: must be at most 4096",
        ),
        ("scaleTargetRef", None, "spec.scaleTargetRef: is required"),
        ("scaleTargetRef.kind", None, "spec.scaleTargetRef.kind: is required"),
        ("mode", "Passive", "spec.mode: must be one of Active | DryRun"),
        ("interval", "500ms", "spec.interval: must be between 1s and 1h, got '500ms'"),
        ("interval", "99999999999999999999h", "spec.interval: must be between 1s and 1h"),
        ("interval", "2h", "spec.interval: must be between"),
        ("interval", "soon", "spec.interval: invalid duration"),
        ("horizontal.maxReplicas", None, "spec.horizontal.maxReplicas: is required"),
        ("horizontal.maxReplicas", 10001, "spec.horizontal.maxReplicas: must be in [1, 10000]"),
        ("horizontal.maxReplicas", 1, "spec.horizontal.minReplicas: must be <= maxReplicas (1), got 2"),
        ("horizontal.minReplicas", -1, "spec.horizontal.minReplicas: must be in [0, 10000], got -1"),
        ("horizontal.maxReplicas", 2**31, "maxReplicas: must be in [1, 10000], got 2147483648"),
        ("horizontal.minReplicas", "2", "spec.horizontal.minReplicas: must be an integer"),
        ("horizontal.minReplicas", True, "spec.horizontal.minReplicas: must be an integer"),
        ("horizontal.metrics", [], "spec.horizontal.metrics: must have 1..16 entries, got 0"),
        ("horizontal.metrics", None, "spec.horizontal.metrics: is required"),
        (
            "horizontal.metrics.0",
            {"type": "Resource"},
            "spec.horizontal.metrics[0].resource: is required when type is Resource",
        ),
        (
            "horizontal.metrics.0",
            {"type": "External"},
            "spec.horizontal.metrics[0].type: must be one of Resource | Prometheus | Buffer | Pods",
        ),
        (
            "horizontal.metrics.0",
            {
                "type": "Prometheus",
                "prometheus": {"query": "q", "target": {"type": "Value", "value": "1"}},
                "buffer": {},
            },
            "spec.horizontal.metrics[0].buffer: must not be set when type is Prometheus",
        ),
        (
            "horizontal.metrics.0.resource.name",
            "gpu",
            "spec.horizontal.metrics[0].resource.name: must be one of cpu | memory",
        ),
        (
            "horizontal.metrics.0.resource.target.averageUtilization",
            0,
            "averageUtilization: must be in [1, 1000]",
        ),
        ("horizontal.metrics.0.resource.target.averageUtilization", None, "averageUtilization: is required"),
        (
            "horizontal.metrics.0.resource.target.type",
            "Value",
            "spec.horizontal.metrics[0].resource.target.type: must be one of Utilization | AverageValue",
        ),
        (
            "horizontal.metrics.1.prometheus.target.type",
            "Utilization",
            "prometheus.target.type: must be one of AverageValue | Value",
        ),
        ("horizontal.metrics.1.prometheus.target.averageValue", "0", "averageValue: must be greater than z"),
        (
            "horizontal.metrics.1.prometheus.target.averageValue",
            "eighty",
            "averageValue: 'eighty' is not a Kubernetes quantity",
        ),
        (
            "horizontal.metrics.2.buffer.capacityQuery",
            "sum(cap)",
            "spec.horizontal.metrics[2].buffer: exactly one of capacityPerReplica / capacityQuery",
        ),
        (
            "horizontal.metrics.2.buffer.capacityPerReplica",
            None,
            "exactly one of capacityPerReplica / capacityQuery",
        ),
        (
            "horizontal.metrics.2.buffer.size",
            "0%",
            "spec.horizontal.metrics[2].buffer.size: a percent buffer size must be between 1% and 1000%",
        ),
        (
            "horizontal.metrics.2.buffer.size",
            "lots",
            "buffer.size: must be free slots ('50') or a percent of used ('25%')",
        ),
        ("horizontal.metrics.2.buffer.size", None, "buffer.size: is required"),
        ("horizontal.tolerance", {"scaleUp": "0.2"}, "spec.horizontal.tolerance.scaleUp: must be a number"),
        ("horizontal.tolerance", {"scaleDown": -0.1}, "spec.horizontal.tolerance.scaleDown: must be >= 0"),
        ("horizontal.tolerance", {"scaleUp": 10**400}, "tolerance.scaleUp: must be a finite number"),
        ("horizontal.tolerance", {"scaleUp": float("inf")}, "tolerance.scaleUp: must be a finite number"),
        (
            "horizontal.behavior",
            {"scaleUp": {"selectPolicy": "Median"}},
            "spec.horizontal.behavior.scaleUp.selectPolicy: must be one of Max | Min | Disabled",
        ),
        (
            "horizontal.behavior",
            {"scaleUp": {"stabilizationWindowSeconds": 3601}},
            "stabilizationWindowSeconds: must be in [0, 3600]",
        ),
        (
            "horizontal.behavior",
            {"scaleUp": {"policies": []}},
            "spec.horizontal.behavior.scaleUp.policies: must have 1..10 entries",
        ),
        (
            "horizontal.behavior",
            {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}},
            "spec.horizontal.behavior.scaleDown.policies[0].periodSeconds: must be in [1, 1800]",
        ),
        (
            "horizontal.behavior",
            {"scaleDown": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}},
            "policies[0].value: must be in [1, 2147483647], got 0",
        ),
        (
            "horizontal.predictive",
            {"lookahead": "10m", "history": "15m"},
            "spec.horizontal.predictive.history: must be at least twice predictive.lookahead",
        ),
        (
            "horizontal.predictive",
            {"lookahead": "2h"},
            "spec.horizontal.predictive.lookahead: must be between",
        ),
        (
            "horizontal.fallback",
            {"failureThreshold": 0, "replicas": 1},
            "spec.horizontal.fallback.failureThreshold: must be in [1, 1000]",
        ),
        ("horizontal.fallback", {"failureThreshold": 1}, "spec.horizontal.fallback.replicas: is required"),
        (
            "vertical.updateMode",
            "Sometimes",
            "spec.vertical.updateMode: must be one of Off | Initial | Recreate | InPlace | InPlaceOrRecreate",
        ),
        ("vertical.halfLife", "0s", "spec.vertical.halfLife: must be between"),
        ("vertical.targetPercentile", 0, "spec.vertical.targetPercentile: must be in (0, 1]"),
        (
            "vertical.lowerBoundPercentile",
            0.95,
            "spec.vertical.lowerBoundPercentile: (0.95) must be less than or equal to targetPercentile (0.9)",
        ),
        ("vertical.safetyMarginFraction", 1.5, "spec.vertical.safetyMarginFraction: must be in [0, 1]"),
        (
            "vertical.containerPolicies.0.controlledResources",
            ["cpu", "cpu"],
            "controlledResources: entries must be unique",
        ),
        (
            "vertical.containerPolicies.0.controlledResources",
            ["gpu"],
            "controlledResources[0]: must be one of cpu | memory",
        ),
        (
            "vertical.containerPolicies.0.controlledResources",
            [],
            "controlledResources: must have 1..2 entries",
        ),
        (
            "vertical.containerPolicies.0.maxAllowed",
            {"cpu": "50m"},
            "spec.vertical.containerPolicies[0].maxAllowed.cpu: must be >= minAllowed",
        ),
        (
            "vertical.containerPolicies.0.minAllowed",
            {"gpu": "1"},
            "spec.vertical.containerPolicies[0].minAllowed.gpu: only cpu and memory",
        ),
        (
            "vertical.containerPolicies.0.controlledValues",
            "LimitsOnly",
            "controlledValues: must be one of RequestsOnly | RequestsAndLimits",
        ),
        (
            "vertical.containerPolicies.1.containerName",
            "arena",
            "spec.vertical.containerPolicies[1].containerName: duplicate container 'arena'",
        ),
        ("vertical.containerPolicies", [{}] * 33, "spec.vertical.containerPolicies: must have 0..32 entries"),
    ],
)
def test_invalid_specs_name_the_field(path: str, value: Any, error: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_policy_spec(_with(path, value))
    assert error in str(info.value)
    assert str(info.value).startswith("spec")


def test_needs_horizontal_or_vertical() -> None:
    raw = _with("horizontal", None)
    raw.pop("vertical")
    with pytest.raises(SpecError, match=r"^spec: at least one of horizontal / vertical"):
        parse_policy_spec(raw)


def test_min_zero_needs_an_external_metric() -> None:
    raw = _with("horizontal.minReplicas", 0)
    assert parse_policy_spec(raw).horizontal is not None  # Prometheus/Buffer metrics present
    raw["horizontal"]["metrics"] = [FULL["horizontal"]["metrics"][0]]
    with pytest.raises(SpecError, match=r"minReplicas: 0 \(scale to zero\) needs at least one Prometheus or"):
        parse_policy_spec(raw)


def test_spec_error_is_value_error_with_path() -> None:
    with pytest.raises(ValueError, match="must be an object") as info:
        parse_policy_spec(_with("horizontal", [1, 2]))
    assert isinstance(info.value, SpecError)
    assert info.value.path == "spec.horizontal"


def test_metric_spec_has_one_member_class_per_metric_type() -> None:
    members = get_args(MetricSpec)
    assert sorted(m.type for m in members) == sorted(MetricType)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"type": "Resource", "resource": FULL["horizontal"]["metrics"][0]["resource"]}, ResourceMetricSpec),
        (
            {"type": "Prometheus", "prometheus": FULL["horizontal"]["metrics"][1]["prometheus"]},
            PrometheusMetricSpec,
        ),
        ({"type": "Buffer", "buffer": FULL["horizontal"]["metrics"][2]["buffer"]}, BufferMetricSpec),
        (
            {"type": "Pods", "pods": {"query": "q", "target": {"type": "AverageValue", "averageValue": "5"}}},
            PodsMetricSpec,
        ),
    ],
    ids=["Resource", "Prometheus", "Buffer", "Pods"],
)
def test_each_metric_type_parses_into_its_own_class(entry: dict[str, Any], expected: type) -> None:
    raw = _with("horizontal.metrics", [entry])
    (metric,) = parse_policy_spec(raw).horizontal.metrics  # type: ignore[union-attr]
    assert type(metric) is expected
    assert metric.type == entry["type"]
    assert metric.name in ("cpu", f"{entry['type'].lower()}-0")


def test_buffer_absolute_size_and_capacity_query() -> None:
    raw = _with("horizontal.metrics.2.buffer", {"usedQuery": "u", "capacityQuery": "c", "size": "50"})
    metric = parse_policy_spec(raw).horizontal.metrics[2]  # type: ignore[union-attr]
    assert isinstance(metric, BufferMetricSpec)
    buf = metric.buffer
    assert buf.size.absolute == 50
    assert buf.capacity_query == "c"
    assert buf.capacity_per_replica is None
    assert buf.size.amount(1000) == 50


def test_value_target_and_unbounded_tolerance() -> None:
    raw = _with("horizontal.metrics.1.prometheus.target", {"type": "Value", "value": 1000})
    raw["horizontal"]["tolerance"] = {"scaleUp": 0.2, "scaleDown": 5}  # HPA parity: no upper bound
    parsed = parse_policy_spec(raw).horizontal
    assert parsed is not None
    metric = parsed.metrics[1]
    assert isinstance(metric, PrometheusMetricSpec)
    target = metric.prometheus.target
    assert (target.type, target.value) == (MetricTargetType.VALUE, 1000)
    assert (parsed.tolerance.scale_up, parsed.tolerance.scale_down) == (0.2, 5.0)


def test_percentile_defaults_are_fixed_like_the_crd() -> None:
    # The API server fills in 0.5 / 0.95 before its rules compare them, so a lone target outside
    # [0.5, 0.95] is refused there; the parser gives the same verdict.
    with pytest.raises(SpecError, match=r"lowerBoundPercentile: \(0.5\) must be less than or equal"):
        parse_policy_spec(_with("vertical.targetPercentile", 0.3))
    with pytest.raises(SpecError, match=r"upperBoundPercentile: \(0.95\) must be greater than or equal"):
        parse_policy_spec(_with("vertical.targetPercentile", 0.99))
    ver = parse_policy_spec(_with("vertical.targetPercentile", 0.6)).vertical
    assert ver is not None
    assert (ver.lower_bound_percentile, ver.target_percentile, ver.upper_bound_percentile) == (0.5, 0.6, 0.95)


def test_parsed_spec_is_frozen() -> None:
    spec = parse_policy_spec(FULL)
    with pytest.raises(AttributeError):
        spec.mode = Mode.ACTIVE  # type: ignore[misc]


# ---- Resource saturation (opt-in, Utilization targets only)

_SAT_PATH = "horizontal.metrics.0.resource.saturation"


def test_saturation_absent_by_default() -> None:
    hor = parse_policy_spec(FULL).horizontal
    assert hor is not None
    assert hor.metrics[0].resource is not None
    assert hor.metrics[0].resource.saturation is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, Saturation(95, 2.0)),
        ({"utilization": 90, "scaleUpFactor": 1.5}, Saturation(90, 1.5)),
        ({"utilization": 1000, "scaleUpFactor": 10}, Saturation(1000, 10.0)),
        ({"scaleUpFactor": 3}, Saturation(95, 3.0)),
        ({"utilization": 61}, Saturation(61, 2.0)),  # just above the target (60)
    ],
)
def test_saturation_parses(raw: dict[str, Any], expected: Saturation) -> None:
    hor = parse_policy_spec(_with(_SAT_PATH, raw)).horizontal
    assert hor is not None
    assert hor.metrics[0].resource is not None
    assert hor.metrics[0].resource.saturation == expected


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (_SAT_PATH, {"utilization": 60}, "saturation.utilization: must be greater than the target's"),
        (_SAT_PATH, {"utilization": 40}, "averageUtilization (60), got 40"),
        (_SAT_PATH, {"utilization": 1001}, "saturation.utilization: must be in [2, 1000]"),
        (_SAT_PATH, {"utilization": "95"}, "saturation.utilization: must be an integer"),
        (_SAT_PATH, {"scaleUpFactor": 1}, "saturation.scaleUpFactor: must be in (1, 10]"),
        (_SAT_PATH, {"scaleUpFactor": 0.5}, "saturation.scaleUpFactor: must be in (1, 10]"),
        (_SAT_PATH, {"scaleUpFactor": 10.5}, "saturation.scaleUpFactor: must be in (1, 10]"),
        (_SAT_PATH, {"scaleUpFactor": "twice"}, "saturation.scaleUpFactor: must be a number"),
        (_SAT_PATH, [95, 2], "saturation: must be an object"),
        (
            "horizontal.metrics.3.resource.saturation",
            {"utilization": 95},
            "spec.horizontal.metrics[3].resource.saturation: applies to cpu only",
        ),
    ],
)
def test_saturation_invalid(path: str, value: Any, error: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_policy_spec(_with(path, value))
    assert error in str(info.value)


def test_saturation_needs_a_utilization_target() -> None:
    raw = _with(_SAT_PATH, {"utilization": 95})
    raw["horizontal"]["metrics"][0]["resource"]["target"] = {"type": "AverageValue", "averageValue": "500m"}
    with pytest.raises(SpecError, match="saturation: needs target type Utilization"):
        parse_policy_spec(raw)
