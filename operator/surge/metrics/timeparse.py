"""Kubernetes time formats: RFC 3339 timestamps and Go duration strings."""

from __future__ import annotations

import re
from datetime import datetime

_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def rfc3339_to_unix(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def go_duration_seconds(text: str) -> float:
    """'1m0.5s' -> 60.5; metrics-server reports its window this way."""
    return sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _GO_DURATION.findall(text))
