"""Kubernetes label selectors in their string form (as /scale publishes them), matched locally."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

Labels = Mapping[str, str]
Requirement = Callable[[Labels], bool]

_SET = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


class SelectorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector: every requirement must hold.

    ``equalities`` lists the ``key=value`` pairs every match must carry (from ``=``, ``==`` and one-value
    ``in``), so an index of labels can narrow the candidates before the requirements are checked.
    """

    text: str
    requirements: tuple[Requirement, ...]
    equalities: tuple[tuple[str, str], ...]

    def matches(self, labels: Labels) -> bool:
        return all(req(labels) for req in self.requirements)

    def __call__(self, labels: Labels) -> bool:
        return self.matches(labels)


def _split(selector: str) -> list[str]:
    """Splits on commas that are not inside a value set: 'a in (x,y),b=c' -> ['a in (x,y)', 'b=c']."""
    parts, depth, current = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> tuple[Requirement, tuple[str, str] | None]:
    """The predicate of one requirement, and the label it pins down exactly (if it does)."""
    if m := _SET.match(text):
        key, op, raw = m.group(1), m.group(2), m.group(3)
        values = frozenset(v.strip() for v in raw.split(",") if v.strip())
        if op == "in":
            pinned = (key, next(iter(values))) if len(values) == 1 else None
            return (lambda labels: labels.get(key) in values), pinned
        return (lambda labels: labels.get(key) not in values), None
    if m := _EQ.match(text):
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op == "!=":
            return (lambda labels: labels.get(key) != value), None
        return (lambda labels: labels.get(key) == value), (key, value)
    if m := _EXISTS.match(text):
        negate, key = m.group(1) == "!", m.group(2)
        return ((lambda labels: key not in labels) if negate else (lambda labels: key in labels)), None
    raise SelectorError(f"cannot parse label selector requirement {text.strip()!r}")


@lru_cache(maxsize=4096)
def parse_selector(selector: str) -> Selector:
    """Parses once per distinct selector (every tick of a policy asks again with the same string).

    An empty selector matches everything (as in Kubernetes).
    """
    parsed = [_requirement(part) for part in _split(selector)]
    return Selector(
        text=selector,
        requirements=tuple(req for req, _ in parsed),
        equalities=tuple(pin for _, pin in parsed if pin is not None),
    )
