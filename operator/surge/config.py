"""Operator settings from flags and environment, in one documented dataclass."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


@dataclass(frozen=True)
class OperatorConfig:
    # Where PromQL goes unless a metric names its own serverAddress.
    prometheus_url: str = "http://127.0.0.1:19090"
    # Empty: watch every namespace (cluster-wide).
    namespaces: tuple[str, ...] = ()
    # Empty: in-cluster config, else $KUBECONFIG / ~/.kube/config.
    kubeconfig: str = ""
    # kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz ("" = off).
    liveness: str = ""
    # Port of the operator's own Prometheus /metrics (0 = off).
    metrics_port: int = 0
    # Seconds before an identical Event (same policy, reason and message) is posted again.
    event_repeat_seconds: float = 300.0
    # Per-query timeout for Prometheus.
    prometheus_timeout: float = 5.0
    # Threads for the blocking clients (kubernetes, prometheus-api-client).
    io_threads: int = 16
    # kopf's watch request timeout; short keeps shutdown prompt under test.
    watch_timeout: int = 60
    # Seconds between handing freed heap memory back to the kernel (malloc_trim; 0 = never).
    malloc_trim_seconds: float = 30.0
    log_json: bool = False
    verbose: bool = False

    @classmethod
    def from_env(cls) -> OperatorConfig:
        namespaces = tuple(n for n in os.environ.get("SURGE_NAMESPACES", "").split(",") if n)
        return cls(
            prometheus_url=os.environ.get("SURGE_PROMETHEUS_URL", cls.prometheus_url),
            namespaces=namespaces,
            kubeconfig=os.environ.get("SURGE_KUBECONFIG", os.environ.get("KUBECONFIG", "")),
            event_repeat_seconds=_env_float("SURGE_EVENT_REPEAT_SECONDS", cls.event_repeat_seconds),
            prometheus_timeout=_env_float("SURGE_PROMETHEUS_TIMEOUT", cls.prometheus_timeout),
            watch_timeout=int(_env_float("SURGE_WATCH_TIMEOUT", cls.watch_timeout)),
            malloc_trim_seconds=_env_float("SURGE_MALLOC_TRIM_SECONDS", cls.malloc_trim_seconds),
        )
