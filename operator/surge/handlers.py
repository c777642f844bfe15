"""kopf wiring: start-up, watch events into the supervisor, indexes for conflict detection, clean-up.

The only module besides cli.py that imports kopf. kopf watches; the supervisor (supervisor.py) owns one
task per policy. No handler here needs a finalizer, so kopf adds none: deleting a policy or its namespace
never waits for the operator. Dependencies live in kopf's memo (set at start-up, or passed in by tests).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from surge.actuation.target import TargetRef
from surge.config import OperatorConfig
from surge.malloc_tuning import HeapTrimmer, limit_malloc_arenas
from surge.observability import OperatorMetrics, serve
from surge.policy_lister import KubePolicyLister
from surge.policy_store import GROUP, PLURAL, VERSION
from surge.reconcile import (
    ConflictFinder,
    Dependencies,
    PolicyMemory,
    PolicyObject,
    TickResult,
    reconcile_once,
)
from surge.runtime import build_checkpoints, build_leadership, remove_legacy_finalizer
from surge.supervisor import PolicyRecord, Supervisor
from surge.wiring import build_dependencies

log = logging.getLogger("surge")

# Finalizer that versions before 0.2 added through kopf daemons; removed from every policy we see.
LEGACY_FINALIZER = "autoscaling.surge.dev/finalizer"


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    cfg: OperatorConfig = memo.get("config") or OperatorConfig.from_env()
    memo["config"] = cfg
    # kopf would post an Event per handler run; ours are deduplicated.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = cfg.watch_timeout
    if cfg.namespaces and not any(ch in ns for ns in cfg.namespaces for ch in "*?["):
        # Exact namespace names: nothing to discover, so kopf needs no cluster-wide namespace or CRD LIST
        # (a namespaced install has no such rights: kopf retried 9 times, ~54 s, before its first event).
        settings.scanning.disabled = True
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=cfg.io_threads, thread_name_prefix="surge-io")
    )
    if "deps" not in memo:
        memo["deps"] = await asyncio.to_thread(build_dependencies, cfg)
    deps: Dependencies = memo["deps"]
    metrics = OperatorMetrics()
    leadership = build_leadership(cfg, deps, metrics)
    memo["leadership"] = leadership

    async def tick(obj: PolicyObject, memory: PolicyMemory, conflicts_of: ConflictFinder) -> TickResult:
        return await reconcile_once(deps, obj, memory, conflicts_of)

    supervisor = Supervisor(
        tick,
        leadership=leadership,
        checkpoints=build_checkpoints(cfg, deps),
        observer=metrics,
        lister=KubePolicyLister(deps.api),
    )
    supervisor.start()
    memo["supervisor"] = supervisor
    memo["metrics"] = metrics
    metrics.policies.set_function(lambda: supervisor.policy_count)  # read at each scrape: never stale
    runners = []
    if cfg.metrics_port:
        runners.append(await serve(cfg.metrics_bind_address, cfg.metrics_port, metrics=metrics, health=None))
    if cfg.liveness:
        url = urllib.parse.urlsplit(cfg.liveness)
        runners.append(
            await serve(
                url.hostname or "127.0.0.1",
                url.port or 8080,
                metrics=None,
                health=supervisor.stalled,
                health_path=url.path or "/healthz",
            )
        )
    memo["runners"] = runners
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
    supervisor: Supervisor | None = memo.get("supervisor")
    if supervisor is not None:
        await supervisor.stop()
    leadership = memo.get("leadership")
    release = getattr(leadership, "close", None)
    if release is not None:
        await release()  # gives the lease up so a standby takes over at once
    for runner in memo.get("runners", []):
        await runner.cleanup()
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


@kopf.on.event(GROUP, VERSION, PLURAL)
async def policy_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **indexes: Any) -> None:
    """Every watch event of a policy: keep the supervisor's copy current (no finalizer, no status writes)."""
    supervisor: Supervisor = memo["supervisor"]
    # kopf passes every index by its handler's name; they are filled before other handlers run.
    supervisor.set_conflict_finder(_conflict_finder(indexes["hpa_targets"], indexes["policy_targets"]))
    raw = dict(body)
    meta = raw.get("metadata") or {}
    if event.get("type") == "DELETED":
        supervisor.remove(str(meta.get("uid") or ""))
        return
    if LEGACY_FINALIZER in (meta.get("finalizers") or []):
        deps: Dependencies = memo["deps"]
        await remove_legacy_finalizer(deps.api, raw, LEGACY_FINALIZER)
    if meta.get("deletionTimestamp"):
        supervisor.remove(str(meta.get("uid") or ""))  # going away: act no more
        return
    supervisor.upsert(PolicyRecord.from_body(raw, time.monotonic()))


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
        # Replicas coordinate through our own Lease (leader.py), not kopf's peering objects.
        standalone=True,
        clusterwide=not cfg.namespaces,
        namespaces=cfg.namespaces,
        memo=memo,
    )
