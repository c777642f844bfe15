"""Surge decision engine: PURE (no I/O, no asyncio, no kopf, no clients, no wall clock).

Every function takes ``now`` (seconds) and explicit state, and returns new state. Entry point:
``plan(spec, observation, state, now) -> Decision``.
"""

from surge.decision.model import (
    BufferReading,
    ContainerResources,
    MetricError,
    Observation,
    OOMEvent,
    PodInfo,
    PodUsage,
    Reading,
    ScalarReading,
)
from surge.decision.plan import ConditionUpdate, Decision, PlanState, plan

__all__ = [
    "BufferReading",
    "ConditionUpdate",
    "ContainerResources",
    "Decision",
    "MetricError",
    "OOMEvent",
    "Observation",
    "PlanState",
    "PodInfo",
    "PodUsage",
    "Reading",
    "ScalarReading",
    "plan",
]
