"""AutoScalePolicy spec: frozen dataclasses and a fail-fast parser (contract: docs/api.md).

Every error names the offending field, e.g.
``spec.horizontal.metrics[1].prometheus.query: must not be empty``.
Unknown keys are ignored (the structural CRD prunes them before they reach us), except inside a
metric entry, where only the member named by ``type`` may be present.
Quantities are stored as floats in base units: CPU in cores, memory in bytes, durations in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from surge.api.quantity import parse_duration, quantity_to_float

__all__ = [
    "Behavior",
    "BufferMetric",
    "BufferSize",
    "ContainerPolicy",
    "ContainerPolicyMode",
    "ControlledValues",
    "Fallback",
    "HorizontalSpec",
    "MetricSpec",
    "MetricTarget",
    "MetricTargetType",
    "MetricType",
    "Mode",
    "PolicySpec",
    "Predictive",
    "PrometheusMetric",
    "ResourceAmounts",
    "ResourceMetric",
    "ScaleTargetRef",
    "ScalingPolicy",
    "ScalingPolicyType",
    "ScalingRules",
    "SelectPolicy",
    "SpecError",
    "Tolerance",
    "UpdateMode",
    "VerticalSpec",
    "default_scale_down_rules",
    "default_scale_up_rules",
    "parse_policy_spec",
]


class SpecError(ValueError):
    """Invalid AutoScalePolicy spec. ``path`` is the field path, ``problem`` the human reason."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class Mode(StrEnum):
    ACTIVE = "Active"
    DRY_RUN = "DryRun"


class MetricType(StrEnum):
    RESOURCE = "Resource"
    PROMETHEUS = "Prometheus"
    BUFFER = "Buffer"


class MetricTargetType(StrEnum):
    UTILIZATION = "Utilization"
    AVERAGE_VALUE = "AverageValue"
    VALUE = "Value"


class SelectPolicy(StrEnum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class ScalingPolicyType(StrEnum):
    PODS = "Pods"
    PERCENT = "Percent"


class UpdateMode(StrEnum):
    OFF = "Off"
    INITIAL = "Initial"
    RECREATE = "Recreate"
    IN_PLACE = "InPlace"
    IN_PLACE_OR_RECREATE = "InPlaceOrRecreate"


class ContainerPolicyMode(StrEnum):
    AUTO = "Auto"
    OFF = "Off"


class ControlledValues(StrEnum):
    REQUESTS_ONLY = "RequestsOnly"
    REQUESTS_AND_LIMITS = "RequestsAndLimits"


RESOURCE_NAMES = ("cpu", "memory")

_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class ScaleTargetRef:
    api_version: str
    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class MetricTarget:
    type: MetricTargetType
    average_utilization: int | None = None  # percent of requests
    average_value: float | None = None
    value: float | None = None


@dataclass(frozen=True, slots=True)
class ResourceMetric:
    name: str  # cpu | memory
    target: MetricTarget
    container: str | None = None  # None: all containers of the pod


@dataclass(frozen=True, slots=True)
class PrometheusMetric:
    query: str
    target: MetricTarget
    server_address: str | None = None


@dataclass(frozen=True, slots=True)
class BufferSize:
    """Free capacity to keep: exactly one of ``absolute`` (units of the used query) or ``percent``."""

    absolute: float | None = None
    percent: float | None = None

    def amount(self, used: float) -> float:
        if self.percent is not None:
            return max(used, 0.0) * self.percent / 100.0
        return self.absolute or 0.0


@dataclass(frozen=True, slots=True)
class BufferMetric:
    used_query: str
    size: BufferSize
    capacity_per_replica: float | None = None
    capacity_query: str | None = None


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One entry of ``spec.horizontal.metrics``; exactly the member named by ``type`` is set."""

    type: MetricType
    name: str  # stable display name for status.currentMetrics: "cpu", "arena/memory", "prometheus-1"
    resource: ResourceMetric | None = None
    prometheus: PrometheusMetric | None = None
    buffer: BufferMetric | None = None


@dataclass(frozen=True, slots=True)
class Tolerance:
    scale_up: float = 0.1
    scale_down: float = 0.1


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    type: ScalingPolicyType
    value: int
    period_seconds: int


@dataclass(frozen=True, slots=True)
class ScalingRules:
    stabilization_window_seconds: int
    select_policy: SelectPolicy
    policies: tuple[ScalingPolicy, ...]


def default_scale_up_rules() -> ScalingRules:
    """HPA autoscaling/v2 default: no stabilization, +4 pods or +100% per 15s, whichever is more."""
    return ScalingRules(
        stabilization_window_seconds=0,
        select_policy=SelectPolicy.MAX,
        policies=(
            ScalingPolicy(ScalingPolicyType.PODS, 4, 15),
            ScalingPolicy(ScalingPolicyType.PERCENT, 100, 15),
        ),
    )


def default_scale_down_rules() -> ScalingRules:
    """HPA autoscaling/v2 default: 300s stabilization, up to -100% per 15s."""
    return ScalingRules(
        stabilization_window_seconds=300,
        select_policy=SelectPolicy.MAX,
        policies=(ScalingPolicy(ScalingPolicyType.PERCENT, 100, 15),),
    )


@dataclass(frozen=True, slots=True)
class Behavior:
    scale_up: ScalingRules = field(default_factory=default_scale_up_rules)
    scale_down: ScalingRules = field(default_factory=default_scale_down_rules)


@dataclass(frozen=True, slots=True)
class Predictive:
    lookahead: float  # seconds
    history: float  # seconds


@dataclass(frozen=True, slots=True)
class Fallback:
    failure_threshold: int
    replicas: int


@dataclass(frozen=True, slots=True)
class HorizontalSpec:
    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    min_replicas: int = 1
    tolerance: Tolerance = field(default_factory=Tolerance)
    behavior: Behavior = field(default_factory=Behavior)
    predictive: Predictive | None = None
    fallback: Fallback | None = None


@dataclass(frozen=True, slots=True)
class ResourceAmounts:
    """CPU in cores, memory in bytes; None means "not set"."""

    cpu: float | None = None
    memory: float | None = None

    def get(self, resource: str) -> float | None:
        if resource == "cpu":
            return self.cpu
        if resource == "memory":
            return self.memory
        raise KeyError(resource)


@dataclass(frozen=True, slots=True)
class ContainerPolicy:
    container_name: str  # "*" = default for all containers
    mode: ContainerPolicyMode = ContainerPolicyMode.AUTO
    controlled_resources: tuple[str, ...] = RESOURCE_NAMES
    # VPA's default is RequestsAndLimits: keep the limit/request ratio when resizing.
    controlled_values: ControlledValues = ControlledValues.REQUESTS_AND_LIMITS
    min_allowed: ResourceAmounts = field(default_factory=ResourceAmounts)
    max_allowed: ResourceAmounts = field(default_factory=ResourceAmounts)


@dataclass(frozen=True, slots=True)
class VerticalSpec:
    update_mode: UpdateMode = UpdateMode.OFF
    half_life: float = 24 * 3600.0
    target_percentile: float = 0.9
    lower_bound_percentile: float = 0.5
    upper_bound_percentile: float = 0.95
    safety_margin_fraction: float = 0.15
    min_change_fraction: float = 0.1
    container_policies: tuple[ContainerPolicy, ...] = ()

    def policy_for(self, container_name: str) -> ContainerPolicy:
        """The policy for a container: exact name, else ``"*"``, else the defaults."""
        wildcard = None
        for policy in self.container_policies:
            if policy.container_name == container_name:
                return policy
            if policy.container_name == "*":
                wildcard = policy
        if wildcard is not None:
            return wildcard
        return ContainerPolicy(container_name="*")


@dataclass(frozen=True, slots=True)
class PolicySpec:
    scale_target_ref: ScaleTargetRef
    mode: Mode = Mode.ACTIVE
    interval: float = 15.0
    horizontal: HorizontalSpec | None = None
    vertical: VerticalSpec | None = None


# --------------------------------------------------------------------------------------------------
# Parsing helpers: each takes the raw value and its path, returns a typed value or raises SpecError.


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be an object, got {type(value).__name__}")
    return value


def _opt_mapping(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    value = parent.get(key)
    return None if value is None else _mapping(value, f"{path}.{key}")


def _list(value: Any, path: str, min_len: int, max_len: int) -> Sequence[Any]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise SpecError(path, f"must be a list, got {type(value).__name__}")
    if not min_len <= len(value) <= max_len:
        raise SpecError(path, f"must have {min_len}..{max_len} entries, got {len(value)}")
    return value


def _str(parent: Mapping[str, Any], key: str, path: str, *, required: bool = True, max_len: int = 253) -> str:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        if required:
            raise SpecError(p, "is required")
        return ""
    if not isinstance(value, str):
        raise SpecError(p, f"must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise SpecError(p, "must not be empty")
    if len(value) > max_len:
        raise SpecError(p, f"must be at most {max_len} characters")
    return value


def _int(
    parent: Mapping[str, Any], key: str, path: str, default: int | None, lo: int, hi: int | None = None
) -> int:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        if default is None:
            raise SpecError(p, "is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(p, f"must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise SpecError(p, f"must be in [{lo}, {hi}], got {value}" if hi is not None else f"must be >= {lo}")
    return value


def _float(
    parent: Mapping[str, Any],
    key: str,
    path: str,
    default: float,
    *,
    lo: float,
    hi: float,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        return default
    if isinstance(value, str):  # a YAML author may quote numbers
        try:
            value = float(value)
        except ValueError:
            raise SpecError(p, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(p, f"must be a number, got {value!r}")
    number = float(value)
    too_low = number <= lo if lo_open else number < lo
    too_high = number >= hi if hi_open else number > hi
    if too_low or too_high:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise SpecError(p, f"must be in {interval}, got {number:g}")
    return number


def _quantity(parent: Mapping[str, Any], key: str, path: str, *, positive: bool = True) -> float:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        raise SpecError(p, "is required")
    try:
        number = quantity_to_float(value)
    except ValueError as exc:
        raise SpecError(p, str(exc)) from None
    if positive and number <= 0:
        raise SpecError(p, f"must be > 0, got {value!r}")
    if number < 0:
        raise SpecError(p, f"must be >= 0, got {value!r}")
    return number


def _duration(
    parent: Mapping[str, Any], key: str, path: str, default: float | None, lo: float, hi: float
) -> float:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        if default is None:
            raise SpecError(p, "is required")
        return default
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise SpecError(p, str(exc)) from None
    if not lo <= seconds <= hi:
        raise SpecError(p, f"must be between {lo:g}s and {hi:g}s, got {value!r}")
    return seconds


def _enum(parent: Mapping[str, Any], key: str, path: str, enum: type[_E], default: _E | None) -> _E:
    value = parent.get(key)
    p = f"{path}.{key}"
    if value is None:
        if default is None:
            raise SpecError(p, "is required")
        return default
    try:
        return enum(value)
    except ValueError:
        allowed = " | ".join(m.value for m in enum)
        raise SpecError(p, f"must be one of {allowed}, got {value!r}") from None


# --------------------------------------------------------------------------------------------------
# Section parsers.


def _parse_target_ref(raw: Any, path: str) -> ScaleTargetRef:
    ref = _mapping(raw, path)
    return ScaleTargetRef(
        api_version=_str(ref, "apiVersion", path),
        kind=_str(ref, "kind", path),
        name=_str(ref, "name", path),
    )


def _parse_target(raw: Any, path: str, allowed: tuple[MetricTargetType, ...]) -> MetricTarget:
    target = _mapping(raw, path)
    kind = _enum(target, "type", path, MetricTargetType, None)
    if kind not in allowed:
        raise SpecError(f"{path}.type", f"must be one of {' | '.join(allowed)}, got {kind.value!r}")
    if kind is MetricTargetType.UTILIZATION:
        return MetricTarget(kind, average_utilization=_int(target, "averageUtilization", path, None, 1, 1000))
    if kind is MetricTargetType.AVERAGE_VALUE:
        return MetricTarget(kind, average_value=_quantity(target, "averageValue", path))
    return MetricTarget(kind, value=_quantity(target, "value", path))


def _parse_resource(raw: Any, path: str) -> ResourceMetric:
    res = _mapping(raw, path)
    name = _str(res, "name", path)
    if name not in RESOURCE_NAMES:
        raise SpecError(f"{path}.name", f"must be one of cpu | memory, got {name!r}")
    container = _str(res, "container", path, required=False) or None
    target = _parse_target(
        res.get("target"),
        f"{path}.target",
        (MetricTargetType.UTILIZATION, MetricTargetType.AVERAGE_VALUE),
    )
    return ResourceMetric(name=name, target=target, container=container)


def _parse_prometheus(raw: Any, path: str) -> PrometheusMetric:
    prom = _mapping(raw, path)
    query = _str(prom, "query", path, max_len=4096)
    target = _parse_target(
        prom.get("target"), f"{path}.target", (MetricTargetType.AVERAGE_VALUE, MetricTargetType.VALUE)
    )
    server = _str(prom, "serverAddress", path, required=False, max_len=2048) or None
    return PrometheusMetric(query=query, target=target, server_address=server)


def _parse_buffer_size(raw: Any, path: str) -> BufferSize:
    if isinstance(raw, str) and raw.strip().endswith("%"):
        text = raw.strip()[:-1]
        try:
            percent = float(text)
        except ValueError:
            raise SpecError(path, f"must be an absolute quantity or '<int>%', got {raw!r}") from None
        if not 1 <= percent <= 1000:
            raise SpecError(path, f"percent must be in [1%, 1000%], got {raw!r}")
        return BufferSize(percent=percent)
    if raw is None:
        raise SpecError(path, "is required")
    try:
        absolute = quantity_to_float(raw)
    except ValueError:
        raise SpecError(path, f"must be an absolute quantity or '<int>%', got {raw!r}") from None
    if absolute < 0:
        raise SpecError(path, f"must be >= 0, got {raw!r}")
    return BufferSize(absolute=absolute)


def _parse_buffer(raw: Any, path: str) -> BufferMetric:
    buf = _mapping(raw, path)
    used = _str(buf, "usedQuery", path, max_len=4096)
    has_per_replica = buf.get("capacityPerReplica") not in (None, "")
    has_query = buf.get("capacityQuery") not in (None, "")
    if has_per_replica == has_query:
        raise SpecError(path, "exactly one of capacityPerReplica / capacityQuery must be set")
    per_replica = _quantity(buf, "capacityPerReplica", path) if has_per_replica else None
    cap_query = _str(buf, "capacityQuery", path, max_len=4096) if has_query else None
    size = _parse_buffer_size(buf.get("size"), f"{path}.size")
    return BufferMetric(
        used_query=used, size=size, capacity_per_replica=per_replica, capacity_query=cap_query
    )


_MEMBERS = {MetricType.RESOURCE: "resource", MetricType.PROMETHEUS: "prometheus", MetricType.BUFFER: "buffer"}


def _parse_metric(raw: Any, path: str, index: int) -> MetricSpec:
    entry = _mapping(raw, path)
    kind = _enum(entry, "type", path, MetricType, None)
    member = _MEMBERS[kind]
    for other in _MEMBERS.values():
        if other != member and entry.get(other) is not None:
            raise SpecError(f"{path}.{other}", f"must not be set when type is {kind.value}")
    if entry.get(member) is None:
        raise SpecError(f"{path}.{member}", f"is required when type is {kind.value}")
    member_path = f"{path}.{member}"
    if kind is MetricType.RESOURCE:
        resource = _parse_resource(entry[member], member_path)
        name = f"{resource.container}/{resource.name}" if resource.container else resource.name
        return MetricSpec(kind, name=name, resource=resource)
    if kind is MetricType.PROMETHEUS:
        return MetricSpec(
            kind, name=f"prometheus-{index}", prometheus=_parse_prometheus(entry[member], member_path)
        )
    return MetricSpec(kind, name=f"buffer-{index}", buffer=_parse_buffer(entry[member], member_path))


def _parse_rules(raw: Any, path: str, defaults: ScalingRules) -> ScalingRules:
    if raw is None:
        return defaults
    rules = _mapping(raw, path)
    window = _int(rules, "stabilizationWindowSeconds", path, defaults.stabilization_window_seconds, 0, 3600)
    select = _enum(rules, "selectPolicy", path, SelectPolicy, SelectPolicy.MAX)
    policies = defaults.policies
    if rules.get("policies") is not None:
        items = _list(rules["policies"], f"{path}.policies", 1, 10)
        parsed = []
        for i, item in enumerate(items):
            p = f"{path}.policies[{i}]"
            pol = _mapping(item, p)
            parsed.append(
                ScalingPolicy(
                    type=_enum(pol, "type", p, ScalingPolicyType, None),
                    value=_int(pol, "value", p, None, 1),
                    period_seconds=_int(pol, "periodSeconds", p, None, 1, 1800),
                )
            )
        policies = tuple(parsed)
    return ScalingRules(stabilization_window_seconds=window, select_policy=select, policies=policies)


def _parse_horizontal(raw: Any, path: str) -> HorizontalSpec:
    hor = _mapping(raw, path)
    items = _list(hor.get("metrics"), f"{path}.metrics", 1, 16) if "metrics" in hor else None
    if items is None:
        raise SpecError(f"{path}.metrics", "is required")
    metrics = tuple(_parse_metric(item, f"{path}.metrics[{i}]", i) for i, item in enumerate(items))
    min_replicas = _int(hor, "minReplicas", path, 1, 0)
    max_replicas = _int(hor, "maxReplicas", path, None, 1, 10000)
    if min_replicas > max_replicas:
        raise SpecError(f"{path}.minReplicas", f"must be <= maxReplicas ({max_replicas}), got {min_replicas}")
    if min_replicas == 0 and all(m.type is MetricType.RESOURCE for m in metrics):
        # Resource metrics come from running pods: at zero pods there is nothing to measure.
        raise SpecError(f"{path}.minReplicas", "0 is allowed only with a Prometheus or Buffer metric")

    tol_raw = _opt_mapping(hor, "tolerance", path)
    tolerance = Tolerance()
    if tol_raw is not None:
        tp = f"{path}.tolerance"
        tolerance = Tolerance(
            scale_up=_float(tol_raw, "scaleUp", tp, 0.1, lo=0.0, hi=1.0, hi_open=True),
            scale_down=_float(tol_raw, "scaleDown", tp, 0.1, lo=0.0, hi=1.0, hi_open=True),
        )

    beh_raw = _opt_mapping(hor, "behavior", path)
    behavior = Behavior()
    if beh_raw is not None:
        bp = f"{path}.behavior"
        behavior = Behavior(
            scale_up=_parse_rules(beh_raw.get("scaleUp"), f"{bp}.scaleUp", default_scale_up_rules()),
            scale_down=_parse_rules(beh_raw.get("scaleDown"), f"{bp}.scaleDown", default_scale_down_rules()),
        )

    predictive = None
    pred_raw = _opt_mapping(hor, "predictive", path)
    if pred_raw is not None:
        pp = f"{path}.predictive"
        lookahead = _duration(pred_raw, "lookahead", pp, 60.0, 1.0, 3600.0)
        history = _duration(pred_raw, "history", pp, max(1800.0, 2 * lookahead), 1.0, 86400.0)
        if history < 2 * lookahead:
            raise SpecError(f"{pp}.history", "must be at least 2 * lookahead")
        predictive = Predictive(lookahead=lookahead, history=history)

    fallback = None
    fb_raw = _opt_mapping(hor, "fallback", path)
    if fb_raw is not None:
        fp = f"{path}.fallback"
        fallback = Fallback(
            failure_threshold=_int(fb_raw, "failureThreshold", fp, 3, 1),
            replicas=_int(fb_raw, "replicas", fp, None, 0),
        )

    return HorizontalSpec(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metrics=metrics,
        tolerance=tolerance,
        behavior=behavior,
        predictive=predictive,
        fallback=fallback,
    )


def _parse_amounts(raw: Any, path: str) -> ResourceAmounts:
    if raw is None:
        return ResourceAmounts()
    amounts = _mapping(raw, path)
    for key in amounts:
        if key not in RESOURCE_NAMES:
            raise SpecError(f"{path}.{key}", "only cpu and memory are supported")
    cpu = _quantity(amounts, "cpu", path, positive=False) if amounts.get("cpu") is not None else None
    memory = _quantity(amounts, "memory", path, positive=False) if amounts.get("memory") is not None else None
    return ResourceAmounts(cpu=cpu, memory=memory)


def _parse_container_policy(raw: Any, path: str) -> ContainerPolicy:
    pol = _mapping(raw, path)
    resources: tuple[str, ...] = RESOURCE_NAMES
    if pol.get("controlledResources") is not None:
        rp = f"{path}.controlledResources"
        items = _list(pol["controlledResources"], rp, 1, 2)
        for i, item in enumerate(items):
            if item not in RESOURCE_NAMES:
                raise SpecError(f"{rp}[{i}]", f"must be one of cpu | memory, got {item!r}")
        if len(set(items)) != len(items):
            raise SpecError(rp, "entries must be unique")
        resources = tuple(items)
    min_allowed = _parse_amounts(pol.get("minAllowed"), f"{path}.minAllowed")
    max_allowed = _parse_amounts(pol.get("maxAllowed"), f"{path}.maxAllowed")
    for res in RESOURCE_NAMES:
        lo, hi = min_allowed.get(res), max_allowed.get(res)
        if lo is not None and hi is not None and hi < lo:
            raise SpecError(f"{path}.maxAllowed.{res}", "must be >= minAllowed")
    return ContainerPolicy(
        container_name=_str(pol, "containerName", path),
        mode=_enum(pol, "mode", path, ContainerPolicyMode, ContainerPolicyMode.AUTO),
        controlled_resources=resources,
        controlled_values=_enum(
            pol, "controlledValues", path, ControlledValues, ControlledValues.REQUESTS_AND_LIMITS
        ),
        min_allowed=min_allowed,
        max_allowed=max_allowed,
    )


def _parse_vertical(raw: Any, path: str) -> VerticalSpec:
    ver = _mapping(raw, path)
    policies: tuple[ContainerPolicy, ...] = ()
    if ver.get("containerPolicies") is not None:
        cp = f"{path}.containerPolicies"
        items = _list(ver["containerPolicies"], cp, 0, 32)
        policies = tuple(_parse_container_policy(item, f"{cp}[{i}]") for i, item in enumerate(items))
        names = [p.container_name for p in policies]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise SpecError(f"{cp}[{i}].containerName", f"duplicate container {name!r}")
    target = _float(ver, "targetPercentile", path, 0.9, lo=0.0, hi=1.0, lo_open=True)
    # Unset bounds follow a custom target (like the CRD, only explicitly set pairs are compared).
    lower = _float(ver, "lowerBoundPercentile", path, min(0.5, target), lo=0.0, hi=1.0, lo_open=True)
    upper = _float(ver, "upperBoundPercentile", path, max(0.95, target), lo=0.0, hi=1.0, lo_open=True)
    if not lower <= target <= upper:
        raise SpecError(path, "percentiles must satisfy lowerBound <= target <= upperBound")
    return VerticalSpec(
        update_mode=_enum(ver, "updateMode", path, UpdateMode, UpdateMode.OFF),
        half_life=_duration(ver, "halfLife", path, 24 * 3600.0, 1.0, 365 * 86400.0),
        target_percentile=target,
        lower_bound_percentile=lower,
        upper_bound_percentile=upper,
        safety_margin_fraction=_float(ver, "safetyMarginFraction", path, 0.15, lo=0.0, hi=1.0),
        min_change_fraction=_float(ver, "minChangeFraction", path, 0.1, lo=0.0, hi=1.0, hi_open=True),
        container_policies=policies,
    )


def parse_policy_spec(spec: Mapping[str, Any]) -> PolicySpec:
    """Parse and validate ``AutoScalePolicy.spec``; raise SpecError naming the field on bad input."""
    path = "spec"
    root = _mapping(spec, path)
    if root.get("scaleTargetRef") is None:
        raise SpecError(f"{path}.scaleTargetRef", "is required")
    target_ref = _parse_target_ref(root["scaleTargetRef"], f"{path}.scaleTargetRef")
    mode = _enum(root, "mode", path, Mode, Mode.ACTIVE)
    interval = _duration(root, "interval", path, 15.0, 1.0, 3600.0)
    horizontal = (
        _parse_horizontal(root["horizontal"], f"{path}.horizontal")
        if root.get("horizontal") is not None
        else None
    )
    vertical = (
        _parse_vertical(root["vertical"], f"{path}.vertical") if root.get("vertical") is not None else None
    )
    if horizontal is None and vertical is None:
        raise SpecError(path, "at least one of horizontal / vertical must be set")
    return PolicySpec(
        scale_target_ref=target_ref,
        mode=mode,
        interval=interval,
        horizontal=horizontal,
        vertical=vertical,
    )
