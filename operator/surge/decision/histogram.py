"""VPA's decaying exponential histogram (recommender/util/histogram.go, decaying_histogram.go).

Buckets grow geometrically (bucket ``i`` starts at ``first * (ratio**i - 1) / (ratio - 1)``), so the
relative resolution is constant (5% by default). Each sample's weight is multiplied by
``2 ** ((t - reference) / half_life)``: newer samples count more, i.e. older ones decay with the
half-life. Values are immutable: every operation returns a new histogram.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CPU_HISTOGRAM", "MEMORY_HISTOGRAM", "DecayingHistogram", "HistogramOptions"]

EPSILON = 1e-4  # VPA: weights below this are treated as zero
MAX_DECAY_EXPONENT = 100  # renormalise before 2**exponent overflows a float's comfort zone


@dataclass(frozen=True, slots=True)
class HistogramOptions:
    first_bucket_size: float
    max_value: float
    ratio: float = 1.05

    @property
    def num_buckets(self) -> int:
        # The smallest n with max_value <= bucket_start(n), plus one open-ended last bucket.
        r = self.ratio
        return math.ceil(math.log(self.max_value * (r - 1) / self.first_bucket_size + 1, r)) + 1

    def bucket_start(self, bucket: int) -> float:
        return self.first_bucket_size * (self.ratio**bucket - 1) / (self.ratio - 1)

    def find_bucket(self, value: float) -> int:
        if value < self.first_bucket_size:
            return 0
        bucket = math.floor(math.log(value * (self.ratio - 1) / self.first_bucket_size + 1, self.ratio))
        return min(bucket, self.num_buckets - 1)


# VPA defaults: CPU in cores from 10m up to 1000 cores, memory in bytes from 10MB up to 1TB.
CPU_HISTOGRAM = HistogramOptions(first_bucket_size=0.01, max_value=1000.0)
MEMORY_HISTOGRAM = HistogramOptions(first_bucket_size=1e7, max_value=1e12)


@dataclass(frozen=True, slots=True)
class DecayingHistogram:
    options: HistogramOptions
    half_life: float
    reference_time: float | None = None  # set (rounded to a half-life multiple) by the first sample
    weights: Mapping[int, float] = field(default_factory=dict)  # sparse bucket -> weight

    @property
    def total_weight(self) -> float:
        # fsum is exact, so the total (and every percentile) does not depend on the order the buckets
        # were first filled in: a histogram restored from a checkpoint decides exactly like the original.
        return math.fsum(self.weights.values())

    def is_empty(self) -> bool:
        return self.total_weight < EPSILON

    def add_samples(self, samples: Iterable[tuple[float, float, float]]) -> DecayingHistogram:
        """Add (value, weight, time) samples; negative weights subtract (VPA's SubtractSample)."""
        weights = dict(self.weights)
        ref = self.reference_time
        for value, weight, time in samples:
            if ref is None:
                ref = self._round_to_half_life(time)
            elif time > ref + self.half_life * MAX_DECAY_EXPONENT:
                # Shift the reference to keep factors finite; rescaling all weights keeps ratios.
                new_ref = self._round_to_half_life(time)
                scale = 2.0 ** round((ref - new_ref) / self.half_life)
                weights = {b: w * scale for b, w in weights.items() if w * scale >= EPSILON}
                ref = new_ref
            bucket = self.options.find_bucket(value)
            new_weight = weights.get(bucket, 0.0) + weight * 2.0 ** ((time - ref) / self.half_life)
            if new_weight < EPSILON:
                weights.pop(bucket, None)
            else:
                weights[bucket] = new_weight
        return DecayingHistogram(self.options, self.half_life, ref, weights)

    def _round_to_half_life(self, time: float) -> float:
        return round(time / self.half_life) * self.half_life

    def percentile(self, percentile: float) -> float:
        """The end of the first bucket where the cumulative weight reaches ``percentile`` (VPA)."""
        if self.is_empty():
            return 0.0
        threshold = percentile * self.total_weight
        partial = 0.0
        buckets = sorted(self.weights)
        bucket = buckets[-1]
        for candidate in buckets:
            partial += self.weights[candidate]
            if partial >= threshold:
                bucket = candidate
                break
        if bucket < self.options.num_buckets - 1:
            return self.options.bucket_start(bucket + 1)
        return self.options.bucket_start(bucket)  # the last bucket has no upper end

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly checkpoint (options are implied by the resource)."""
        out: dict[str, Any] = {
            "halfLife": self.half_life,
            "buckets": {str(b): w for b, w in sorted(self.weights.items())},
        }
        if self.reference_time is not None:  # left out, not null: the checkpoint schema has no nulls
            out["referenceTime"] = self.reference_time
        return out

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], options: HistogramOptions, half_life: float
    ) -> DecayingHistogram:
        """Restore a checkpoint; a different half-life re-bases nothing but is used from now on."""
        try:
            ref = data.get("referenceTime")
            weights = {int(b): float(w) for b, w in dict(data.get("buckets", {})).items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid histogram checkpoint: {exc}") from exc
        if any(b < 0 or b >= options.num_buckets or not math.isfinite(w) for b, w in weights.items()):
            raise ValueError("invalid histogram checkpoint: bucket out of range")
        return cls(options, half_life, None if ref is None else float(ref), weights)
