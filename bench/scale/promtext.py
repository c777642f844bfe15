"""Prometheus text format: parse samples, subtract two scrapes, and read quantiles out of a histogram."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str, keep: Callable[[str], bool] = lambda _: True) -> Samples:
    """All samples whose metric name passes `keep`, keyed by (name, sorted labels)."""
    out: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None or not keep(m.group(1)):
            continue
        labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def delta(before: Samples, after: Samples) -> Samples:
    """after - before for counters (a series missing before counts from zero)."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def select(samples: Samples, name: str, **match: str) -> Iterable[tuple[dict[str, str], float]]:
    for (metric, labels), value in samples.items():
        if metric != name:
            continue
        as_dict = dict(labels)
        if all(as_dict.get(k) == v for k, v in match.items()):
            yield as_dict, value


def total(samples: Samples, name: str, **match: str) -> float:
    return sum(value for _, value in select(samples, name, **match))


def grouped(samples: Samples, name: str, by: tuple[str, ...], **match: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for labels, value in select(samples, name, **match):
        key = tuple(labels.get(k, "") for k in by)
        out[key] = out.get(key, 0.0) + value
    return out


def buckets(samples: Samples, histogram: str, **match: str) -> dict[float, float]:
    """Cumulative bucket counts by upper bound, summed over every other label (e.g. all outcomes)."""
    out: dict[float, float] = {}
    for labels, value in select(samples, f"{histogram}_bucket", **match):
        le = math.inf if labels["le"] == "+Inf" else float(labels["le"])
        out[le] = out.get(le, 0.0) + value
    return out


def quantile(q: float, cumulative: Mapping[float, float]) -> float:
    """Prometheus' histogram_quantile: linear inside the bucket; the last finite bound if in +Inf."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return math.nan
    rank = q * cumulative[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return bounds[-1]


def fraction_above(threshold: float, cumulative: Mapping[float, float]) -> float:
    """Share of observations above `threshold` (exact when `threshold` is a bucket bound)."""
    everything = cumulative.get(math.inf, 0.0)
    if everything <= 0 or threshold not in cumulative:
        return math.nan
    return (everything - cumulative[threshold]) / everything
