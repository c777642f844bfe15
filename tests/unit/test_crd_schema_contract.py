"""One source of truth: every default and limit the CRD declares is the parser's too.

The test walks the CRD's openAPIV3Schema and, for every node with a default, minimum, maximum, minLength,
maxLength, minItems, maxItems, enum, duration range rule or quantity cap, feeds boundary values through
``parse_policy_spec`` inside valid carrier specs (tests/unit/crd_schema.py): just inside is accepted, just
outside is refused with a SpecError naming that field, and a default gives the same parse as leaving the
field out, equal to the dataclass default. A new field with a limit is covered without writing a case.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

import pytest

from surge.api.quantity import format_duration, parse_duration
from surge.api.spec import PolicySpec, SpecError, parse_policy_spec
from tests.unit.crd_schema import (
    CARRIERS,
    DURATION_PATTERN,
    HPA_ONLY_MEMBERS,
    ITEM,
    MISSING,
    OPENAPI,
    SchemaPath,
    carriers_with,
    carriers_with_parent,
    dotted,
    get,
    nodes,
    spec_nodes,
    with_value,
)

NODES = spec_nodes()
Context = Callable[[dict[str, Any], Any], None]


def _set(spec: dict[str, Any], dotted_path: str, value: Any) -> None:
    """Set ``a.b.0.c`` in place (list indexes as numbers)."""
    parts = dotted_path.split(".")
    node: Any = spec
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    node[parts[-1]] = value


def _within(value: Any, lo: float, hi: float) -> bool:
    return isinstance(value, float | int) and lo < value <= hi


# Cross-field rules that a boundary value must be allowed to meet: what else to set for it to be valid.
CONTEXT: dict[str, Context] = {
    "spec.horizontal.minReplicas": lambda s, v: _set(s, "horizontal.maxReplicas", 10000),
    "spec.horizontal.metrics[0].resource.saturation.utilization": lambda s, v: _set(
        s, "horizontal.metrics.0.resource.target.averageUtilization", 1
    ),
    "spec.vertical.targetPercentile": lambda s, v: (
        _set(s, "vertical.lowerBoundPercentile", v if _within(v, 0, 0.5) else 0.5),
        _set(s, "vertical.upperBoundPercentile", v if _within(v, 0.95, 1) else 0.95),
    ),
    "spec.vertical.lowerBoundPercentile": lambda s, v: (
        _set(s, "vertical.targetPercentile", v if _within(v, 0.9, 1) else 0.9),
        _set(s, "vertical.upperBoundPercentile", v if _within(v, 0.95, 1) else 0.95),
    ),
    "spec.vertical.upperBoundPercentile": lambda s, v: (
        _set(s, "vertical.targetPercentile", v if _within(v, 0, 0.9) else 0.9),
        _set(s, "vertical.lowerBoundPercentile", v if _within(v, 0, 0.5) else 0.5),
    ),
    "spec.horizontal.predictive.lookahead": lambda s, v: _set(s, "horizontal.predictive.history", "24h"),
    "spec.horizontal.schedules[0].minReplicas": lambda s, v: _set(s, "horizontal.maxReplicas", 10000),
    "spec.vertical.containerPolicies[0].minAllowed.cpu": lambda s, v: _set(
        s, "vertical.containerPolicies.0.maxAllowed.cpu", "1E"
    ),
    "spec.vertical.containerPolicies[0].minAllowed.memory": lambda s, v: _set(
        s, "vertical.containerPolicies.0.maxAllowed.memory", "1E"
    ),
    "spec.vertical.containerPolicies[0].maxAllowed.cpu": lambda s, v: _set(
        s, "vertical.containerPolicies.0.minAllowed.cpu", 0
    ),
    "spec.vertical.containerPolicies[0].maxAllowed.memory": lambda s, v: _set(
        s, "vertical.containerPolicies.0.minAllowed.memory", 0
    ),
}
# Optional fields the parser fills in although the CRD declares no default, and why.
PARSER_ONLY_DEFAULTS = {
    "spec.horizontal.behavior": "absent means HPA's defaults; like HPA, the CRD defaults scaleUp/scaleDown "
    "only inside a behavior that is given",
    "spec.horizontal.predictive.history": "max(30m, 2 * lookahead) depends on another field",
}


def _variant(spec: dict[str, Any], path: SchemaPath, value: Any) -> dict[str, Any]:
    out = with_value(spec, path, value)
    context = CONTEXT.get(dotted(path))
    if context is not None and value is not MISSING:
        context(out, value)
    return out


def _verdict(spec: dict[str, Any]) -> PolicySpec | SpecError:
    try:
        return parse_policy_spec(spec)
    except SpecError as exc:
        return exc


def assert_accepted(path: SchemaPath, value: Any) -> None:
    """Some carrier holding the field accepts the value (cross-field rules may refuse it in others)."""
    first: SpecError | None = None
    for spec in carriers_with_parent(path):
        verdict = _verdict(_variant(spec, path, value))
        if isinstance(verdict, PolicySpec):
            return
        first = first or verdict
    raise AssertionError(
        f"{dotted(path)} = {value!r} is valid for the CRD but the parser refuses it: {first}"
    )


def assert_refused(path: SchemaPath, value: Any, *, field: str | None = None) -> None:
    """Every carrier that holds the field refuses the value with an error naming the field."""
    name = field or dotted(path)
    holders = carriers_with(path) or carriers_with_parent(path)
    # Carriers differ only in their metric: outside the metrics one of them speaks for all.
    for spec in holders if "metrics" in path else holders[:1]:
        verdict = _verdict(_variant(spec, path, value))
        assert isinstance(verdict, SpecError), f"{name} = {value!r} is refused by the CRD but parsed"
        assert verdict.path == name, f"{name} = {value!r}: the error names {verdict.path}: {verdict}"


def _ids(items: list[tuple[SchemaPath, Any]]) -> list[Any]:
    return [pytest.param(p, n, id=dotted(p)) for p, n in items]


def _with(key: str) -> list[Any]:
    return _ids([(p, n) for p, n in NODES if key in n])


# --------------------------------------------------------------------------------------------------


def test_carriers_are_valid_and_cover_every_field() -> None:
    for spec in CARRIERS:
        parse_policy_spec(spec)
    uncovered = [dotted(p) for p, _ in NODES if not carriers_with(p)]
    assert not uncovered, f"add these fields to a carrier in tests/unit/crd_schema.py: {uncovered}"


def test_every_field_has_a_description_for_kubectl_explain() -> None:
    missing = [
        ".".join(p)
        for p, node in nodes(OPENAPI)
        if p != ("metadata",)  # the API server allows nothing but type on metadata
        and not str(node.get("description", "")).strip()
    ]
    assert not missing


@pytest.mark.parametrize(("path", "node"), _with("default"))
def test_default_is_the_parsers_and_the_dataclasses(path: SchemaPath, node: dict[str, Any]) -> None:
    default = node["default"]
    parsed_any = False
    for spec in carriers_with_parent(path):
        with_default = _verdict(_variant(spec, path, default))
        without = _verdict(with_value(_variant(spec, path, default), path, MISSING))
        if isinstance(with_default, SpecError):
            continue  # a cross-field rule of this carrier; another one must accept it
        parsed_any = True
        assert without == with_default, f"{dotted(path)}: leaving it out is not the same as {default!r}"
        owner, attr = _dataclass_field(with_default, path)
        field = next(f for f in dataclasses.fields(owner) if f.name == attr)
        if field.default is not dataclasses.MISSING:
            assert field.default == getattr(owner, attr), f"{type(owner).__name__}.{attr} default"
        elif field.default_factory is not dataclasses.MISSING:
            assert field.default_factory() == getattr(owner, attr), f"{type(owner).__name__}.{attr} default"
    assert parsed_any, f"no carrier accepts {dotted(path)} = {default!r}"


def _dataclass_field(parsed: PolicySpec, path: SchemaPath) -> tuple[Any, str]:
    """The parsed dataclass holding the field at ``path`` and the attribute name (camelCase -> snake)."""
    owner: Any = parsed
    names = [re.sub(r"(?<!^)([A-Z])", r"_\1", p).lower() if p != ITEM else p for p in path]
    for name in names[:-1]:
        owner = owner[0] if name == ITEM else getattr(owner, name)
    return owner, names[-1]


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=dotted(p)) for p, n in NODES if "default" not in n and len(carriers_with(p)) > 0],
)
def test_no_parser_default_the_crd_does_not_declare(path: SchemaPath) -> None:
    for spec in carriers_with(path):
        verdict = _verdict(with_value(spec, path, MISSING))
        if isinstance(verdict, SpecError) or ITEM in path[-1:]:
            continue  # required (or required with its siblings), or a list item
        owner, attr = _dataclass_field(verdict, path)
        value = getattr(owner, attr)
        empty = (
            value is None
            or value == ()
            or (
                dataclasses.is_dataclass(value)
                and all(getattr(value, f.name) is None for f in dataclasses.fields(value))
            )
        )
        assert empty or dotted(path) in PARSER_ONLY_DEFAULTS, (
            f"{dotted(path)}: the parser fills in {value!r}; declare it as the CRD's default"
        )


def _number_bounds(node: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(side, just inside, just outside) for the node's minimum and maximum."""
    out = []
    integer = node.get("type") == "integer"
    if "minimum" in node:
        lo = node["minimum"]
        if integer:
            inside = lo + 1 if node.get("exclusiveMinimum") else lo
            out.append(("min", inside, inside - 1))
        elif node.get("exclusiveMinimum"):
            out.append(("min", math.nextafter(lo, math.inf), lo))
        else:
            out.append(("min", lo, math.nextafter(lo, -math.inf)))
    if "maximum" in node:
        hi = node["maximum"]
        if integer:
            inside = hi - 1 if node.get("exclusiveMaximum") else hi
            out.append(("max", inside, inside + 1))
        elif node.get("exclusiveMaximum"):
            out.append(("max", math.nextafter(hi, -math.inf), hi))
        else:
            out.append(("max", hi, math.nextafter(hi, math.inf)))
    return out


NUMBERS = [(p, n) for p, n in NODES if n.get("type") in ("integer", "number")]


@pytest.mark.parametrize(("path", "node"), _ids(NUMBERS))
def test_number_bounds(path: SchemaPath, node: dict[str, Any]) -> None:
    for _side, inside, outside in _number_bounds(node):
        assert_accepted(path, inside)
        assert_refused(path, outside)
    if "maximum" not in node:  # unbounded above, like HPA's tolerance: a huge finite value is fine
        assert_accepted(path, 10**9 if node["type"] == "integer" else 1e300)
    if node["type"] == "number":  # never an exception but SpecError, whatever a client sends
        assert_refused(path, math.inf)
        assert_refused(path, 10**400)
    assert_refused(path, "1")  # the API server refuses quoted numbers


def _long(path: SchemaPath, current: Any, length: int) -> str:
    """A valid value of exactly ``length`` characters, built from the carrier's value."""
    text = str(current)
    name = path[-1]
    if name in ("start", "end"):  # RFC 3339 with nanoseconds and an offset is the longest
        return text[:19] + "." + "0" * (length - 26) + "+00:00"
    if name == "cron":  # a minute list of zeros: '0,0,...,0 18 * * MON-FRI'
        rest = text.split(" ", 1)[1]
        pad = length - len(rest) - 1
        return ("00" + ",0" * ((pad - 2) // 2) if pad % 2 == 0 else "0" + ",0" * (pad // 2)) + " " + rest
    if name == "timeZone":
        longest = "America/Argentina/ComodRivadavia"  # the CRD's limit is the longest IANA name
        return longest if length == len(longest) else "A" * length
    if text[:1].isdigit():
        return "0" * (length - len(text)) + text  # leading zeros: quantities, durations, buffer sizes
    name = path[-1]
    if name == "apiVersion":
        return "a" * (length - 3) + "/v1"
    if name == "kind":
        return "A" * length
    if name in ("name", "container", "containerName"):
        return "a" * length
    if name.endswith(("query", "Query")):
        return text + " " * (length - len(text))
    if name == "serverAddress":
        return "http://" + "a" * (length - 7)
    raise AssertionError(f"add a long value for {dotted(path)}")


@pytest.mark.parametrize(("path", "node"), _with("maxLength"))
def test_max_length(path: SchemaPath, node: dict[str, Any]) -> None:
    limit = node["maxLength"]
    current = get(carriers_with(path)[0], path)
    assert_accepted(path, _long(path, current, limit))
    assert_refused(path, _long(path, current, limit + 1))


@pytest.mark.parametrize(("path", "node"), _with("minLength"))
def test_min_length(path: SchemaPath, node: dict[str, Any]) -> None:
    assert node["minLength"] == 1, "only non-empty strings are expected"
    assert_refused(path, "")


def _items(path: SchemaPath, current: list[Any], count: int) -> list[Any]:
    if path[-1] == "controlledResources":
        return (["cpu", "memory"] * count)[:count]
    if path[-1] == "schedules":  # unique names, windows that cannot overlap
        return [
            {"name": f"s{i}", "cron": f"{i} 18 * * *", "duration": "1m", "minReplicas": 1}
            for i in range(count)
        ]
    if path[-1] == "containerPolicies":
        return [{**current[0], "containerName": f"c{i}"} for i in range(count)]
    return [current[0]] * count


@pytest.mark.parametrize(("path", "node"), _with("maxItems"))
def test_max_items(path: SchemaPath, node: dict[str, Any]) -> None:
    current = get(carriers_with(path)[0], path)
    assert_accepted(path, _items(path, current, node["maxItems"]))
    assert_refused(path, _items(path, current, node["maxItems"] + 1))


@pytest.mark.parametrize(("path", "node"), _with("minItems"))
def test_min_items(path: SchemaPath, node: dict[str, Any]) -> None:
    current = get(carriers_with(path)[0], path)
    assert_accepted(path, _items(path, current, node["minItems"]))
    assert_refused(path, _items(path, current, node["minItems"] - 1))


ALL_ENUM_VALUES = sorted({str(v) for _, n in NODES for v in n.get("enum", [])})


@pytest.mark.parametrize(("path", "node"), _with("enum"))
def test_enum(path: SchemaPath, node: dict[str, Any]) -> None:
    list_item = path[-1] == ITEM  # an enum of list items: set the whole list to one value

    def place(value: Any) -> tuple[SchemaPath, Any]:
        return (path[:-1], [value]) if list_item else (path, value)

    for value in node["enum"]:
        assert_accepted(*place(value))
    field = dotted(path[:-1]) + "[0]" if list_item else None
    others = [v for v in ALL_ENUM_VALUES if v not in node["enum"]]
    for value in {*others, "Bogus", *(str(v).lower() for v in node["enum"])} - set(node["enum"]):
        assert_refused(*place(value), field=field)


DURATIONS = [(p, n) for p, n in NODES if n.get("pattern") == DURATION_PATTERN]
_BOUND_RE = re.compile(r"duration\(self\)\s*(>=|<=)\s*duration\('([^']+)'\)")


@pytest.mark.parametrize(("path", "node"), _ids(DURATIONS))
def test_duration_range(path: SchemaPath, node: dict[str, Any]) -> None:
    bounds = [b for rule in node.get("x-kubernetes-validations", []) for b in _BOUND_RE.findall(rule["rule"])]
    assert any(op == "<=" for op, _ in bounds), f"{dotted(path)} needs an upper bound"
    for op, text in bounds:
        assert_accepted(path, text)
        outside = parse_duration(text) + (0.001 if op == "<=" else -0.001)
        assert_refused(path, format_duration(outside))
    assert_refused(path, "99999999999999999999h")  # beyond Go's durations: refused, not an error
    assert_refused(path, "1.5s")


QUANTITIES = [
    (p, n)
    for p, n in NODES
    if n.get("x-kubernetes-int-or-string") and "pattern" not in n and p[-1] not in HPA_ONLY_MEMBERS
]


@pytest.mark.parametrize(("path", "node"), _ids(QUANTITIES))
def test_quantity_range(path: SchemaPath, node: dict[str, Any]) -> None:
    for valid in ("1E", 10**18, "1e-400", "1", ".5", "+2", "1.", "500m", "1Gi"):
        assert_accepted(path, valid)
    for invalid in (
        "1.5E",
        10**18 + 1,
        "1e400",
        "1e99999999999",
        "1e306",
        " 1",
        "1\n",
        "lots",
        1.5,
        True,
        [1],
    ):
        assert_refused(path, invalid)
