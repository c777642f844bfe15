"""Values and failures of metric sources; every sample carries the time it was taken."""

from __future__ import annotations

from dataclasses import dataclass

from surge.api.errors import ReasonedError


class MetricUnavailable(ReasonedError):  # noqa: N818 - reads better at call sites than ...Error
    """A metric could not be read."""


@dataclass(frozen=True, slots=True)
class Sample:
    value: float
    timestamp: float  # unix seconds at which the value holds
