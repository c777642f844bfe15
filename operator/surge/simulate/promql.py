"""A tiny Prometheus for the simulator: scraped samples, staleness, and the PromQL subset policies use.

Why not a real Prometheus: the simulator runs offline in seconds. Why not just "the number the policy
wants": a Buffer or Prometheus metric's answer depends on scrape timing and on `rate()`'s window and
extrapolation, which is a large part of its lag; so the scrapes and `rate()` follow Prometheus 2.x.

Supported: number literals, `metric{label op "value", ...}` (ops = != =~ !~), `[5s]`-style ranges,
`rate` / `increase` / `avg|min|max|sum|count_over_time`, `sum|avg|min|max|count [by|without (l, ...)]`,
parentheses, unary minus and `+ - * /` between scalars and vectors (vector-vector matched on equal labels).
Anything else is a PromQLError naming what is missing. `namespace` matchers always match: the simulated
fleet is the only workload, whatever namespace a policy's queries name.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["LOOKBACK", "TSDB", "PromQLError", "Query", "Vector", "evaluate"]

LOOKBACK = 300.0  # Prometheus' default lookback delta for instant selectors
Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]
Value = float | Vector


class PromQLError(ValueError):
    """The query uses PromQL the simulator does not implement, or is malformed."""


@dataclass
class TSDB:
    """Samples per series as a Prometheus scraping one target would store them (stale = NaN marker)."""

    retention: float = 900.0
    series: dict[tuple[str, Labels], list[tuple[float, float]]] = field(default_factory=dict)
    _last_scrape: set[tuple[str, Labels]] = field(default_factory=set)

    def scrape(self, t: float, exported: Mapping[tuple[str, Labels], float]) -> None:
        """One scrape at `t`: every exported series gets a sample; vanished ones a staleness marker."""
        for key, value in exported.items():
            self.series.setdefault(key, []).append((t, float(value)))
        for key in self._last_scrape - exported.keys():
            self.series[key].append((t, math.nan))
        self._last_scrape = set(exported)
        horizon = t - self.retention
        for key in list(self.series):
            points = self.series[key]
            if points[-1][0] < horizon:
                del self.series[key]
            elif points[0][0] < horizon:
                self.series[key] = [p for p in points if p[0] >= horizon]

    def select(
        self, name: str, match: Callable[[Labels], bool]
    ) -> list[tuple[Labels, list[tuple[float, float]]]]:
        return [(labels, pts) for (n, labels), pts in self.series.items() if n == name and match(labels)]


# --- parsing ----------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<dur>\[\s*\d+(?:\.\d+)?(?:ms|s|m|h)\s*\])"
    r"|(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')|(?P<op>=~|!~|!=|[-+*/(){},=])"
    r"|(?P<id>[a-zA-Z_:][a-zA-Z0-9_:]*))"
)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_AGGS = ("sum", "avg", "min", "max", "count")
_RANGE_FUNCS = (
    "rate",
    "increase",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise PromQLError(f"cannot parse PromQL near {text[pos : pos + 20]!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


Node = Callable[["_Env"], Value]


@dataclass(frozen=True)
class _Env:
    db: TSDB
    t: float


@dataclass
class Query:
    """A parsed query; call `evaluate(db, t)`."""

    text: str
    root: Node

    def evaluate(self, db: TSDB, t: float) -> Value:
        return self.root(_Env(db, t))


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise PromQLError(f"expected {value or 'more'} in PromQL, got {tok[1] if tok else 'the end'}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise PromQLError(f"unexpected {self.peek()[1]!r} in PromQL")  # type: ignore[index]
        return node

    def expr(self) -> Node:
        node = self.term()
        while (tok := self.peek()) is not None and tok[1] in "+-" and tok[0] == "op":
            self.take()
            node = _binary(tok[1], node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while (tok := self.peek()) is not None and tok[1] in "*/" and tok[0] == "op":
            self.take()
            node = _binary(tok[1], node, self.unary())
        return node

    def unary(self) -> Node:
        tok = self.peek()
        if tok == ("op", "-"):
            self.take()
            inner = self.unary()
            return _binary("*", lambda env: -1.0, inner)
        if tok == ("op", "+"):
            self.take()
        return self.primary()

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "num":
            number = float(value)
            return lambda env: number
        if value == "(":
            node = self.expr()
            self.take(")")
            return node
        if kind != "id":
            raise PromQLError(f"unexpected {value!r} in PromQL")
        if value in _AGGS:
            return self.aggregation(value)
        if value in _RANGE_FUNCS:
            self.take("(")
            name, match = self.selector(self.take()[1])
            window = self.duration()
            self.take(")")
            return _range_function(value, name, match, window)
        if (nxt := self.peek()) is not None and nxt[1] == "(":
            raise PromQLError(f"PromQL function {value}() is not supported by surge simulate")
        name, match = self.selector(value)
        if (nxt := self.peek()) is not None and nxt[0] == "dur":
            raise PromQLError("a range vector must be inside a function such as rate(...)")
        return _instant(name, match)

    def aggregation(self, op: str) -> Node:
        grouping: tuple[str, tuple[str, ...]] | None = None
        if (tok := self.peek()) is not None and tok[1] in ("by", "without"):
            grouping = (self.take()[1], self.label_list())
        self.take("(")
        inner = self.expr()
        self.take(")")
        if grouping is None and (tok := self.peek()) is not None and tok[1] in ("by", "without"):
            grouping = (self.take()[1], self.label_list())
        return _aggregate(op, inner, grouping)

    def label_list(self) -> tuple[str, ...]:
        self.take("(")
        names: list[str] = []
        while (tok := self.peek()) is not None and tok[1] != ")":
            names.append(self.take()[1])
            if (tok := self.peek()) is not None and tok[1] == ",":
                self.take()
        self.take(")")
        return tuple(names)

    def selector(self, name: str) -> tuple[str, Callable[[Labels], bool]]:
        matchers: list[Callable[[Labels], bool]] = []
        if (tok := self.peek()) is not None and tok[1] == "{":
            self.take()
            while (tok := self.peek()) is not None and tok[1] != "}":
                label = self.take()[1]
                op = self.take()[1]
                kind, raw = self.take()
                if kind != "str" or op not in ("=", "!=", "=~", "!~"):
                    raise PromQLError(f"malformed label matcher for {label!r} in PromQL")
                if label != "namespace":  # the simulated fleet is the only workload (module docstring)
                    matchers.append(_matcher(label, op, raw[1:-1]))
                if (tok := self.peek()) is not None and tok[1] == ",":
                    self.take()
            self.take("}")
        return name, lambda labels: all(m(labels) for m in matchers)

    def duration(self) -> float:
        kind, raw = self.take()
        if kind != "dur":
            raise PromQLError(f"expected a range such as [15s], got {raw!r}")
        m = re.fullmatch(r"\[\s*(\d+(?:\.\d+)?)(ms|s|m|h)\s*\]", raw)
        assert m is not None
        return float(m.group(1)) * _UNITS[m.group(2)]


def _matcher(label: str, op: str, value: str) -> Callable[[Labels], bool]:
    def get(labels: Labels) -> str:
        return next((v for k, v in labels if k == label), "")

    if op == "=":
        return lambda labels: get(labels) == value
    if op == "!=":
        return lambda labels: get(labels) != value
    pattern = re.compile(value)
    if op == "=~":
        return lambda labels: pattern.fullmatch(get(labels)) is not None
    return lambda labels: pattern.fullmatch(get(labels)) is None


def _instant(name: str, match: Callable[[Labels], bool]) -> Node:
    def run(env: _Env) -> Value:
        out: Vector = {}
        for labels, points in env.db.select(name, match):
            latest = next((p for p in reversed(points) if p[0] <= env.t), None)
            if latest is None or env.t - latest[0] > LOOKBACK or math.isnan(latest[1]):
                continue  # absent, too old, or marked stale (the pod's series vanished)
            out[labels] = latest[1]
        return out

    return run


def extrapolated_rate(
    points: list[tuple[float, float]], start: float, end: float, *, is_rate: bool
) -> float | None:
    """Prometheus 2.x extrapolatedRate for a counter over [start, end]; None with fewer than 2 samples."""
    if len(points) < 2:
        return None
    first_t, first_v = points[0]
    last_t, last_v = points[-1]
    result = last_v - first_v
    for (_, a), (_, b) in itertools.pairwise(points):
        if b < a:  # counter reset
            result += a
    sampled = last_t - first_t
    if sampled <= 0:
        return None
    to_start, to_end = first_t - start, end - last_t
    average = sampled / (len(points) - 1)
    if result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    result *= interval / sampled
    return result / (end - start) if is_rate else result


def _range_function(func: str, name: str, match: Callable[[Labels], bool], window: float) -> Node:
    def run(env: _Env) -> Value:
        out: Vector = {}
        start = env.t - window
        for labels, points in env.db.select(name, match):
            pts = [p for p in points if start <= p[0] <= env.t and not math.isnan(p[1])]
            value: float | None
            if func in ("rate", "increase"):
                value = extrapolated_rate(pts, start, env.t, is_rate=func == "rate")
            elif not pts:
                value = None
            else:
                values = [v for _, v in pts]
                reducers: dict[str, Callable[[list[float]], float]] = {
                    "avg_over_time": lambda vs: sum(vs) / len(vs),
                    "min_over_time": min,
                    "max_over_time": max,
                    "sum_over_time": sum,
                    "count_over_time": lambda vs: float(len(vs)),
                }
                value = reducers[func](values)
            if value is not None:
                out[frozenset(kv for kv in labels if kv[0] != "__name__")] = value
        return out

    return run


def _aggregate(op: str, inner: Node, grouping: tuple[str, tuple[str, ...]] | None) -> Node:
    def key(labels: Labels) -> Labels:
        if grouping is None:
            return frozenset()
        mode, names = grouping
        if mode == "by":
            return frozenset(kv for kv in labels if kv[0] in names)
        return frozenset(kv for kv in labels if kv[0] not in names and kv[0] != "__name__")

    def run(env: _Env) -> Value:
        value = inner(env)
        if not isinstance(value, dict):
            raise PromQLError(f"{op}() needs a vector, got a number")
        groups: dict[Labels, list[float]] = {}
        for labels, v in value.items():
            groups.setdefault(key(labels), []).append(v)
        reduce: dict[str, Callable[[list[float]], float]] = {
            "sum": sum,
            "avg": lambda vs: sum(vs) / len(vs),
            "min": min,
            "max": max,
            "count": lambda vs: float(len(vs)),
        }
        return {k: reduce[op](vs) for k, vs in groups.items()}

    return run


def _apply(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        return math.copysign(math.inf, a) if a != 0 else math.nan
    return a / b


def _binary(op: str, left: Node, right: Node) -> Node:
    def run(env: _Env) -> Value:
        a, b = left(env), right(env)
        if not isinstance(a, dict) and not isinstance(b, dict):
            return _apply(op, a, b)
        if not isinstance(a, dict):
            assert isinstance(b, dict)
            return {k: _apply(op, a, v) for k, v in b.items()}
        if not isinstance(b, dict):
            return {k: _apply(op, v, b) for k, v in a.items()}
        return {k: _apply(op, v, b[k]) for k, v in a.items() if k in b}  # one-to-one on equal labels

    return run


def parse(text: str) -> Query:
    """Parses `text` once; PromQLError names the unsupported or malformed part."""
    return Query(text, _Parser(text).parse())


def evaluate(text: str, db: TSDB, t: float) -> Value:
    return parse(text).evaluate(db, t)
