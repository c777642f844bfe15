"""The oracle: the fewest replica-seconds that serve a demand trace with no unserved player.

An autoscaler that knew the future would have exactly ceil(demand / capacity per pod) pods Ready at every
moment, starting each one a pod-start delay early. Replica-seconds count Ready pods (docs/metrics.md), so
the start delay moves pods earlier but costs nothing here; what the oracle cannot beat is the pod size:
capacity per pod comes from the fleet's CPU request. Each contender's replica-seconds divided by this
number is its distance to the physical limit (1.0 = no better is possible at zero unserved).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from surge_loadgen.timeline import Sample

__all__ = ["oracle_replica_seconds"]


def oracle_replica_seconds(samples: Sequence[Sample], capacity_per_pod: int, end: float) -> float:
    """Sum of ceil(demand / capacity) over the samples, each held until the next one (the last until `end`),
    the same integration as the summary's replica-seconds."""
    if capacity_per_pod <= 0:
        raise ValueError(f"capacity per pod must be > 0 players, got {capacity_per_pod}")
    total = 0.0
    for i, sample in enumerate(samples):
        until = samples[i + 1].t if i + 1 < len(samples) else max(end, sample.t)
        total += math.ceil(max(sample.demand, 0) / capacity_per_pod) * (until - sample.t)
    return total
