"""Scenarios: demand traces of (seconds, players) points, piecewise linear, with a time-scale factor.

File formats (the same for built-ins and `--trace FILE`):

CSV (``.csv``)::

    # comment lines before the first point are the description; an optional header is fine
    seconds,players
    0,100
    60,100
    120,1500

YAML (``.yaml``/``.yml``)::

    name: launch-spike
    description: free text
    points:            # [seconds, players] pairs or {seconds: s, players: n} mappings
      - [0, 100]
      - [60, 100]

Seconds are scenario time: non-negative and strictly increasing. Before the first point the demand is the
first value; after the last point it is the last value; in between it is linearly interpolated. A time scale
of 0.2 plays the scenario five times faster (seconds are multiplied by 0.2; players are unchanged).
"""

from __future__ import annotations

import bisect
import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

BUILTINS = ("launch-spike", "double-spike", "diurnal")


@dataclass(frozen=True)
class Trace:
    """A piecewise-linear demand curve. `points` are (seconds, players), seconds strictly increasing."""

    name: str
    points: tuple[tuple[float, float], ...]
    description: str = ""
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError(f"trace {self.name!r}: needs at least one (seconds, players) point")
        if self.time_scale <= 0:
            raise ValueError(f"trace {self.name!r}: time scale must be > 0, got {self.time_scale}")
        previous = -1.0
        for i, (t, n) in enumerate(self.points):
            if t < 0 or n < 0:
                raise ValueError(f"trace {self.name!r}: point {i} ({t}, {n}) has a negative value")
            if t <= previous:
                raise ValueError(
                    f"trace {self.name!r}: seconds must strictly increase (point {i}: {t} <= {previous})"
                )
            previous = t

    @property
    def duration(self) -> float:
        """Seconds (already time-scaled) until the last point."""
        return self.points[-1][0]

    @property
    def peak(self) -> float:
        return max(n for _, n in self.points)

    def scaled(self, time_scale: float) -> Trace:
        """The same curve played `time_scale` times as long (0.2 = five times faster)."""
        if time_scale <= 0:
            raise ValueError(f"time scale must be > 0, got {time_scale}")
        pts = tuple((t * time_scale, n) for t, n in self.points)
        return Trace(self.name, pts, self.description, self.time_scale * time_scale)

    def with_players_scale(self, factor: float) -> Trace:
        """The same shape with every demand value multiplied by `factor` (e.g. 0.1 for a laptop-sized run)."""
        if factor <= 0:
            raise ValueError(f"players scale must be > 0, got {factor}")
        return Trace(
            self.name, tuple((t, n * factor) for t, n in self.points), self.description, self.time_scale
        )

    def demand_at(self, t: float) -> float:
        """Players demanded at time t (seconds since the start, in the trace's own, scaled, time)."""
        times = [pt[0] for pt in self.points]
        if t <= times[0]:
            return self.points[0][1]
        if t >= times[-1]:
            return self.points[-1][1]
        i = bisect.bisect_right(times, t)
        (t0, n0), (t1, n1) = self.points[i - 1], self.points[i]
        return n0 + (n1 - n0) * (t - t0) / (t1 - t0)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: expected a number, got {value!r}") from exc


def parse_csv(text: str, name: str) -> Trace:
    points: list[tuple[float, float]] = []
    description: list[str] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not cells[0]:
            continue
        if cells[0].startswith("#"):
            if not points:
                description.append(",".join(row).lstrip("#").strip())
            continue
        if len(cells) < 2:
            raise ValueError(f"{name}:{lineno}: expected 'seconds,players', got {row!r}")
        if not points and not _looks_numeric(cells[0]):
            continue  # header
        points.append(
            (_number(cells[0], f"{name}:{lineno} seconds"), _number(cells[1], f"{name}:{lineno} players"))
        )
    return Trace(name, tuple(points), " ".join(d for d in description if d))


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def parse_yaml(text: str, name: str) -> Trace:
    doc = yaml.safe_load(text)
    if isinstance(doc, list):
        doc = {"points": doc}
    if not isinstance(doc, dict) or "points" not in doc:
        raise ValueError(f"{name}: expected a mapping with 'points' (or a list of points)")
    raw_points = doc["points"]
    if not isinstance(raw_points, list):
        raise ValueError(f"{name}: 'points' must be a list")
    points: list[tuple[float, float]] = []
    for i, item in enumerate(raw_points):
        where = f"{name}: points[{i}]"
        if isinstance(item, dict):
            if set(item) != {"seconds", "players"}:
                raise ValueError(f"{where}: expected keys 'seconds' and 'players', got {sorted(item)}")
            points.append((_number(item["seconds"], where), _number(item["players"], where)))
        elif isinstance(item, list | tuple) and len(item) == 2:
            points.append((_number(item[0], where), _number(item[1], where)))
        else:
            raise ValueError(f"{where}: expected [seconds, players] or {{seconds, players}}, got {item!r}")
    return Trace(str(doc.get("name", name)), tuple(points), str(doc.get("description", "")))


def parse(text: str, name: str, fmt: str) -> Trace:
    """Parses trace text; fmt is 'csv' or 'yaml'."""
    if fmt == "csv":
        return parse_csv(text, name)
    if fmt in ("yaml", "yml"):
        return parse_yaml(text, name)
    raise ValueError(f"unknown trace format {fmt!r} (csv or yaml)")


def load_file(path: str | Path) -> Trace:
    """A trace from any CSV or YAML file (format by extension; anything else is tried as YAML)."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    return parse(path.read_text(), path.stem, "csv" if suffix == "csv" else "yaml")


def builtin(name: str) -> Trace:
    """One of the scenarios shipped inside the package (see BUILTINS)."""
    if name not in BUILTINS:
        raise ValueError(
            f"unknown scenario {name!r}; built-ins: {', '.join(BUILTINS)} (or pass --trace FILE)"
        )
    folder = resources.files("surge_loadgen") / "scenarios"
    for fmt in ("yaml", "csv"):
        res = folder / f"{name}.{fmt}"
        if res.is_file():
            trace = parse(res.read_text(), name, fmt)
            return Trace(name, trace.points, trace.description, trace.time_scale)
    raise FileNotFoundError(f"built-in scenario {name!r} is missing from the package data")
