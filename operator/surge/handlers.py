"""kopf wiring: start-up, the per-policy loop (a daemon), and indexes for conflict detection.

The only module besides cli.py that imports kopf. Dependencies live in kopf's memo (set at start-up, or
passed in by tests), so nothing here reaches for module globals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from surge.actuation.actuator import KubeActuator
from surge.actuation.target import Discovery, TargetRef
from surge.config import OperatorConfig
from surge.events import EventRecorder
from surge.kube import api_client
from surge.malloc_tuning import HeapTrimmer, limit_malloc_arenas
from surge.metrics.pods import PodSource
from surge.metrics.prometheus import PrometheusSource
from surge.metrics.resource import PodMetricsSource
from surge.observability import TICK_SECONDS, serve_metrics
from surge.policy_store import GROUP, PLURAL, VERSION, PolicyStore
from surge.reconcile import (
    DEFAULT_INTERVAL,
    ConflictFinder,
    Dependencies,
    PolicyMemory,
    PolicyObject,
    reconcile_once,
)
from surge.tick_schedule import FirstTickSlots, next_tick_delay

log = logging.getLogger("surge")

FINALIZER = "autoscaling.surge.dev/finalizer"
# First ticks admitted per second: 1,000 policies at start-up are spread over 20 s (about one default
# interval) instead of all ticking in the same second, every interval, for the operator's lifetime.
FIRST_TICKS_PER_SECOND = 50.0


def build_dependencies(cfg: OperatorConfig) -> Dependencies:
    api = api_client(cfg.kubeconfig, pool_size=cfg.io_threads)
    return Dependencies(
        api=api,
        discovery=Discovery(api),
        pods=PodSource(api),
        pod_metrics=PodMetricsSource(api),
        prometheus=PrometheusSource(
            cfg.prometheus_url, timeout=cfg.prometheus_timeout, pool_size=cfg.io_threads
        ),
        actuator=KubeActuator(api),
        events=EventRecorder(api, repeat_after=cfg.event_repeat_seconds),
        store=PolicyStore(api),
    )


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    cfg: OperatorConfig = memo.get("config") or OperatorConfig.from_env()
    memo["config"] = cfg
    # kopf would post an Event per handler run; at a 1 s interval that floods the API. Ours are deduplicated.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = cfg.watch_timeout
    settings.persistence.finalizer = FINALIZER
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=cfg.io_threads, thread_name_prefix="surge-io")
    )
    if "deps" not in memo:
        memo["deps"] = await asyncio.to_thread(build_dependencies, cfg)
    if cfg.metrics_port:
        memo["metrics_server"] = await serve_metrics(cfg.metrics_port)
    if cfg.malloc_trim_seconds > 0:
        memo["trimmer"] = asyncio.create_task(_trim_memory(cfg.malloc_trim_seconds), name="surge-malloc-trim")


async def _trim_memory(every: float) -> None:
    """Hands memory freed after bursts (start-up, relists) back to the kernel; see malloc_tuning."""
    trimmer = await asyncio.to_thread(HeapTrimmer, every)  # reads /proc: not on the loop
    while True:
        await asyncio.sleep(every)
        await asyncio.to_thread(trimmer.check)


@kopf.on.login()
def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Logs kopf in to the same cluster as our own client.

    kopf's default first tries the official client, whose default kubeconfig path is fixed when the module
    is imported, so a KUBECONFIG set later would be ignored and ~/.kube/config's current context used.
    """
    cfg: OperatorConfig = memo.get("config") or OperatorConfig.from_env()
    if cfg.kubeconfig:
        os.environ["KUBECONFIG"] = cfg.kubeconfig
        return kopf.login_with_kubeconfig(**kwargs)
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    server = memo.get("metrics_server")
    if server is not None:
        await server.cleanup()
    trimmer = memo.get("trimmer")
    if trimmer is not None:
        trimmer.cancel()


@kopf.index("autoscaling", "v2", "horizontalpodautoscalers")
def hpa_targets(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str, str], str]:
    ref = spec.get("scaleTargetRef", {})
    return {(namespace or "", ref.get("kind", ""), ref.get("name", "")): name}


@kopf.index(GROUP, VERSION, PLURAL)
def policy_targets(
    namespace: str | None, name: str, uid: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str, str], tuple[str, str]]:
    ref = spec.get("scaleTargetRef", {})
    return {(namespace or "", ref.get("kind", ""), ref.get("name", "")): (uid, name)}


def _conflict_finder(
    hpas: kopf.Index[Any, str], policies: kopf.Index[Any, tuple[str, str]]
) -> ConflictFinder:
    def find(namespace: str, ref: TargetRef, policy_uid: str) -> list[str]:
        key = (namespace, ref.kind, ref.name)
        found = [f"HorizontalPodAutoscaler {h} also scales {ref}" for h in hpas.get(key, [])]
        found += [
            f"AutoScalePolicy {n} also scales {ref}" for uid, n in policies.get(key, []) if uid != policy_uid
        ]
        return sorted(found)

    return find


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def policy_loop(
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str | None,
    uid: str,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    **indexes: Any,
) -> None:
    """Evaluates one policy every spec.interval until the policy is deleted or the operator stops."""
    deps: Dependencies = memo["deps"]
    # kopf passes every index by its handler's name; they are filled before daemons start.
    conflicts = _conflict_finder(indexes["hpa_targets"], indexes["policy_targets"])
    memory = PolicyMemory()
    slots: FirstTickSlots = memo.setdefault("first_tick_slots", FirstTickSlots(FIRST_TICKS_PER_SECOND))
    await stopped.wait(slots.delay(time.monotonic()))
    while not stopped:
        # spec/meta/status are kopf's live views: each tick sees the latest object.
        obj = PolicyObject(
            namespace=namespace or "",
            name=name,
            uid=uid,
            generation=int(meta.get("generation", 0)),
            spec=dict(spec),
            status=dict(status),
            annotations=dict(meta.get("annotations", {})),
        )
        started = time.perf_counter()
        try:
            result = await reconcile_once(deps, obj, memory, conflicts)
            next_in, outcome = result.next_in, result.outcome
        except Exception:
            log.exception("tick of %s/%s failed; retrying next interval", namespace, name)
            next_in, outcome = DEFAULT_INTERVAL, "crash"
        took = time.perf_counter() - started
        TICK_SECONDS.observe(took, outcome)
        await stopped.wait(next_tick_delay(next_in, took))


def run_operator(cfg: OperatorConfig) -> None:
    """Runs the operator in this thread until it is stopped (SIGINT/SIGTERM)."""
    limit_malloc_arenas()  # before any I/O thread exists
    # kopf's logging set-up covers our loggers too; JSON lines carry the policy's namespace/name as fields.
    kopf.configure(
        verbose=cfg.verbose,
        log_format=kopf.LogFormat.JSON if cfg.log_json else kopf.LogFormat.FULL,
        log_refkey="k8s",
    )
    if cfg.kubeconfig:
        os.environ["KUBECONFIG"] = cfg.kubeconfig  # kopf's own login reads it
    memo = kopf.Memo(config=cfg)
    kopf.run(
        standalone=True,  # one replica (Deployment strategy Recreate): no peering objects needed
        clusterwide=not cfg.namespaces,
        namespaces=cfg.namespaces,
        liveness_endpoint=cfg.liveness or None,
        memo=memo,
    )
