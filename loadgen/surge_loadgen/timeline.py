"""The raw per-step timeline of a run: one `Sample` per step, written as CSV (`timeline.csv`)."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """What the data plane saw at one step. Counters (`*_total`) are cumulative since the start of the run.

    t                 run (wall) seconds since the start of the run
    demand            players who want to play (the scenario's demand, rounded)
    served            players in a session
    unserved          demand - served (never negative)
    capacity          sum of the capacity (players) of the Ready pods / reachable servers
    replicas_ready    Ready pods (sim) or reachable servers (real)
    replicas_desired  the target's spec.replicas (sim) or the number of servers (real)
    cpu_request_m     the CPU request (millicores) most Ready pods have (ties: the larger); 0 if none
    rejected_total    join attempts turned away because every pod was full
    dropped_total     players who lost their session because their pod went away (they rejoin: churn)
    api_writes_total  pod annotation patches made so far (sim); 0 for the real plane
    """

    t: float
    demand: int
    served: int
    unserved: int
    capacity: int
    replicas_ready: int
    replicas_desired: int
    cpu_request_m: int
    rejected_total: int = 0
    dropped_total: int = 0
    api_writes_total: int = 0


FIELDS = tuple(f.name for f in dataclasses.fields(Sample))


def write_csv(path: Path, samples: Iterable[Sample]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        for s in samples:
            writer.writerow([f"{s.t:.3f}", *(getattr(s, name) for name in FIELDS[1:])])


def read_csv(path: Path) -> list[Sample]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [Sample(t=float(r["t"]), **{name: int(r[name]) for name in FIELDS[1:]}) for r in rows]


def dominant(values: Sequence[int]) -> int:
    """The most common value (ties: the larger); 0 for an empty sequence."""
    if not values:
        return 0
    counts: dict[int, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return max(counts, key=lambda value: (counts[value], value))
