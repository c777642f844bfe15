"""One vocabulary of reasons, shared by conditions and Events (HPA's words where HPA has one).

A failure has one reason wherever a person reads it: the Warning Event and the condition that reports it
carry the same word.
"""

from __future__ import annotations

from surge.api.spec import MetricType

__all__ = [
    "ALL_METRICS_AVAILABLE",
    "ALL_METRICS_FAILED",
    "CONFLICTING_AUTOSCALER",
    "DESIRED_WITHIN_RANGE",
    "DRY_RUN",
    "DRY_RUN_RESCALE",
    "FAILED_GET_EXTERNAL_METRIC",
    "FAILED_GET_PODS",
    "FAILED_GET_PODS_METRIC",
    "FAILED_GET_RESOURCE_METRIC",
    "FAILED_GET_SCALE",
    "FAILED_RESCALE",
    "FAILED_RESIZE",
    "FAILED_UPDATE_STATUS",
    "FAILED_UPDATE_TEMPLATE",
    "FALLBACK_ACTIVE",
    "INTERNAL_ERROR",
    "INVALID_SELECTOR",
    "INVALID_SPEC",
    "NO_CONFLICT",
    "PAUSED",
    "READY_FOR_NEW_SCALE",
    "RECONCILED",
    "RESOURCE_CONFLICT",
    "SCALING_DISABLED",
    "SOME_METRICS_FAILED",
    "SUCCESSFUL_RESCALE",
    "SUCCESSFUL_RESIZE",
    "VALID_METRIC_FOUND",
    "failed_metric",
]

# Reading metrics (HPA: FailedGetResourceMetric, FailedGetPodsMetric, FailedGetExternalMetric).
FAILED_GET_RESOURCE_METRIC = "FailedGetResourceMetric"
FAILED_GET_PODS_METRIC = "FailedGetPodsMetric"
FAILED_GET_EXTERNAL_METRIC = "FailedGetExternalMetric"  # Prometheus and Buffer: metrics from outside
FAILED_GET_PODS = "FailedGetPods"
INVALID_SELECTOR = "InvalidSelector"

# The target and writes to it (HPA: FailedGetScale, FailedRescale, SuccessfulRescale).
FAILED_GET_SCALE = "FailedGetScale"
FAILED_RESCALE = "FailedRescale"
SUCCESSFUL_RESCALE = "SuccessfulRescale"
DRY_RUN_RESCALE = "DryRunRescale"
FAILED_RESIZE = "FailedResize"
SUCCESSFUL_RESIZE = "SuccessfulResize"
FAILED_UPDATE_TEMPLATE = "FailedUpdateTemplate"
FAILED_UPDATE_STATUS = "FailedUpdateStatus"

# Conditions.
READY_FOR_NEW_SCALE = "ReadyForNewScale"
VALID_METRIC_FOUND = "ValidMetricFound"
SCALING_DISABLED = "ScalingDisabled"
DESIRED_WITHIN_RANGE = "DesiredWithinRange"
ALL_METRICS_AVAILABLE = "AllMetricsAvailable"
ALL_METRICS_FAILED = "AllMetricsFailed"
SOME_METRICS_FAILED = "SomeMetricsFailed"
FALLBACK_ACTIVE = "FallbackActive"
RESOURCE_CONFLICT = "ResourceConflict"
NO_CONFLICT = "NoConflict"
CONFLICTING_AUTOSCALER = "ConflictingAutoscaler"
INVALID_SPEC = "InvalidSpec"
PAUSED = "Paused"
DRY_RUN = "DryRun"
RECONCILED = "Reconciled"
INTERNAL_ERROR = "InternalError"  # an unexpected failure of a tick (a bug or an unforeseen answer)

_METRIC_REASONS = {
    MetricType.RESOURCE: FAILED_GET_RESOURCE_METRIC,
    MetricType.PODS: FAILED_GET_PODS_METRIC,
    MetricType.PROMETHEUS: FAILED_GET_EXTERNAL_METRIC,
    MetricType.BUFFER: FAILED_GET_EXTERNAL_METRIC,
}


def failed_metric(metric_type: MetricType) -> str:
    """The reason for a metric of this type that could not be read: the same in conditions and Events."""
    return _METRIC_REASONS.get(metric_type, FAILED_GET_EXTERNAL_METRIC)
