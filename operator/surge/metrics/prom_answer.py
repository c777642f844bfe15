"""An instant query's `data.result`, checked shape by shape and reduced to numbers a person can trust."""

from __future__ import annotations

import math
from typing import Any

from surge.metrics.types import MetricUnavailable, Sample

REASON = "FailedGetPrometheusMetric"
# Beyond int64, where no Kubernetes quantity or replica arithmetic makes sense (1e306 overflowed downstream).
MAX_MAGNITUDE = float(2**63)


def clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _fail(query: str, what: str) -> MetricUnavailable:
    return MetricUnavailable(REASON, f"{what}: {clip(query)}")


def _number(raw: Any, query: str) -> float:
    """Prometheus sends sample values as strings ("42", "NaN", "+Inf"); plain JSON numbers are accepted."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _fail(query, f"query returned a {type(raw).__name__} where a number was expected")
    try:
        return float(raw)
    except (ValueError, OverflowError):
        raise _fail(query, f"query returned {clip(str(raw), 40)!r} where a number was expected") from None


def _point(point: Any, query: str) -> tuple[float, float]:
    """[timestamp, "value"] -> (timestamp, value); the value may be NaN or infinite, the caller decides."""
    if not isinstance(point, list) or len(point) != 2:
        raise _fail(query, "query returned a malformed sample (expected [timestamp, value])")
    timestamp = _number(point[0], query)
    if not math.isfinite(timestamp):
        raise _fail(query, "query returned a sample without a valid timestamp")
    value = _number(point[1], query)
    if math.isfinite(value) and abs(value) >= MAX_MAGNITUDE:
        raise _fail(query, f"query returned {value:g}, beyond the largest usable value ({MAX_MAGNITUDE:.3g})")
    return timestamp, value


def _text(value: float) -> str:
    """NaN and infinities spelled as Prometheus spells them."""
    if math.isnan(value):
        return "NaN"
    return f"{value:g}" if math.isfinite(value) else ("+Inf" if value > 0 else "-Inf")


def _series_point(series: Any, query: str) -> tuple[dict[str, Any], Any]:
    if not isinstance(series, dict):
        raise _fail(query, "query returned a malformed series")
    if "values" in series and "value" not in series:
        raise _fail(query, "query returned a range vector; use an instant vector (drop the [range])")
    labels = series.get("metric", {})
    if not isinstance(labels, dict):
        raise _fail(query, "query returned a series with malformed labels")
    return labels, series.get("value")


def reduce_result(query: str, result: Any) -> Sample:
    """One number from a scalar or a one-series vector; empty, multi-series, NaN or inf results are errors."""
    if not isinstance(result, list):
        raise _fail(query, f"unexpected result shape {type(result).__name__}")
    if not result:
        raise _fail(query, "query returned no data (no series match, or they are stale)")
    if not isinstance(result[0], dict):
        point = result  # scalar (or string) result: [timestamp, "value"]
    elif len(result) == 1:
        _, point = _series_point(result[0], query)
    else:
        raise _fail(query, f"query returned {len(result)} series, expected one number; wrap it in sum(...)")
    timestamp, value = _point(point, query)
    if not math.isfinite(value):
        raise _fail(query, f"query returned {_text(value)}")
    return Sample(value=value, timestamp=timestamp)


def reduce_by_pod(query: str, result: Any) -> dict[str, Sample]:
    """One number per pod from a vector whose series carry a `pod` label; NaN/inf pods count as missing."""
    if not isinstance(result, list):
        raise _fail(query, f"unexpected result shape {type(result).__name__}")
    if not result:
        raise _fail(query, "query returned no data (no series match, or they are stale)")
    if not isinstance(result[0], dict):
        raise _fail(query, "query returned a scalar; a Pods metric needs one series per pod, labelled pod")
    samples: dict[str, Sample] = {}
    seen: set[str] = set()
    for series in result:
        labels, point = _series_point(series, query)
        pod = labels.get("pod")
        if not isinstance(pod, str) or not pod:
            raise _fail(
                query,
                "query returned a series without a `pod` label; a Pods metric needs one series per pod, "
                "e.g. sum by (pod) (...)",
            )
        if pod in seen:
            raise _fail(
                query, f"query returned more than one series for pod {clip(pod, 63)!r}; aggregate by (pod)"
            )
        seen.add(pod)
        timestamp, value = _point(point, query)
        if math.isfinite(value):
            samples[pod] = Sample(value=value, timestamp=timestamp)
    if not samples:
        raise _fail(query, f"query returned NaN or an infinite value for every one of {len(seen)} pods")
    return samples
