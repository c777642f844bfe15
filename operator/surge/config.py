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
    # Prometheus base URLs a policy's serverAddress may name; empty: only prometheus_url (tenants never
    # choose which servers the operator contacts).
    prometheus_allowed_urls: tuple[str, ...] = ()
    # Total time limit and response-size cap of one Prometheus request (no redirects are followed).
    prometheus_max_response_bytes: int = 1 << 20
    # Address the operator's /metrics binds to.
    metrics_bind_address: str = "0.0.0.0"
    # Leader election through a coordination.k8s.io Lease (client-go's durations: 15 s / 10 s / 2 s).
    leader_election: bool = False
    lease_name: str = "surge-operator"
    lease_namespace: str = ""  # "" = the namespace of the pod (POD_NAMESPACE), else "default"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    # Identity of this replica in the Lease (default: hostname + pid).
    identity: str = ""
    # Decision-state checkpoints: periodic writes (histograms, predictive points) at most once per policy per
    # this many seconds (0 = never); scale actions and scale-down holds are saved at once regardless.
    # 60 s keeps 1,000 policies at ~17 writes/s (30 s measured 27/s).
    checkpoint_seconds: float = 60.0
    # "" (off) or "namespace": every query of a policy is sent with its namespace as the value a
    # label-enforcing proxy at prometheus_url (prom-label-proxy -label namespace) confines it to.
    prometheus_tenancy: str = ""
    # HPA's kube-controller-manager flags, same defaults.
    cpu_initialization_period: float = 300.0
    initial_readiness_delay: float = 30.0

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
            prometheus_allowed_urls=tuple(
                u for u in os.environ.get("SURGE_PROMETHEUS_ALLOWED_URLS", "").split(",") if u
            ),
            leader_election=os.environ.get("SURGE_LEADER_ELECTION", "") in ("1", "true", "True"),
            lease_name=os.environ.get("SURGE_LEASE_NAME", cls.lease_name),
            lease_namespace=os.environ.get("SURGE_LEASE_NAMESPACE", os.environ.get("POD_NAMESPACE", "")),
            lease_duration=_env_float("SURGE_LEASE_DURATION", cls.lease_duration),
            renew_deadline=_env_float("SURGE_RENEW_DEADLINE", cls.renew_deadline),
            retry_period=_env_float("SURGE_RETRY_PERIOD", cls.retry_period),
            identity=os.environ.get("SURGE_IDENTITY", ""),
            checkpoint_seconds=_env_float("SURGE_CHECKPOINT_SECONDS", cls.checkpoint_seconds),
            cpu_initialization_period=_env_float(
                "SURGE_CPU_INITIALIZATION_PERIOD", cls.cpu_initialization_period
            ),
            initial_readiness_delay=_env_float("SURGE_INITIAL_READINESS_DELAY", cls.initial_readiness_delay),
            prometheus_tenancy=os.environ.get("SURGE_PROMETHEUS_TENANCY", cls.prometheus_tenancy),
        )
