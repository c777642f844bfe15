"""Hypothesis strategies that generate AutoScalePolicy specs from the CRD's openAPIV3Schema.

``policy_specs(valid=True)`` builds specs the CRD accepts: every value within the node's schema (type,
enum, bounds, lengths, patterns, duration rules) and a repair step for the cross-field CEL rules (one
member per metric type, min <= max, percentiles in order, history >= 2 * lookahead, ...). With
``valid=False`` values also come from just outside the schema (bounds +-1, bad enums, huge exponents,
overflowing durations) and the repair step is skipped at random, so both verdicts occur.
``garbled_specs()`` puts arbitrary JSON at one random node of a spec: the parser must still only ever
raise SpecError.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from hypothesis import strategies as st

from surge.api.quantity import format_duration, parse_duration, parse_quantity
from tests.unit.crd_schema import (
    DURATION_PATTERN,
    HPA_ONLY_MEMBERS,
    ITEM,
    SPEC_SCHEMA,
    SchemaPath,
    clone,
    nodes,
)

_T = TypeVar("_T")
_BOUND_RE = re.compile(r"duration\(self\)\s*(>=|<=)\s*duration\('([^']+)'\)")
_QUANTITY_SUFFIXES = ("", "m", "k", "M", "G", "Ki", "Mi", "Gi", "e3", "E", "n")
_URLS = ("http://127.0.0.1:9090", "https://prometheus.monitoring.svc:9090", "http://a:99999/x", "")
_BAD_URLS = ("prometheus:9090", "ftp://x", "http://", "http://a b", "http://a:x")
_DUR_LIMIT_MS = 3_000_000_000  # ~35 days, beyond every upper bound


def _duration_bounds(node: dict[str, Any]) -> tuple[int, int]:
    lo, hi = 0, _DUR_LIMIT_MS
    for rule in node.get("x-kubernetes-validations", []):
        for op, text in _BOUND_RE.findall(rule["rule"]):
            ms = round(parse_duration(text) * 1000)
            lo, hi = (ms, hi) if op == ">=" else (lo, ms)
    return lo, hi


def _durations(node: dict[str, Any], valid: bool) -> st.SearchStrategy[str]:
    lo, hi = _duration_bounds(node)
    good = st.integers(lo, hi).map(lambda ms: format_duration(ms / 1000))
    if valid:
        return good
    edges = st.sampled_from(
        [
            format_duration(max(lo - 1, 0) / 1000),
            format_duration((hi + 1) / 1000),
            "99999999999999999999h",
            "1.5s",
        ]
    )
    return st.one_of(good, edges, st.from_regex(r"\A([0-9]{1,12}(ms|s|m|h)){1,3}\Z"))


def _quantities(positive: bool, valid: bool) -> st.SearchStrategy[Any]:
    mantissa = st.one_of(st.integers(1, 999_999).map(str), st.decimals("0.001", "9999", places=3).map(str))
    text = st.builds(lambda m, s: m + s, mantissa, st.sampled_from(_QUANTITY_SUFFIXES))
    good = st.one_of(st.integers(1, 10**9), text).filter(lambda q: _quantity_ok(q, positive))
    if valid:
        return good
    bad = st.sampled_from(
        [0, -1, "0", "-5m", "1e400", "1e306", "1e99999999999", "1.5E", 10**18 + 1, "lots", " 1", "1e-400"]
    )
    return st.one_of(good, bad)


def _quantity_ok(value: Any, positive: bool) -> bool:
    number = parse_quantity(value)
    return (number > 0 if positive else number >= 0) and number <= Decimal("1e18")


def _integers(node: dict[str, Any], valid: bool) -> st.SearchStrategy[int]:
    lo = node.get("minimum", -(10**6))
    hi = node.get("maximum", lo + 10**6)
    good = st.integers(lo, hi)
    if valid:
        return good
    return st.one_of(good, st.sampled_from([lo - 1, hi + 1, 2**31, -(2**31) - 1]))


def _numbers(node: dict[str, Any], valid: bool) -> st.SearchStrategy[float]:
    lo = float(node.get("minimum", -1e6))
    hi = float(node.get("maximum", 1e6))
    good = st.floats(
        lo,
        hi,
        exclude_min=bool(node.get("exclusiveMinimum")),
        exclude_max=bool(node.get("exclusiveMaximum")),
        allow_nan=False,
        allow_infinity=False,
    )
    if valid:
        return good
    return st.one_of(good, st.sampled_from([lo - 0.5, hi + 0.5, lo]))


def _strings(path: SchemaPath, node: dict[str, Any], valid: bool) -> st.SearchStrategy[str]:
    name = path[-1]
    if node.get("pattern") == DURATION_PATTERN:
        return _durations(node, valid)
    if name == "serverAddress":
        return st.sampled_from(_URLS if valid else _URLS + _BAD_URLS)
    if "pattern" in node:
        size = (node.get("minLength", 0), node.get("maxLength", 253))
        good = st.from_regex(node["pattern"], fullmatch=True).filter(lambda s: size[0] <= len(s) <= size[1])
        return good if valid else st.one_of(good, st.sampled_from(["", "Bad_Name", "x\n"]))
    # Free text (PromQL): printable, not blank.
    good = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=24).filter(
        lambda s: s.strip() != ""
    )
    return good if valid else st.one_of(good, st.sampled_from(["", "   "]))


def _buffer_sizes(valid: bool) -> st.SearchStrategy[Any]:
    good = st.one_of(
        st.integers(1, 9_999_999),
        st.integers(1, 9_999_999).map(str),
        st.integers(1, 1000).map(lambda p: f"{p}%"),
    )
    if valid:
        return good
    return st.one_of(good, st.sampled_from([0, "0", "0%", "1001%", 10_000_000, "25 %", "12345678"]))


_CRONS = ("0 18 * * *", "*/15 9-17 * * MON-FRI", "0 0 1,15 * *", "30 2 29 FEB *", "0 6 * JAN-MAR SUN,7")
_BAD_CRONS = ("0 18 * *", "60 * * * *", "5-1 * * * *", "0 0 31 2 *", "* * * * FOO", "*/0 * * * *")
_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")


def _schedules(valid: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Schedules with unique names and windows that never overlap (one hour apart, or distinct crons)."""

    def build(
        index: int, kind: int, cron: str, zone: str, minutes: int, floor: int, free: int | None, both: bool
    ) -> dict[str, Any]:
        # A floor of replicas, of free capacity, or both (repair drops minFreeCapacity without a Buffer).
        base: dict[str, Any] = {"name": f"s{index}", "minReplicas": floor}
        if free is not None:
            base = {"name": f"s{index}", "minFreeCapacity": free, **({"minReplicas": floor} if both else {})}
        if kind == 0:
            return {
                **base,
                "cron": f"{index} {cron.split(' ', 1)[1]}",
                "timeZone": zone,
                "duration": f"{minutes}m",
            }
        start = f"2026-12-0{index + 1}T18:00:00Z"
        if kind == 1:
            return {**base, "start": start, "duration": f"{minutes}m"}
        return {
            **base,
            "start": start,
            "end": f"2026-12-0{index + 1}T{18 + minutes // 60:02d}:{minutes % 60:02d}:00Z",
        }

    one = st.tuples(
        st.integers(0, 2),
        st.sampled_from(_CRONS),
        st.sampled_from(_ZONES),
        st.integers(1, 300),
        st.integers(1, 60),
        st.none() | st.integers(0, 9_999_999),
        st.booleans(),
    )
    good = st.lists(one, max_size=3).map(lambda items: [build(i, *item) for i, item in enumerate(items)])
    if valid:
        return good
    bad = st.sampled_from(_BAD_CRONS).map(
        lambda c: [{"name": "bad", "cron": c, "duration": "1h", "minReplicas": 2}]
    )
    return st.one_of(good, bad)


def _node(path: SchemaPath, node: dict[str, Any], valid: bool) -> st.SearchStrategy[Any]:
    name = path[-1] if path else ""
    if "enum" in node:
        good = st.sampled_from(node["enum"])
        return good if valid else st.one_of(good, good, st.just("Bogus"))
    if name == "metrics":
        items = _metric((*path, ITEM), node["items"], valid)
        return st.lists(items, min_size=node["minItems"], max_size=3)
    if name == "schedules":
        return _schedules(valid)
    if name == "target":
        return _target(path, node, valid)
    if name == "size":
        return _buffer_sizes(valid)
    if node.get("x-kubernetes-int-or-string"):
        return _quantities(positive=path[-2] != "minAllowed", valid=valid)
    kind = node.get("type")
    if kind == "object":
        return _object(path, node, valid)
    if kind == "array":
        item = _node((*path, ITEM), node["items"], valid)
        unique = node.get("x-kubernetes-list-type") in ("set", "map")
        keys = node.get("x-kubernetes-list-map-keys", [])
        return st.lists(
            item,
            min_size=node.get("minItems", 0),
            max_size=min(node.get("maxItems", 3), 3),
            unique_by=(lambda x: tuple(x[k] for k in keys)) if keys else None,
            unique=unique and not keys,
        )
    if kind == "integer":
        return _integers(node, valid)
    if kind == "number":
        return _numbers(node, valid)
    if kind == "string":
        return _strings(path, node, valid)
    raise AssertionError(f"no strategy for {path}: {node}")


def _object(path: SchemaPath, node: dict[str, Any], valid: bool) -> st.SearchStrategy[dict[str, Any]]:
    props = {k: v for k, v in (node.get("properties") or {}).items() if k not in HPA_ONLY_MEMBERS}
    required = set(node.get("required", []))
    return st.fixed_dictionaries(
        {k: _node((*path, k), v, valid) for k, v in props.items() if k in required},
        optional={k: _node((*path, k), v, valid) for k, v in props.items() if k not in required},
    )


def _metric(path: SchemaPath, node: dict[str, Any], valid: bool) -> st.SearchStrategy[dict[str, Any]]:
    """One entry per type, with exactly the member its type names (CEL), or a mismatch when invalid."""
    members = {"Resource": "resource", "Prometheus": "prometheus", "Buffer": "buffer", "Pods": "pods"}
    options = [
        st.builds(
            lambda body, t=t, m=m: {"type": t, m: body},
            _node((*path, m), node["properties"][m], valid),
        )
        for t, m in members.items()
    ]
    if not valid:
        options.append(
            st.builds(
                lambda body, t: {"type": t, "prometheus": body},
                _node((*path, "prometheus"), node["properties"]["prometheus"], valid),
                st.sampled_from(["Resource", "Buffer", "Pods", "External"]),
            )
        )
    return st.one_of(options)


def _target(path: SchemaPath, node: dict[str, Any], valid: bool) -> st.SearchStrategy[dict[str, Any]]:
    """A target whose member matches its type (the CEL rules of each target)."""
    member = {"Utilization": "averageUtilization", "AverageValue": "averageValue", "Value": "value"}
    props = node["properties"]
    options = [
        st.builds(
            lambda v, t=t: {"type": t, member[t]: v}, _node((*path, member[t]), props[member[t]], valid)
        )
        for t in props["type"]["enum"]
    ]
    return st.one_of(options)


# --------------------------------------------------------------------------------------------------
# Repair: the cross-field CEL rules, applied to a generated spec.


def repair(spec: dict[str, Any]) -> dict[str, Any]:
    spec = clone(spec)
    if "horizontal" not in spec and "vertical" not in spec:
        spec["vertical"] = {}
    hor = spec.get("horizontal")
    if hor is not None:
        if (
            _ints(hor.get("minReplicas", 1), hor["maxReplicas"])
            and hor.get("minReplicas", 1) > hor["maxReplicas"]
        ):
            hor["minReplicas"] = hor["maxReplicas"]
        if hor.get("minReplicas", 1) == 0 and not any(
            m["type"] in ("Prometheus", "Buffer") for m in hor["metrics"]
        ):
            hor["minReplicas"] = 1
        has_buffer = any(m["type"] == "Buffer" for m in hor["metrics"])
        for schedule in hor.get("schedules", []):
            if not has_buffer and "minFreeCapacity" in schedule:  # minFreeCapacity needs a Buffer metric
                del schedule["minFreeCapacity"]
                schedule.setdefault("minReplicas", 1)
            # a floor is at most maxReplicas
            if "minReplicas" in schedule and _ints(schedule["minReplicas"], hor["maxReplicas"]):
                schedule["minReplicas"] = min(schedule["minReplicas"], max(hor["maxReplicas"], 1))
        for metric in hor["metrics"]:
            _repair_resource(metric.get("resource"))
            buffer = metric.get("buffer")
            if buffer is not None:  # exactly one of capacityPerReplica / capacityQuery
                if "capacityPerReplica" in buffer:
                    buffer.pop("capacityQuery", None)
                elif "capacityQuery" not in buffer:
                    buffer["capacityPerReplica"] = 100
        pred = hor.get("predictive")
        if pred is not None:
            lookahead = _or_none(parse_duration, pred.get("lookahead", "60s"))
            history = _or_none(parse_duration, pred.get("history"))
            if lookahead is not None and history is not None and history < 2 * lookahead:
                pred["history"] = format_duration(2 * lookahead)
    ver = spec.get("vertical")
    if ver is not None:
        names = ("lowerBoundPercentile", "targetPercentile", "upperBoundPercentile")
        current = [ver.get(n, d) for n, d in zip(names, (0.5, 0.9, 0.95), strict=True)]
        if all(isinstance(v, float | int) for v in current):
            ver.update(zip(names, sorted(current), strict=True))
        for policy in ver.get("containerPolicies", []):
            lo, hi = policy.get("minAllowed", {}), policy.get("maxAllowed", {})
            for res in ("cpu", "memory"):
                low, high = _or_none(parse_quantity, lo.get(res)), _or_none(parse_quantity, hi.get(res))
                if low is not None and high is not None and high < low:
                    lo[res], hi[res] = hi[res], lo[res]
    return spec


def _or_none(parse: Callable[[Any], _T], value: Any) -> _T | None:
    """The parsed value, or None when absent or unparsable (mixed specs carry bad values on purpose)."""
    try:
        return None if value is None else parse(value)
    except ValueError:
        return None


def _ints(*values: Any) -> bool:
    return all(isinstance(v, int) for v in values)


def _repair_resource(res: dict[str, Any] | None) -> None:
    if res is None or "saturation" not in res:
        return
    target = res["target"]
    if res["name"] != "cpu" or target["type"] != "Utilization" or not target["averageUtilization"] < 1000:
        del res["saturation"]
        return
    floor = target["averageUtilization"] + 1
    if _ints(res["saturation"].get("utilization", 95)) and res["saturation"].get("utilization", 95) < floor:
        res["saturation"]["utilization"] = floor


_SPECS_VALID = _object((), SPEC_SCHEMA, True)
_SPECS_MIXED = _object((), SPEC_SCHEMA, False)


def policy_specs(*, valid: bool) -> st.SearchStrategy[dict[str, Any]]:
    if valid:
        return _SPECS_VALID.map(repair)
    return st.builds(lambda s, fix: repair(s) if fix else s, _SPECS_MIXED, st.booleans())


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def garbled_specs() -> st.SearchStrategy[dict[str, Any]]:
    """A valid spec with arbitrary JSON (any type, any size of number) at one of its nodes."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        spec = draw(policy_specs(valid=True))
        paths = [p for p, _ in _present(spec)]
        path = draw(st.sampled_from(paths))
        junk = draw(_JSON | st.sampled_from([10**400, -(10**400), float("inf"), "1e99999999999", "9" * 5000]))
        node: Any = spec
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = junk
        return spec

    return build()


def _present(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    out: list[tuple[tuple[Any, ...], Any]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        out.append(((*path, key), child))
        out.extend(_present(child, (*path, key)))
    return out


__all__ = ["garbled_specs", "nodes", "policy_specs", "repair"]
