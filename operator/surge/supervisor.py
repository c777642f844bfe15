"""One asyncio task per policy, owned by us rather than by kopf.

kopf only feeds this module watch events (handlers.py). Owning the tasks ourselves means:
- no finalizer on policies (kopf daemons need one): `kubectl delete` and namespace deletion never wait for us;
- cancelling one policy's task never reaches another (each task is separate; shared fetches are shielded);
- every tick has a deadline no longer than its interval, a failed tick retries on a short back-off;
- only the leader ticks; a standby keeps the latest objects and starts ticking when it takes over,
  restoring each policy's decision state from its checkpoint first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from surge.api.spec import PolicySpec, SpecError, parse_policy_spec
from surge.reconcile import (
    DEFAULT_INTERVAL,
    ConflictFinder,
    PolicyMemory,
    PolicyObject,
    TickResult,
    no_conflicts,
)
from surge.tick_schedule import FirstTickSlots, next_tick_delay

log = logging.getLogger("surge.supervisor")


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """The latest version of a policy the watch delivered."""

    namespace: str
    name: str
    uid: str
    generation: int
    resource_version: str
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    seen_at: float  # monotonic time of the event

    @classmethod
    def from_body(cls, body: Mapping[str, Any], seen_at: float) -> PolicyRecord:
        meta = body.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            generation=int(meta.get("generation") or 0),
            resource_version=str(meta.get("resourceVersion") or ""),
            spec=dict(body.get("spec") or {}),
            status=dict(body.get("status") or {}),
            annotations=dict(meta.get("annotations") or {}),
            seen_at=seen_at,
        )

    def to_object(self) -> PolicyObject:
        return PolicyObject(
            namespace=self.namespace,
            name=self.name,
            uid=self.uid,
            generation=self.generation,
            spec=self.spec,
            status=self.status,
            annotations=self.annotations,
            resource_version=self.resource_version,
        )


class Tick(Protocol):
    """One evaluation of one policy (reconcile.reconcile_once bound to its dependencies)."""

    async def __call__(
        self, obj: PolicyObject, memory: PolicyMemory, conflicts_of: ConflictFinder
    ) -> TickResult: ...


class Leadership(Protocol):
    def is_leader(self) -> bool: ...

    def remaining(self) -> float:
        """Seconds this replica may still act without renewing (a tick never runs past it)."""
        ...

    async def wait_until_leader(self) -> None: ...


class AlwaysLeader:
    """Leader election off: this process is the only one."""

    def is_leader(self) -> bool:
        return True

    def remaining(self) -> float:
        return float("inf")

    async def wait_until_leader(self) -> None:
        return None


class Checkpoints(Protocol):
    """Where decision state survives restarts (persistence/checkpoints.py behind an adapter)."""

    async def restore(self, obj: PolicyObject, spec: PolicySpec) -> PolicyMemory | None: ...

    async def after_tick(self, obj: PolicyObject, memory: PolicyMemory, scaled: bool, now: float) -> None: ...

    def forget(self, uid: str) -> None: ...


class NoCheckpoints:
    async def restore(self, obj: PolicyObject, spec: PolicySpec) -> PolicyMemory | None:
        return None

    async def after_tick(self, obj: PolicyObject, memory: PolicyMemory, scaled: bool, now: float) -> None:
        return None

    def forget(self, uid: str) -> None:
        return None


class TickObserver(Protocol):
    """Metrics of the operator itself (observability.OperatorMetrics)."""

    def tick_done(self, obj: PolicyObject, result: TickResult, seconds: float) -> None: ...

    def policy_removed(self, namespace: str, name: str) -> None: ...


class PolicyLister(Protocol):
    """UIDs of the policies that exist in a namespace (None: could not tell)."""

    async def uids(self, namespace: str) -> set[str] | None: ...


@dataclass
class _Task:
    task: asyncio.Task[None]
    poke: asyncio.Event = field(default_factory=asyncio.Event)
    last_progress: float = 0.0  # monotonic time of the last finished tick (or of the start)
    interval: float = DEFAULT_INTERVAL


@dataclass(frozen=True)
class SupervisorSettings:
    first_ticks_per_second: float = 50.0
    # A policy whose namespace vanished without a DELETED event (kopf stops watching a namespace that is
    # being deleted) is found by a LIST of its namespace this often.
    sweep_seconds: float = 60.0
    # /healthz fails when a ticking policy made no progress for this many of its intervals (+ grace).
    stall_intervals: float = 3.0
    stall_grace: float = 30.0
    # First retry after a failed or timed-out tick; doubles per failure in a row, up to the interval.
    min_backoff: float = 1.0


class Supervisor:
    def __init__(
        self,
        tick: Tick,
        *,
        leadership: Leadership | None = None,
        checkpoints: Checkpoints | None = None,
        observer: TickObserver | None = None,
        lister: PolicyLister | None = None,
        settings: SupervisorSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._tick = tick
        self._leadership = leadership or AlwaysLeader()
        self._checkpoints = checkpoints or NoCheckpoints()
        self._observer = observer
        self._lister = lister
        self._settings = settings or SupervisorSettings()
        self._monotonic = monotonic
        self._wall = wall
        self._records: dict[str, PolicyRecord] = {}
        self._tasks: dict[str, _Task] = {}
        self._slots = FirstTickSlots(self._settings.first_ticks_per_second)
        self._conflicts: ConflictFinder = no_conflicts
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # ----------------------------------------------------------------------------- fed by the watch

    def set_conflict_finder(self, finder: ConflictFinder) -> None:
        self._conflicts = finder

    def upsert(self, record: PolicyRecord) -> None:
        """A policy was added or changed (or listed at start-up)."""
        if self._closed or not record.uid:
            return
        previous = self._records.get(record.uid)
        self._records[record.uid] = record
        running = self._tasks.get(record.uid)
        if running is None or running.task.done():
            self._start(record.uid)
        elif previous is not None and previous.generation != record.generation:
            running.poke.set()  # a new spec applies at once, not after the old interval

    def remove(self, uid: str) -> None:
        """The policy is gone: stop its task (and only its task)."""
        record = self._records.pop(uid, None)
        running = self._tasks.pop(uid, None)
        if running is not None:
            running.task.cancel()
        self._checkpoints.forget(uid)
        if record is not None and self._observer is not None:
            self._observer.policy_removed(record.namespace, record.name)

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._lister is not None and self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="surge-sweep")

    async def stop(self, grace: float = 10.0) -> None:
        self._closed = True
        tasks = [t.task for t in self._tasks.values()]
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        self._tasks.clear()

    @property
    def policy_count(self) -> int:
        return len(self._records)

    def stalled(self) -> list[str]:
        """Policies whose loop made no progress for several intervals while this replica leads."""
        if not self._leadership.is_leader():
            return []
        now = self._monotonic()
        out = []
        for uid, running in self._tasks.items():
            allowed = self._settings.stall_intervals * running.interval + self._settings.stall_grace
            if now - running.last_progress > allowed:
                record = self._records.get(uid)
                out.append(f"{record.namespace}/{record.name}" if record else uid)
        return out

    # ----------------------------------------------------------------------------- the loops

    def _start(self, uid: str) -> None:
        record = self._records[uid]
        task = asyncio.get_running_loop().create_task(
            self._loop(uid), name=f"surge-policy-{record.namespace}/{record.name}"
        )
        self._tasks[uid] = _Task(task=task, last_progress=self._monotonic())
        task.add_done_callback(lambda t: self._done(uid, t))

    def _done(self, uid: str, task: asyncio.Task[None]) -> None:
        running = self._tasks.get(uid)
        if running is not None and running.task is task:
            self._tasks.pop(uid, None)
        if not task.cancelled() and task.exception() is not None:
            # Never expected (the loop catches everything): restart rather than lose the policy.
            log.error("loop of policy %s ended: %r; restarting it", uid, task.exception())
            if uid in self._records and not self._closed:
                self._start(uid)

    async def _loop(self, uid: str) -> None:
        running = self._tasks[uid]
        await self._sleep(running, self._slots.delay(self._monotonic()))
        memory: PolicyMemory | None = None
        failures = 0
        while True:
            if not self._leadership.is_leader():
                memory = None  # another replica acts meanwhile: its checkpoint is newer than our memory
                running.last_progress = self._monotonic()
                await self._leadership.wait_until_leader()
                running.last_progress = self._monotonic()
            record = self._records.get(uid)
            if record is None:
                return
            obj = record.to_object()
            if memory is None:
                memory, running.interval = await self._restore(obj)
            running.interval = _interval_of(memory, running.interval)
            # A tick never outlives this replica's right to act: after `remaining` another may lead.
            deadline = min(running.interval, self._leadership.remaining())
            started = self._monotonic()
            try:
                async with asyncio.timeout(deadline):
                    result = await self._tick(obj, memory, self._conflicts)
            except TimeoutError:
                failures += 1
                result = TickResult(
                    _backoff(failures, running.interval, self._settings.min_backoff), outcome="timeout"
                )
                log.warning(
                    "tick of %s/%s exceeded its deadline of %.1f s; retrying in %.0f s",
                    obj.namespace,
                    obj.name,
                    deadline,
                    result.next_in,
                )
            except Exception as exc:  # reconcile_once catches its own failures; this is the last guard
                failures += 1
                result = TickResult(
                    _backoff(failures, running.interval, self._settings.min_backoff), outcome="crash"
                )
                log.error("tick of %s/%s failed: %r", obj.namespace, obj.name, exc)
            else:
                failures = failures + 1 if result.outcome == "error" else 0
            took = self._monotonic() - started
            running.last_progress = self._monotonic()
            running.interval = _interval_of(memory, running.interval)  # the tick may parse a new spec
            if self._observer is not None:
                self._observer.tick_done(obj, result, took)
            if result.outcome == "gone":
                log.info("policy %s/%s no longer exists; its loop ends", obj.namespace, obj.name)
                self.remove(uid)
                return
            if self._leadership.is_leader():
                await self._save(obj, memory, result)
            await self._sleep(running, next_tick_delay(result.next_in, took))

    async def _restore(self, obj: PolicyObject) -> tuple[PolicyMemory, float]:
        """The memory to start from (a checkpoint's, else empty) and the spec's interval."""
        try:
            spec = parse_policy_spec(obj.spec)
        except SpecError:
            return PolicyMemory(), DEFAULT_INTERVAL  # the tick reports the invalid spec
        try:
            restored = await self._checkpoints.restore(obj, spec)
        except Exception as exc:  # a checkpoint is an optimisation of safety, never a reason not to act
            log.warning("checkpoint of %s/%s not restored: %r", obj.namespace, obj.name, exc)
            restored = None
        return (restored if restored is not None else PolicyMemory()), spec.interval

    async def _save(self, obj: PolicyObject, memory: PolicyMemory, result: TickResult) -> None:
        try:
            await self._checkpoints.after_tick(obj, memory, result.scaled, self._wall())
        except Exception as exc:
            log.warning("checkpoint of %s/%s not saved: %r", obj.namespace, obj.name, exc)

    async def _sleep(self, running: _Task, seconds: float) -> None:
        running.poke.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await running.poke.wait()

    async def _sweep(self) -> None:
        """Drops policies that vanished without a DELETED event (their namespace was deleted)."""
        assert self._lister is not None
        while True:
            await asyncio.sleep(self._settings.sweep_seconds)
            if not self._leadership.is_leader():
                continue
            for namespace in sorted({r.namespace for r in self._records.values()}):
                started = self._monotonic()
                try:
                    present = await self._lister.uids(namespace)
                except Exception as exc:
                    log.debug("sweep of %s failed: %r", namespace, exc)
                    continue
                if present is None:
                    continue
                for uid, record in list(self._records.items()):
                    if record.namespace == namespace and uid not in present and record.seen_at < started:
                        log.info("policy %s/%s is gone (not listed); its loop ends", namespace, record.name)
                        self.remove(uid)


def _interval_of(memory: PolicyMemory, known: float) -> float:
    parsed = memory.parsed
    return parsed[1].interval if parsed is not None else known


def _backoff(failures: int, interval: float, first: float) -> float:
    return float(min(interval, first * 2 ** min(failures - 1, 10)))
