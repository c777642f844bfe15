"""AutoScalePolicy spec: frozen dataclasses and a fail-fast parser (contract: docs/api.md).

Every error names the offending field, e.g.
``spec.horizontal.metrics[1].prometheus.query: must not be empty``.
Validation mirrors the CRD (crds/); its table tests/integration/crd_cases.yaml also runs through
this parser in tests/unit/test_crd_contract.py. Unknown keys are ignored (the API server rejects or
prunes them before they reach us), except inside a metric entry, where only the member named by
``type`` may be present.
Quantities are stored as floats in base units: CPU in cores, memory in bytes, durations in seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeAlias
from urllib.parse import urlparse

from surge.api._fields import (
    SpecError,
    mapping,
    opt_mapping,
    read_duration,
    read_enum,
    read_float,
    read_int,
    read_list,
    read_quantity,
    read_str,
    shown,
)
from surge.api.schedule import Cron, Zone, format_utc, latest_start, load_zone, parse_cron, parse_rfc3339

__all__ = [
    "Behavior",
    "BufferMetric",
    "BufferMetricSpec",
    "BufferSize",
    "ContainerPolicy",
    "ContainerPolicyMode",
    "ControlledValues",
    "Fallback",
    "FallbackBehavior",
    "HorizontalSpec",
    "MetricSpec",
    "MetricTarget",
    "MetricTargetType",
    "MetricType",
    "Mode",
    "PodsMetric",
    "PodsMetricSpec",
    "PolicySpec",
    "Predictive",
    "PrometheusMetric",
    "PrometheusMetricSpec",
    "ResourceAmounts",
    "ResourceMetric",
    "ResourceMetricSpec",
    "Saturation",
    "ScaleTargetRef",
    "ScalingPolicy",
    "ScalingPolicyType",
    "ScalingRules",
    "Schedule",
    "SelectPolicy",
    "SpecError",
    "Tolerance",
    "UpdateMode",
    "VerticalSpec",
    "default_scale_down_rules",
    "default_scale_up_rules",
    "parse_policy_spec",
]


class Mode(StrEnum):
    ACTIVE = "Active"
    DRY_RUN = "DryRun"


class MetricType(StrEnum):
    RESOURCE = "Resource"
    PROMETHEUS = "Prometheus"
    BUFFER = "Buffer"
    PODS = "Pods"  # HPA's Pods type: a PromQL query returning one series per pod (label `pod`)


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


class FallbackBehavior(StrEnum):
    RAISE_ONLY = "RaiseOnly"
    EXACT = "Exact"


class ContainerPolicyMode(StrEnum):
    AUTO = "Auto"
    OFF = "Off"


class ControlledValues(StrEnum):
    REQUESTS_ONLY = "RequestsOnly"
    REQUESTS_AND_LIMITS = "RequestsAndLimits"


RESOURCE_NAMES = ("cpu", "memory")
INT32_MAX = 2**31 - 1
MAX_REPLICAS = 10000
HALF_LIFE_MAX = 8760 * 3600.0  # 365 days
BUFFER_SLOTS_MAX = 9_999_999  # the CRD's pattern: at most 7 digits


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
class Saturation:
    """Opt-in rule for a Utilization target whose metric is censored at saturation (full game servers).

    When the ready pods' average utilization (those with a sample, HPA's "ready" group) is at least
    ``utilization`` percent of the request, the measurement is only a lower bound of the demand, so the
    metric proposes at least ``ceil(ready pods with a sample x scale_up_factor)``.
    """

    utilization: int = 95  # percent of requests, > the target's averageUtilization
    scale_up_factor: float = 2.0  # 1 < x <= 10


@dataclass(frozen=True, slots=True)
class ResourceMetric:
    name: str  # cpu | memory
    target: MetricTarget
    container: str | None = None  # None: all containers of the pod
    saturation: Saturation | None = None  # None: exact HPA behaviour


@dataclass(frozen=True, slots=True)
class PrometheusMetric:
    query: str
    target: MetricTarget
    server_address: str | None = None


@dataclass(frozen=True, slots=True)
class PodsMetric:
    """HPA's ``Pods`` metric: ``query`` returns one series per pod, keyed by its ``pod`` label; the target
    is an average per pod (AverageValue), with HPA's rules for missing, unready and Pending pods."""

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


# One entry of ``spec.horizontal.metrics``: one frozen dataclass per metric type, each with ``name`` (the
# stable display name in status.currentMetrics: "cpu", "arena/memory", "prometheus-1") and its own member.
# ``type`` is a class-level tag; consumers dispatch with ``match``/``isinstance`` and ``assert_never``.


@dataclass(frozen=True, slots=True)
class ResourceMetricSpec:
    name: str
    resource: ResourceMetric
    type: ClassVar[Literal[MetricType.RESOURCE]] = MetricType.RESOURCE


@dataclass(frozen=True, slots=True)
class PrometheusMetricSpec:
    name: str
    prometheus: PrometheusMetric
    type: ClassVar[Literal[MetricType.PROMETHEUS]] = MetricType.PROMETHEUS


@dataclass(frozen=True, slots=True)
class BufferMetricSpec:
    name: str
    buffer: BufferMetric
    type: ClassVar[Literal[MetricType.BUFFER]] = MetricType.BUFFER


@dataclass(frozen=True, slots=True)
class PodsMetricSpec:
    name: str
    pods: PodsMetric
    type: ClassVar[Literal[MetricType.PODS]] = MetricType.PODS


MetricSpec: TypeAlias = ResourceMetricSpec | PrometheusMetricSpec | BufferMetricSpec | PodsMetricSpec


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
    """HPA autoscaling/v2 default: no stabilization, +100% or +4 pods per 15s, whichever is more.

    In the order of the CRD's default (and HPA's), so a defaulted and a parsed spec compare equal."""
    return ScalingRules(
        stabilization_window_seconds=0,
        select_policy=SelectPolicy.MAX,
        policies=(
            ScalingPolicy(ScalingPolicyType.PERCENT, 100, 15),
            ScalingPolicy(ScalingPolicyType.PODS, 4, 15),
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
    # RaiseOnly (default): the fallback count is a floor, so missing data never scales down;
    # Exact: hold exactly ``replicas`` (KEDA's behaviour), scaling down if the user asked for it.
    behavior: FallbackBehavior = FallbackBehavior.RAISE_ONLY


@dataclass(frozen=True, slots=True)
class Schedule:
    """Floors over a window: once (``start``) or recurring (``cron`` on ``time_zone``'s clocks).

    A floor of replicas (``min_replicas``), of free capacity for every Buffer metric (``min_free_capacity``,
    in the units of its used query), or both. The window is [start, start + length); ``end`` and
    ``duration`` are the spec's fields as given.
    """

    name: str
    min_replicas: int | None
    start: float | None = None  # epoch seconds
    end: float | None = None  # epoch seconds
    cron: Cron | None = None
    duration: float | None = None  # seconds
    time_zone: Zone | None = None  # None: UTC
    min_free_capacity: float | None = None  # free slots every Buffer metric keeps while the window is open

    @property
    def length(self) -> float:
        if self.duration is not None:
            return self.duration
        assert self.start is not None  # the parser's rule: start with end or duration
        assert self.end is not None
        return self.end - self.start

    def window_at(self, now: float) -> tuple[float, float] | None:
        """The window holding ``now`` as (start, end) epoch seconds, or None when none does."""
        if self.start is not None:
            end = self.start + self.length
            return (self.start, end) if self.start <= now < end else None
        assert self.cron is not None
        began = latest_start(self.cron, self.time_zone or load_zone("UTC"), now, self.length)
        return None if began is None else (float(began), began + self.length)


SCHEDULES_MAX = 16
SCHEDULE_DURATION_MAX = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class HorizontalSpec:
    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    min_replicas: int = 1
    tolerance: Tolerance = field(default_factory=Tolerance)
    behavior: Behavior = field(default_factory=Behavior)
    predictive: Predictive | None = None
    fallback: Fallback | None = None
    schedules: tuple[Schedule, ...] = ()


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
# Section parsers.


def _parse_target_ref(raw: Any, path: str) -> ScaleTargetRef:
    ref = mapping(raw, path)
    return ScaleTargetRef(
        api_version=_check(
            read_str(ref, "apiVersion", path),
            _API_VERSION_RE,
            f"{path}.apiVersion",
            "an API version like apps/v1",
        ),
        kind=_check(
            read_str(ref, "kind", path, max_len=63), _KIND_RE, f"{path}.kind", "a kind like Deployment"
        ),
        name=_check(read_str(ref, "name", path), _DNS_SUBDOMAIN_RE, f"{path}.name", "a DNS subdomain name"),
    )


_BUFFER_SIZE_RE = re.compile(r"^[0-9]{1,7}%?$")  # same pattern as the CRD
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KIND_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_API_VERSION_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?v[0-9]+((alpha|beta)[0-9]+)?$"
)
_TARGET_MEMBERS = {
    "averageUtilization": MetricTargetType.UTILIZATION,
    "averageValue": MetricTargetType.AVERAGE_VALUE,
    "value": MetricTargetType.VALUE,
}


def _check(value: str, pattern: re.Pattern[str], path: str, what: str) -> str:
    if not pattern.fullmatch(value):  # fullmatch: like RE2, '$' must not match before a final newline
        raise SpecError(path, f"must be {what}, got {shown(value)}")
    return value


def _parse_target(raw: Any, path: str, allowed: tuple[MetricTargetType, ...]) -> MetricTarget:
    target = mapping(raw, path)
    kind = read_enum(target, "type", path, MetricTargetType, None)
    if kind not in allowed:
        raise SpecError(f"{path}.type", f"must be one of {' | '.join(allowed)}, got {kind.value!r}")
    for member, owner in _TARGET_MEMBERS.items():
        if owner is not kind and target.get(member) is not None:
            raise SpecError(f"{path}.{member}", f"is only allowed with target type {owner.value}")
    if kind is MetricTargetType.UTILIZATION:
        return MetricTarget(
            kind, average_utilization=read_int(target, "averageUtilization", path, None, 1, 1000)
        )
    if kind is MetricTargetType.AVERAGE_VALUE:
        return MetricTarget(kind, average_value=read_quantity(target, "averageValue", path))
    return MetricTarget(kind, value=read_quantity(target, "value", path))


def _parse_resource(raw: Any, path: str) -> ResourceMetric:
    res = mapping(raw, path)
    name = read_str(res, "name", path)
    if name not in RESOURCE_NAMES:
        raise SpecError(f"{path}.name", f"must be one of cpu | memory, got {shown(name)}")
    container = read_str(res, "container", path, required=False, max_len=63) or None
    if container is not None:
        _check(container, _DNS_LABEL_RE, f"{path}.container", "a container name (DNS label)")
    target = _parse_target(
        res.get("target"),
        f"{path}.target",
        (MetricTargetType.UTILIZATION, MetricTargetType.AVERAGE_VALUE),
    )
    saturation = _parse_saturation(res, path, target)
    return ResourceMetric(name=name, target=target, container=container, saturation=saturation)


def _parse_saturation(res: Mapping[str, Any], path: str, target: MetricTarget) -> Saturation | None:
    raw = opt_mapping(res, "saturation", path)
    if raw is None:
        return None
    sp = f"{path}.saturation"
    if res.get("name") != "cpu":
        raise SpecError(sp, "applies to cpu only: memory at its request is not a ceiling on demand")
    if target.type is not MetricTargetType.UTILIZATION:
        raise SpecError(
            sp,
            "needs target type Utilization: saturation is judged in percent of the pods' requests, "
            f"and this target is {target.type.value}",
        )
    assert target.average_utilization is not None
    utilization = read_int(raw, "utilization", sp, 95, 2, 1000)  # 2: it must exceed a target of >= 1
    if utilization <= target.average_utilization:
        raise SpecError(
            f"{sp}.utilization",
            f"must be greater than the target's averageUtilization ({target.average_utilization}), "
            f"got {utilization}",
        )
    factor = read_float(raw, "scaleUpFactor", sp, 2.0, lo=1.0, hi=10.0, lo_open=True)
    return Saturation(utilization=utilization, scale_up_factor=factor)


_URL_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f]")  # Go's url parser refuses spaces and controls
_NETLOC_RE = re.compile(r"([^@]*@)?(\[[^\]]*\]|[^:@\[\]]*)(:[0-9]*)?")


def _server_address(parent: Mapping[str, Any], path: str) -> str | None:
    server = read_str(parent, "serverAddress", path, required=False, max_len=2048) or None
    if server is not None:
        try:
            url = urlparse(server)
            ok = (
                url.scheme in ("http", "https")
                and bool(url.hostname)
                and not _URL_FORBIDDEN_RE.search(server)
                and _NETLOC_RE.fullmatch(url.netloc) is not None  # Go: a port is digits, any number
            )
        except ValueError:  # e.g. an unbalanced IPv6 bracket or a bad port
            ok = False
        if not ok:
            raise SpecError(f"{path}.serverAddress", f"must be an http(s) URL, got {shown(server)}")
    return server


def _parse_prometheus(raw: Any, path: str) -> PrometheusMetric:
    prom = mapping(raw, path)
    query = read_str(prom, "query", path, max_len=4096)
    target = _parse_target(
        prom.get("target"), f"{path}.target", (MetricTargetType.AVERAGE_VALUE, MetricTargetType.VALUE)
    )
    return PrometheusMetric(query=query, target=target, server_address=_server_address(prom, path))


def _parse_pods(raw: Any, path: str) -> PodsMetric:
    pods = mapping(raw, path)
    query = read_str(pods, "query", path, max_len=4096)
    target = _parse_target(pods.get("target"), f"{path}.target", (MetricTargetType.AVERAGE_VALUE,))
    return PodsMetric(query=query, target=target, server_address=_server_address(pods, path))


def _parse_buffer_size(raw: Any, path: str) -> BufferSize:
    if raw is None:
        raise SpecError(path, "is required")
    if isinstance(raw, int) and not isinstance(raw, bool):
        if not 1 <= raw <= BUFFER_SLOTS_MAX:
            raise SpecError(
                path,
                f"an absolute buffer size must be between 1 and {BUFFER_SLOTS_MAX} free slots, "
                f"got {shown(raw)}",
            )
        return BufferSize(absolute=float(raw))
    if not isinstance(raw, str) or not _BUFFER_SIZE_RE.fullmatch(raw):
        raise SpecError(path, f"must be free slots ('50') or a percent of used ('25%'), got {shown(raw)}")
    if raw.endswith("%"):
        percent = int(raw[:-1])
        if not 1 <= percent <= 1000:
            raise SpecError(path, f"a percent buffer size must be between 1% and 1000%, got {shown(raw)}")
        return BufferSize(percent=float(percent))
    if int(raw) < 1:
        raise SpecError(
            path,
            f"an absolute buffer size must be between 1 and {BUFFER_SLOTS_MAX} free slots, got {shown(raw)}",
        )
    return BufferSize(absolute=float(raw))


def _parse_buffer(raw: Any, path: str) -> BufferMetric:
    buf = mapping(raw, path)
    used = read_str(buf, "usedQuery", path, max_len=4096)
    # Present means present, as CEL's has(): an empty capacityQuery is set (and then refused as empty).
    has_per_replica = buf.get("capacityPerReplica") is not None
    has_query = buf.get("capacityQuery") is not None
    if has_per_replica == has_query:
        raise SpecError(path, "exactly one of capacityPerReplica / capacityQuery must be set")
    per_replica = read_quantity(buf, "capacityPerReplica", path) if has_per_replica else None
    cap_query = read_str(buf, "capacityQuery", path, max_len=4096) if has_query else None
    size = _parse_buffer_size(buf.get("size"), f"{path}.size")
    return BufferMetric(
        used_query=used, size=size, capacity_per_replica=per_replica, capacity_query=cap_query
    )


def _resource_metric(raw: Any, path: str, index: int) -> ResourceMetricSpec:
    resource = _parse_resource(raw, path)
    name = f"{resource.container}/{resource.name}" if resource.container else resource.name
    return ResourceMetricSpec(name, resource)


# One line per metric type: its member in the metric entry, and how to build its spec from that member
# (raw member, its path, the entry's index).
_METRIC_KINDS: dict[MetricType, tuple[str, Callable[[Any, str, int], MetricSpec]]] = {
    MetricType.RESOURCE: ("resource", _resource_metric),
    MetricType.PROMETHEUS: (
        "prometheus",
        lambda r, p, i: PrometheusMetricSpec(f"prometheus-{i}", _parse_prometheus(r, p)),
    ),
    MetricType.BUFFER: ("buffer", lambda r, p, i: BufferMetricSpec(f"buffer-{i}", _parse_buffer(r, p))),
    MetricType.PODS: ("pods", lambda r, p, i: PodsMetricSpec(f"pods-{i}", _parse_pods(r, p))),
}
# Metrics measured on the target's pods: with zero pods there is nothing to measure (no scale to zero).
_POD_MEASURED = (MetricType.RESOURCE, MetricType.PODS)


# HPA members Surge does not have; the CRD declares them only to refuse them with a clear message.
_HPA_ONLY_MEMBERS = ("external", "object", "containerResource")


def _parse_metric(raw: Any, path: str, index: int) -> MetricSpec:
    entry = mapping(raw, path)
    kind = read_enum(entry, "type", path, MetricType, None)
    for hpa_member in _HPA_ONLY_MEMBERS:
        if entry.get(hpa_member) is not None:
            raise SpecError(
                f"{path}.{hpa_member}",
                "HPA's External, Object and ContainerResource metrics are not supported: type must be one of "
                "Resource, Prometheus, Buffer or Pods",
            )
    member, build = _METRIC_KINDS[kind]
    for other, _ in _METRIC_KINDS.values():
        if other != member and entry.get(other) is not None:
            raise SpecError(f"{path}.{other}", f"must not be set when type is {kind.value}")
    if entry.get(member) is None:
        raise SpecError(f"{path}.{member}", f"is required when type is {kind.value}")
    return build(entry[member], f"{path}.{member}", index)


def _parse_rules(raw: Any, path: str, defaults: ScalingRules) -> ScalingRules:
    if raw is None:
        return defaults
    rules = mapping(raw, path)
    window = read_int(
        rules, "stabilizationWindowSeconds", path, defaults.stabilization_window_seconds, 0, 3600
    )
    select = read_enum(rules, "selectPolicy", path, SelectPolicy, SelectPolicy.MAX)
    policies = defaults.policies
    if rules.get("policies") is not None:
        items = read_list(rules["policies"], f"{path}.policies", 1, 10)
        parsed = []
        for i, item in enumerate(items):
            p = f"{path}.policies[{i}]"
            pol = mapping(item, p)
            parsed.append(
                ScalingPolicy(
                    type=read_enum(pol, "type", p, ScalingPolicyType, None),
                    value=read_int(pol, "value", p, None, 1, INT32_MAX),
                    period_seconds=read_int(pol, "periodSeconds", p, None, 1, 1800),
                )
            )
        policies = tuple(parsed)
    return ScalingRules(stabilization_window_seconds=window, select_policy=select, policies=policies)


def _parse_schedule(raw: Any, path: str, max_replicas: int, has_buffer: bool) -> Schedule:
    sch = mapping(raw, path)
    name = _check(read_str(sch, "name", path, max_len=63), _DNS_LABEL_RE, f"{path}.name", "a DNS label name")
    has_start, has_cron = sch.get("start") is not None, sch.get("cron") is not None
    if has_start == has_cron:
        raise SpecError(path, "exactly one of start (one window) / cron (recurring windows) must be set")
    has_end, has_duration = sch.get("end") is not None, sch.get("duration") is not None
    duration = (
        read_duration(sch, "duration", path, None, 1.0, SCHEDULE_DURATION_MAX) if has_duration else None
    )
    min_replicas = (
        read_int(sch, "minReplicas", path, None, 1, MAX_REPLICAS)
        if sch.get("minReplicas") is not None
        else None
    )
    if min_replicas is not None and min_replicas > max_replicas:
        raise SpecError(f"{path}.minReplicas", f"must be <= maxReplicas ({max_replicas}), got {min_replicas}")
    free = None
    if sch.get("minFreeCapacity") is not None:
        # The bounds of an absolute Buffer size, but 0 is allowed: "no more than the spec's buffer".
        free = float(read_int(sch, "minFreeCapacity", path, None, 0, BUFFER_SLOTS_MAX))
        if not has_buffer:
            raise SpecError(
                f"{path}.minFreeCapacity",
                "needs a Buffer metric in horizontal.metrics: it is a floor of the Buffer metrics' free "
                "capacity (use minReplicas for a floor of replicas)",
            )
    if min_replicas is None and free is None:
        raise SpecError(
            path,
            "needs minReplicas (a floor of replicas), minFreeCapacity (a floor of free capacity), or both",
        )
    if has_cron:
        if has_end:
            raise SpecError(f"{path}.end", "is for a start time; a cron window lasts its duration")
        if duration is None:
            raise SpecError(f"{path}.duration", "is required with cron: how long each window lasts")
        text = read_str(sch, "cron", path, max_len=100)
        try:
            cron = parse_cron(text)
        except ValueError as exc:
            raise SpecError(f"{path}.cron", str(exc)) from None
        zone = None
        if sch.get("timeZone") is not None:
            zone_name = read_str(sch, "timeZone", path, max_len=64)
            try:
                zone = load_zone(zone_name)
            except ValueError as exc:
                raise SpecError(f"{path}.timeZone", str(exc)) from None
        return Schedule(
            name, min_replicas, cron=cron, duration=duration, time_zone=zone, min_free_capacity=free
        )
    if sch.get("timeZone") is not None:
        raise SpecError(f"{path}.timeZone", "applies to cron only: start carries its own UTC offset")
    start = _read_time(sch, "start", path)
    if has_end == has_duration:
        raise SpecError(path, "exactly one of end / duration must be set with start")
    end = _read_time(sch, "end", path) if has_end else None
    if end is not None and not 1.0 <= end - start <= SCHEDULE_DURATION_MAX:
        raise SpecError(f"{path}.end", "must be after start, by at most 168h (7 days)")
    return Schedule(name, min_replicas, start=start, end=end, duration=duration, min_free_capacity=free)


def _read_time(parent: Mapping[str, Any], key: str, path: str) -> float:
    text = read_str(parent, key, path, max_len=35)
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise SpecError(f"{path}.{key}", str(exc)) from None


def _parse_schedules(raw: Any, path: str, max_replicas: int, has_buffer: bool) -> tuple[Schedule, ...]:
    items = read_list(raw, path, 0, SCHEDULES_MAX)
    out = tuple(
        _parse_schedule(item, f"{path}[{i}]", max_replicas, has_buffer) for i, item in enumerate(items)
    )
    for i, sch in enumerate(out):
        for j, other in enumerate(out[:i]):
            if sch.name == other.name:
                raise SpecError(f"{path}[{i}].name", f"duplicate schedule name {shown(sch.name)}")
            # Statically decidable overlaps only: two one-off windows, or the same cron on the same clocks.
            if (
                sch.start is not None
                and other.start is not None
                and sch.start < other.start + other.length
                and other.start < sch.start + sch.length
            ):
                raise SpecError(
                    f"{path}[{i}]",
                    f"its window {format_utc(sch.start)}..{format_utc(sch.start + sch.length)} overlaps "
                    f"the window of schedule {other.name!r} (schedules[{j}])",
                )
            if (
                sch.cron is not None
                and other.cron is not None
                and sch.cron.text == other.cron.text
                and (sch.time_zone or load_zone("UTC")).name == (other.time_zone or load_zone("UTC")).name
            ):
                raise SpecError(
                    f"{path}[{i}].cron",
                    f"is the same as schedule {other.name!r}'s in the same time zone: their windows overlap",
                )
    return out


def _parse_horizontal(raw: Any, path: str) -> HorizontalSpec:
    hor = mapping(raw, path)
    items = read_list(hor.get("metrics"), f"{path}.metrics", 1, 16) if "metrics" in hor else None
    if items is None:
        raise SpecError(f"{path}.metrics", "is required")
    metrics = tuple(_parse_metric(item, f"{path}.metrics[{i}]", i) for i, item in enumerate(items))
    min_replicas = read_int(hor, "minReplicas", path, 1, 0, MAX_REPLICAS)
    max_replicas = read_int(hor, "maxReplicas", path, None, 1, MAX_REPLICAS)
    if min_replicas > max_replicas:
        raise SpecError(f"{path}.minReplicas", f"must be <= maxReplicas ({max_replicas}), got {min_replicas}")
    if min_replicas == 0 and all(m.type in _POD_MEASURED for m in metrics):
        # Resource and Pods metrics come from running pods: at zero pods there is nothing to measure.
        raise SpecError(
            f"{path}.minReplicas",
            "0 (scale to zero) needs at least one Prometheus or Buffer metric: Resource and Pods metrics "
            "come from the target's pods and cannot wake a workload that has none",
        )

    tol_raw = opt_mapping(hor, "tolerance", path)
    tolerance = Tolerance()
    if tol_raw is not None:
        tp = f"{path}.tolerance"
        tolerance = Tolerance(
            # HPA parity: any tolerance >= 0 (a scale-down tolerance >= 1 never scales down).
            scale_up=read_float(tol_raw, "scaleUp", tp, 0.1, lo=0.0, hi=None),
            scale_down=read_float(tol_raw, "scaleDown", tp, 0.1, lo=0.0, hi=None),
        )

    beh_raw = opt_mapping(hor, "behavior", path)
    behavior = Behavior()
    if beh_raw is not None:
        bp = f"{path}.behavior"
        behavior = Behavior(
            scale_up=_parse_rules(beh_raw.get("scaleUp"), f"{bp}.scaleUp", default_scale_up_rules()),
            scale_down=_parse_rules(beh_raw.get("scaleDown"), f"{bp}.scaleDown", default_scale_down_rules()),
        )

    predictive = None
    pred_raw = opt_mapping(hor, "predictive", path)
    if pred_raw is not None:
        pp = f"{path}.predictive"
        lookahead = read_duration(pred_raw, "lookahead", pp, 60.0, 1.0, 3600.0)
        history = read_duration(pred_raw, "history", pp, max(1800.0, 2 * lookahead), 0.0, 86400.0)
        if history < 2 * lookahead:
            raise SpecError(f"{pp}.history", "must be at least twice predictive.lookahead")
        predictive = Predictive(lookahead=lookahead, history=history)

    fallback = None
    fb_raw = opt_mapping(hor, "fallback", path)
    if fb_raw is not None:
        fp = f"{path}.fallback"
        fallback = Fallback(
            failure_threshold=read_int(fb_raw, "failureThreshold", fp, 3, 1, 1000),
            replicas=read_int(fb_raw, "replicas", fp, None, 0, MAX_REPLICAS),
            behavior=read_enum(fb_raw, "behavior", fp, FallbackBehavior, FallbackBehavior.RAISE_ONLY),
        )

    return HorizontalSpec(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metrics=metrics,
        tolerance=tolerance,
        behavior=behavior,
        predictive=predictive,
        fallback=fallback,
        schedules=(
            _parse_schedules(
                hor["schedules"],
                f"{path}.schedules",
                max_replicas,
                has_buffer=any(isinstance(m, BufferMetricSpec) for m in metrics),
            )
            if hor.get("schedules") is not None
            else ()
        ),
    )


def _parse_amounts(raw: Any, path: str, *, positive: bool) -> ResourceAmounts:
    if raw is None:
        return ResourceAmounts()
    amounts = mapping(raw, path)
    for key in amounts:
        if key not in RESOURCE_NAMES:
            raise SpecError(f"{path}.{key}", "only cpu and memory are supported")
    cpu = read_quantity(amounts, "cpu", path, positive=positive) if amounts.get("cpu") is not None else None
    memory = (
        read_quantity(amounts, "memory", path, positive=positive)
        if amounts.get("memory") is not None
        else None
    )
    return ResourceAmounts(cpu=cpu, memory=memory)


def _container_name(name: str, path: str) -> str:
    return name if name == "*" else _check(name, _DNS_LABEL_RE, path, "'*' or a container name (DNS label)")


def _parse_container_policy(raw: Any, path: str) -> ContainerPolicy:
    pol = mapping(raw, path)
    resources: tuple[str, ...] = RESOURCE_NAMES
    if pol.get("controlledResources") is not None:
        rp = f"{path}.controlledResources"
        items = read_list(pol["controlledResources"], rp, 1, 2)
        for i, item in enumerate(items):
            if item not in RESOURCE_NAMES:
                raise SpecError(f"{rp}[{i}]", f"must be one of cpu | memory, got {shown(item)}")
        if len(set(items)) != len(items):
            raise SpecError(rp, "entries must be unique")
        resources = tuple(items)
    min_allowed = _parse_amounts(pol.get("minAllowed"), f"{path}.minAllowed", positive=False)
    max_allowed = _parse_amounts(pol.get("maxAllowed"), f"{path}.maxAllowed", positive=True)  # like the CRD
    for res in RESOURCE_NAMES:
        lo, hi = min_allowed.get(res), max_allowed.get(res)
        if lo is not None and hi is not None and hi < lo:
            raise SpecError(f"{path}.maxAllowed.{res}", "must be >= minAllowed")
    return ContainerPolicy(
        container_name=_container_name(
            read_str(pol, "containerName", path, max_len=63), f"{path}.containerName"
        ),
        mode=read_enum(pol, "mode", path, ContainerPolicyMode, ContainerPolicyMode.AUTO),
        controlled_resources=resources,
        controlled_values=read_enum(
            pol, "controlledValues", path, ControlledValues, ControlledValues.REQUESTS_AND_LIMITS
        ),
        min_allowed=min_allowed,
        max_allowed=max_allowed,
    )


def _parse_vertical(raw: Any, path: str) -> VerticalSpec:
    ver = mapping(raw, path)
    policies: tuple[ContainerPolicy, ...] = ()
    if ver.get("containerPolicies") is not None:
        cp = f"{path}.containerPolicies"
        items = read_list(ver["containerPolicies"], cp, 0, 32)
        policies = tuple(_parse_container_policy(item, f"{cp}[{i}]") for i, item in enumerate(items))
        names = [p.container_name for p in policies]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise SpecError(f"{cp}[{i}].containerName", f"duplicate container {shown(name)}")
    target = read_float(ver, "targetPercentile", path, 0.9, lo=0.0, hi=1.0, lo_open=True)
    # Fixed defaults, as the CRD: the API server fills them in before its rules compare them.
    lower = read_float(ver, "lowerBoundPercentile", path, 0.5, lo=0.0, hi=1.0, lo_open=True)
    upper = read_float(ver, "upperBoundPercentile", path, 0.95, lo=0.0, hi=1.0, lo_open=True)
    if lower > target:
        raise SpecError(
            f"{path}.lowerBoundPercentile",
            f"({lower:g}) must be less than or equal to targetPercentile ({target:g})",
        )
    if upper < target:
        raise SpecError(
            f"{path}.upperBoundPercentile",
            f"({upper:g}) must be greater than or equal to targetPercentile ({target:g})",
        )
    return VerticalSpec(
        update_mode=read_enum(ver, "updateMode", path, UpdateMode, UpdateMode.OFF),
        half_life=read_duration(ver, "halfLife", path, 24 * 3600.0, 1.0, HALF_LIFE_MAX),
        target_percentile=target,
        lower_bound_percentile=lower,
        upper_bound_percentile=upper,
        safety_margin_fraction=read_float(ver, "safetyMarginFraction", path, 0.15, lo=0.0, hi=1.0),
        min_change_fraction=read_float(ver, "minChangeFraction", path, 0.1, lo=0.0, hi=1.0),
        container_policies=policies,
    )


def parse_policy_spec(spec: Mapping[str, Any]) -> PolicySpec:
    """Parse and validate ``AutoScalePolicy.spec``; raise SpecError naming the field on bad input."""
    path = "spec"
    root = mapping(spec, path)
    if root.get("scaleTargetRef") is None:
        raise SpecError(f"{path}.scaleTargetRef", "is required")
    target_ref = _parse_target_ref(root["scaleTargetRef"], f"{path}.scaleTargetRef")
    mode = read_enum(root, "mode", path, Mode, Mode.ACTIVE)
    interval = read_duration(root, "interval", path, 15.0, 1.0, 3600.0)
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
