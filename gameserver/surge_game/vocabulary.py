"""The one vocabulary of the game data plane: metric names, the capacity formula, the simulated cost model.

Everything that says "how many players fit in a pod" or "what is this metric called" is defined here and
only here. The game server (`surge_game.server`), the load generator's simulated data plane
(`surge_loadgen.sim`), the docs and the sample AutoScalePolicies all use these names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

# --- metric names (Prometheus) --------------------------------------------------------------------
PLAYERS_ONLINE: Final = "surge_game_players_online"
"""Gauge: players currently in a session on this pod."""
CAPACITY_PLAYERS: Final = "surge_game_capacity_players"
"""Gauge: most players this pod accepts, `capacity_players(cpu request, players per core)`."""
JOIN_ACCEPTED_TOTAL: Final = "surge_game_join_accepted_total"
"""Counter: join requests this pod accepted."""
JOIN_REJECTED_TOTAL: Final = "surge_game_join_rejected_total"
"""Counter: join requests turned away because the pod was full."""
TICK_SECONDS: Final = "surge_game_tick_seconds"
"""Histogram: wall time of one server tick (simulated from the load in the sim data plane)."""

# Load-generator-side series (demand is not something a game server can know).
DEMAND_PLAYERS: Final = "surge_loadgen_demand_players"
"""Gauge: players who want to play right now (the scenario's demand)."""
UNSERVED_PLAYERS: Final = "surge_loadgen_unserved_players"
"""Gauge: demand minus players in a session (turned away or waiting)."""

LABEL_POD: Final = "pod"
LABEL_NAMESPACE: Final = "namespace"

TICK_BUCKETS: Final[tuple[float, ...]] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)

# --- capacity -------------------------------------------------------------------------------------
DEFAULT_PLAYERS_PER_CORE: Final = 200
"""Players one full CPU core serves at the default tick rate: a 500m pod holds 100 players."""

_CPU_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(n|u|m|k|M|G)?$")
_CPU_SUFFIX: Final = {None: 1000.0, "n": 1e-6, "u": 1e-3, "m": 1.0, "k": 1e6, "M": 1e9, "G": 1e12}


def parse_cpu_millis(quantity: str) -> float:
    """A Kubernetes CPU quantity ("500m", "2", "0.25", "1500000n") in millicores; ValueError if malformed."""
    text = str(quantity).strip()
    match = _CPU_RE.match(text)
    if not match:
        raise ValueError(f"not a CPU quantity: {quantity!r} (expected e.g. '500m' or '2')")
    return float(match.group(1)) * _CPU_SUFFIX[match.group(2)]


def format_cpu_millis(millis: float) -> str:
    """Millicores as a quantity string the API accepts ("250m"); never below 1m."""
    return f"{max(1, round(millis))}m"


def capacity_players(cpu_request_millis: float, players_per_core: float = DEFAULT_PLAYERS_PER_CORE) -> int:
    """Players one pod accepts: floor(cpu request in cores * players per core), at least 0.

    The single capacity formula of the project: the game server enforces it, the sim data plane applies it to
    every pod's current CPU request, so an in-place resize to a bigger request raises the pod's capacity.
    """
    if cpu_request_millis < 0 or players_per_core < 0:
        raise ValueError("cpu request and players per core must be >= 0")
    # A tiny epsilon so 0.7 cores * 200 = 139.99999 still counts as 140.
    return max(0, math.floor(cpu_request_millis / 1000.0 * players_per_core + 1e-9))


# --- simulated resource cost (sim data plane) -----------------------------------------------------
@dataclass(frozen=True)
class CostModel:
    """CPU and memory one pod uses as a function of its players (what KWOK's usage annotations are set to).

    cpu = base_cpu_millis + players * cpu_per_player_millis, where by default one player costs
    1000 / players_per_core millicores: a pod exactly at capacity uses its full CPU request (plus the idle
    base), so "CPU utilization of requests" and "players / capacity" tell the same story.
    """

    players_per_core: float = DEFAULT_PLAYERS_PER_CORE
    base_cpu_millis: float = 10.0
    base_memory_mib: float = 48.0
    memory_per_player_mib: float = 0.5

    @property
    def cpu_per_player_millis(self) -> float:
        return 1000.0 / self.players_per_core if self.players_per_core > 0 else 0.0

    def cpu_millis(self, players: int) -> float:
        return self.base_cpu_millis + players * self.cpu_per_player_millis

    def memory_mib(self, players: int) -> float:
        return self.base_memory_mib + players * self.memory_per_player_mib

    def capacity(self, cpu_request_millis: float) -> int:
        return capacity_players(cpu_request_millis, self.players_per_core)

    def tick_seconds(self, players: int, cpu_request_millis: float) -> float:
        """Simulated tick time: 2 ms idle, growing with CPU pressure, steeply past the request."""
        if cpu_request_millis <= 0:
            return TICK_BUCKETS[-1]
        pressure = self.cpu_millis(players) / cpu_request_millis
        return 0.002 + 0.008 * pressure + (0.04 * (pressure - 1.0) if pressure > 1.0 else 0.0)
