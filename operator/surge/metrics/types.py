"""Values and failures of metric sources; every sample carries the time it was taken."""

from __future__ import annotations

from dataclasses import dataclass


class MetricUnavailable(Exception):  # noqa: N818 - reads better at call sites than ...Error
    """A metric could not be read. `reason` is a CamelCase word for conditions and Events."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Sample:
    value: float
    timestamp: float  # unix seconds at which the value holds
