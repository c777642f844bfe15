"""Builds the real collaborators of a tick from the operator's settings (tests build fakes instead)."""

from __future__ import annotations

from surge.actuation.actuator import KubeActuator
from surge.actuation.scale import KubeScaleClient
from surge.actuation.target import Discovery, KubeTemplateReader
from surge.config import OperatorConfig
from surge.decision.model import EngineSettings
from surge.events import EventRecorder
from surge.kube import api_client
from surge.leader import default_identity
from surge.metrics.pods import PodSource
from surge.metrics.prometheus import PrometheusSource
from surge.metrics.registry import build_registry
from surge.metrics.resource import PodMetricsSource
from surge.policy_store import PolicyStore
from surge.reconcile import Dependencies


def engine_settings(cfg: OperatorConfig) -> EngineSettings:
    return EngineSettings(
        cpu_initialization_period=cfg.cpu_initialization_period,
        initial_readiness_delay=cfg.initial_readiness_delay,
    )


def build_dependencies(cfg: OperatorConfig) -> Dependencies:
    """Blocking (reads the kubeconfig): call it from a worker thread."""
    api = api_client(cfg.kubeconfig, pool_size=cfg.io_threads)
    prometheus = PrometheusSource(
        cfg.prometheus_url,
        timeout=cfg.prometheus_timeout,
        pool_size=cfg.io_threads,
        allowed_urls=cfg.prometheus_allowed_urls,
        max_response_bytes=cfg.prometheus_max_response_bytes,
        tenancy=cfg.prometheus_tenancy,
    )
    return Dependencies(
        api=api,
        scale=KubeScaleClient(api, Discovery(api)),
        pods=PodSource(api),
        pod_metrics=PodMetricsSource(api),
        metrics=build_registry(prometheus),
        actuator=KubeActuator(api),
        templates=KubeTemplateReader(api),
        status=PolicyStore(api),
        events=EventRecorder(
            api, repeat_after=cfg.event_repeat_seconds, instance=cfg.identity or default_identity()
        ),
        settings=engine_settings(cfg),
    )
