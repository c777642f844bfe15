"""The pure parts of the simulated data plane: player sessions across pods, and usage-patch batching.

No I/O and no clock here: the sim plane (`surge_loadgen.sim`) feeds in what it read from the API and the time.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StepResult:
    served: int
    unserved: int
    joined: dict[str, int]  # pod -> joins accepted this step
    rejected: int  # join attempts turned away this step (every unserved player retries once per step)
    dropped: int  # players whose pod went away this step


@dataclass
class Sessions:
    """Players stick to their pod; new joins go to the least-loaded pod (players / capacity) with free slots.

    Per step: players of pods that are gone are dropped (they rejoin if demand still wants them: churn); if
    demand fell, players leave every pod in proportion to its population; if demand rose, the missing players
    join one by one on the least-loaded pod with a free slot. A pod whose capacity shrank below its players
    keeps them (sessions are never cut) but takes no new joins.
    """

    players: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.players.values())

    def step(self, capacities: Mapping[str, int], demand: int) -> StepResult:
        if demand < 0:
            raise ValueError("demand must be >= 0")
        dropped = 0
        for pod in [p for p in self.players if p not in capacities]:
            dropped += self.players.pop(pod)
        for pod in capacities:
            self.players.setdefault(pod, 0)

        surplus = self.total - demand
        if surplus > 0:
            self._leave(surplus)
        joined = self._join(capacities, max(0, demand - self.total))
        served = self.total
        unserved = demand - served
        return StepResult(served=served, unserved=unserved, joined=joined, rejected=unserved, dropped=dropped)

    def _leave(self, count: int) -> None:
        """Removes `count` players, proportionally to each pod's population (largest remainder, then name)."""
        total = self.total
        shares = {pod: n * count / total for pod, n in self.players.items()}
        removed = {pod: int(share) for pod, share in shares.items()}
        rest = count - sum(removed.values())
        by_fraction = sorted(self.players, key=lambda pod: (-(shares[pod] - removed[pod]), pod))
        for pod in by_fraction[:rest]:
            removed[pod] += 1
        for pod, n in removed.items():
            self.players[pod] -= min(n, self.players[pod])

    def _join(self, capacities: Mapping[str, int], count: int) -> dict[str, int]:
        joined: dict[str, int] = {}
        heap = [
            (self.players[pod] / cap, pod)
            for pod, cap in capacities.items()
            if cap > 0 and self.players[pod] < cap
        ]
        heapq.heapify(heap)
        while count > 0 and heap:
            _, pod = heapq.heappop(heap)
            self.players[pod] += 1
            joined[pod] = joined.get(pod, 0) + 1
            count -= 1
            if self.players[pod] < capacities[pod]:
                heapq.heappush(heap, (self.players[pod] / capacities[pod], pod))
        return joined


@dataclass(frozen=True)
class Usage:
    cpu_m: int
    memory_mi: int

    def annotations(self) -> dict[str, str]:
        return {USAGE_CPU: f"{self.cpu_m}m", USAGE_MEMORY: f"{self.memory_mi}Mi"}


USAGE_CPU = "kwok.x-k8s.io/usage-cpu"
USAGE_MEMORY = "kwok.x-k8s.io/usage-memory"


@dataclass
class PatchBatcher:
    """Decides which pods' usage annotations to write now: each write is an API call and a watch event.

    A pod is patched when this run never patched it, or when at least `min_interval` seconds passed since its
    last patch AND its usage moved meaningfully (CPU by >= max(cpu_abs_m, rel * old), memory by >=
    max(mem_abs_mi, rel * old)). So each pod gets at most one write per `min_interval`, and none while its
    load is steady.
    """

    min_interval: float = 5.0
    rel: float = 0.05
    cpu_abs_m: int = 10
    mem_abs_mi: int = 4
    last: dict[str, tuple[Usage, float]] = field(default_factory=dict)

    def due(self, now: float, wanted: Mapping[str, Usage]) -> dict[str, Usage]:
        for pod in [p for p in self.last if p not in wanted]:
            del self.last[pod]
        out: dict[str, Usage] = {}
        for pod, usage in wanted.items():
            previous = self.last.get(pod)
            if previous is None:
                out[pod] = usage
                continue
            old, at = previous
            if now - at < self.min_interval:
                continue
            if abs(usage.cpu_m - old.cpu_m) >= max(self.cpu_abs_m, self.rel * old.cpu_m) or abs(
                usage.memory_mi - old.memory_mi
            ) >= max(self.mem_abs_mi, self.rel * old.memory_mi):
                out[pod] = usage
        return out

    def done(self, pod: str, usage: Usage, now: float) -> None:
        self.last[pod] = (usage, now)
