"""Surge's demo game server: an asyncio tick loop with a line protocol and Prometheus metrics.

Capacity (players per process) is derived from the CPU request, so vertical scaling raises it. The metric
names, the capacity formula and the simulated cost model live in `surge_game.vocabulary`, shared with the
load generator (`surge_loadgen`).
"""

__version__ = "0.1.0"
