"""Adapters that plug leader election, checkpoints and finalizer migration into the supervisor.

Kept out of handlers.py so they can be tested without kopf, and out of supervisor.py so the supervisor
stays free of clients.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.api.spec import PolicySpec
from surge.config import OperatorConfig
from surge.decision.plan import PlanState
from surge.kube import JSON_PATCH, request
from surge.leader import KubeLeaseApi, LeaderElector, default_identity
from surge.observability import OperatorMetrics
from surge.persistence.checkpoints import CheckpointStore, KubeCheckpointApi
from surge.persistence.schedule import CheckpointSchedule
from surge.policy_store import GROUP, PLURAL, VERSION
from surge.ports import EventSink
from surge.reconcile import Dependencies, PolicyMemory, PolicyObject
from surge.supervisor import AlwaysLeader, Checkpoints, Leadership, NoCheckpoints

log = logging.getLogger("surge")


class ElectedLeadership:
    """The supervisor's view of a running LeaderElector; `close` releases the Lease on a clean stop."""

    def __init__(self, elector: LeaderElector) -> None:
        self._elector = elector
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(elector.run(self._stop), name="surge-leader")

    def is_leader(self) -> bool:
        return self._elector.is_leader()

    def remaining(self) -> float:
        return self._elector.remaining()

    async def wait_until_leader(self) -> None:
        await self._elector.wait_until_leader()

    async def close(self, grace: float = 5.0) -> None:
        self._stop.set()
        try:
            async with asyncio.timeout(grace):  # not wait_for: on 3.11 it can swallow a cancellation
                await asyncio.shield(self._task)
        except TimeoutError:
            log.warning("leader election did not stop within %.0f s; the Lease will expire on its own", grace)


def build_leadership(cfg: OperatorConfig, deps: Dependencies, metrics: OperatorMetrics) -> Leadership:
    """Leader election when asked for (2+ replicas), else this process is the only actor."""
    if not cfg.leader_election:
        metrics.leader.set(1)
        return AlwaysLeader()
    namespace = cfg.lease_namespace or "default"
    elector = LeaderElector(
        KubeLeaseApi(deps.api, namespace, cfg.lease_name),
        cfg.identity or default_identity(),
        lease_duration=cfg.lease_duration,
        renew_deadline=cfg.renew_deadline,
        retry_period=cfg.retry_period,
        on_change=lambda leading: metrics.leader.set(1 if leading else 0),
    )
    metrics.leader.set(0)
    return ElectedLeadership(elector)


class StoredCheckpoints:
    """Restores a policy's decision state at the start of its loop and saves it when its schedule says so.

    A checkpoint that cannot be used (unreadable, another schema version, another policy, too old) becomes a
    Warning Event and the loop starts from an empty state; it never stops the policy.
    """

    def __init__(self, store: CheckpointStore, events: EventSink, min_interval: float) -> None:
        self._store = store
        self._events = events
        self._min_interval = min_interval
        self._schedules: dict[str, CheckpointSchedule] = {}

    async def restore(self, obj: PolicyObject, spec: PolicySpec) -> PolicyMemory | None:
        problems: list[tuple[str, str]] = []
        restored = await self._store.load(
            obj.namespace, obj.name, obj.uid, spec, on_problem=lambda r, m: problems.append((r, m))
        )
        for reason, message in problems:
            await self._events.emit(obj.ref, "Warning", reason, message)
        schedule = CheckpointSchedule(self._min_interval)
        self._schedules[obj.uid] = schedule
        now = time.time()
        if restored is None:
            schedule.loaded(PlanState(), now)
            return None
        schedule.loaded(restored.state, now)
        log.info("restored the decision state of %s/%s from its checkpoint", obj.namespace, obj.name)
        return PolicyMemory(state=restored.state, last_tick=restored.last_tick)

    async def after_tick(self, obj: PolicyObject, memory: PolicyMemory, scaled: bool, now: float) -> None:
        if memory.parsed is None:
            return  # no valid spec: nothing was decided
        schedule = self._schedules.setdefault(obj.uid, CheckpointSchedule(self._min_interval))
        if schedule.due(memory.state, memory.parsed[1], now) is None:
            return
        ok = await self._store.save(
            obj.namespace, obj.name, obj.uid, memory.state, memory.last_tick, now, generation=obj.generation
        )
        if ok:
            schedule.saved(memory.state, now)
        else:
            schedule.failed(now)

    def forget(self, uid: str) -> None:
        self._schedules.pop(uid, None)


def build_checkpoints(cfg: OperatorConfig, deps: Dependencies) -> Checkpoints:
    if cfg.checkpoint_seconds <= 0:
        return NoCheckpoints()
    return StoredCheckpoints(
        CheckpointStore(KubeCheckpointApi(deps.api)), deps.events, cfg.checkpoint_seconds
    )


def _remove_finalizer(api: client.ApiClient, body: Mapping[str, Any], finalizer: str) -> None:
    meta = body.get("metadata") or {}
    finalizers = list(meta.get("finalizers") or [])
    if finalizer not in finalizers:
        return
    index = finalizers.index(finalizer)
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{meta.get('namespace')}/{PLURAL}/{meta.get('name')}"
    # The test makes the removal safe against a concurrent change of the list (another index would shift).
    ops = [
        {"op": "test", "path": f"/metadata/finalizers/{index}", "value": finalizer},
        {"op": "remove", "path": f"/metadata/finalizers/{index}"},
    ]
    try:
        request(api, "PATCH", path, body=ops, content_type=JSON_PATCH)
        log.info("removed the legacy finalizer from %s/%s", meta.get("namespace"), meta.get("name"))
    except ApiException as exc:
        if exc.status not in (404, 409, 422):  # gone, or changed meanwhile: the next event retries
            log.warning("could not remove the legacy finalizer from %s: %s", meta.get("name"), exc.status)


async def remove_legacy_finalizer(api: client.ApiClient, body: Mapping[str, Any], finalizer: str) -> None:
    await asyncio.to_thread(_remove_finalizer, api, body, finalizer)
