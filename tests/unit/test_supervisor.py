"""The supervisor's loops with in-memory fakes: isolation, deadlines, back-off, leadership, sweeps."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from surge.api.spec import PolicySpec, parse_policy_spec
from surge.reconcile import ConflictFinder, PolicyMemory, PolicyObject, TickResult
from surge.supervisor import PolicyRecord, Supervisor, SupervisorSettings

pytestmark = pytest.mark.timeout(20)

SPEC = {
    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
    "interval": "1s",
    "horizontal": {
        "maxReplicas": 5,
        "metrics": [
            {"type": "Prometheus", "prometheus": {"query": "q", "target": {"type": "Value", "value": "1"}}}
        ],
    },
}
FAST = 0.02  # seconds: the interval the fake ticks pretend their spec has


def record(name: str, *, generation: int = 1, namespace: str = "ns", seen_at: float = 0.0) -> PolicyRecord:
    return PolicyRecord(
        namespace=namespace,
        name=name,
        uid=f"uid-{name}",
        generation=generation,
        resource_version="1",
        spec=SPEC,
        status={},
        annotations={},
        seen_at=seen_at,
    )


def fast_spec(interval: float = FAST) -> PolicySpec:
    return dataclasses.replace(parse_policy_spec(SPEC), interval=interval)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Runs an async test on a fresh event loop (the suite has no async plugin)."""

    @functools.wraps(test)
    def wrapper() -> None:
        asyncio.run(test())

    return wrapper


Behaviour = Callable[[PolicyObject, PolicyMemory], Awaitable[TickResult]]


class FakeTick:
    """Counts ticks per policy; each policy can be given its own behaviour."""

    def __init__(self) -> None:
        self.ticks: dict[str, int] = defaultdict(int)
        self.memories: dict[str, list[int]] = defaultdict(list)
        self.behaviour: dict[str, Behaviour] = {}

    async def __call__(
        self, obj: PolicyObject, memory: PolicyMemory, conflicts_of: ConflictFinder
    ) -> TickResult:
        self.ticks[obj.name] += 1
        self.memories[obj.name].append(id(memory))
        memory.parsed = (obj.generation, fast_spec())
        special = self.behaviour.get(obj.name)
        if special is not None:
            return await special(obj, memory)
        return TickResult(FAST, outcome="ok")


async def wait_for(probe: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@run
async def test_each_policy_ticks_and_removal_stops_only_that_one() -> None:
    tick = FakeTick()
    sup = Supervisor(tick)
    for i in range(6):
        sup.upsert(record(f"p{i}"))
    await wait_for(lambda: all(tick.ticks[f"p{i}"] >= 2 for i in range(6)), "every policy ticking")
    for i in range(3):
        sup.remove(f"uid-p{i}")
    before = {f"p{i}": tick.ticks[f"p{i}"] for i in range(6)}
    await wait_for(lambda: all(tick.ticks[f"p{i}"] >= before[f"p{i}"] + 3 for i in range(3, 6)), "survivors")
    assert all(tick.ticks[f"p{i}"] == before[f"p{i}"] for i in range(3)), "removed policies must not tick"
    await sup.stop()


@run
async def test_cancelling_a_policy_mid_tick_does_not_reach_the_others() -> None:
    tick = FakeTick()
    shared: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting: set[str] = set()

    async def waits_on_shared(obj: PolicyObject, memory: PolicyMemory) -> TickResult:
        waiting.add(obj.name)
        await asyncio.shield(shared)  # like a shared LIST awaited by several policies
        return TickResult(FAST, outcome="ok")

    tick.behaviour = {"a": waits_on_shared, "b": waits_on_shared}
    sup = Supervisor(tick)
    sup.upsert(record("a"))
    sup.upsert(record("b"))
    await wait_for(lambda: waiting == {"a", "b"}, "both policies inside the shared fetch")
    sup.remove("uid-a")
    await asyncio.sleep(0)
    assert not shared.cancelled()
    shared.set_result(None)
    tick.behaviour = {}
    await wait_for(lambda: tick.ticks["b"] >= 3, "b ticking on after a was cancelled")
    await sup.stop()


@run
async def test_a_hanging_tick_is_cut_at_its_deadline_and_retried() -> None:
    tick = FakeTick()
    hung = asyncio.Event()
    cut = 0

    async def hangs_once(obj: PolicyObject, memory: PolicyMemory) -> TickResult:
        nonlocal cut
        if not hung.is_set():
            hung.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cut += 1
                raise
        return TickResult(FAST, outcome="ok")

    results: list[str] = []

    class Observer:
        def tick_done(self, obj: PolicyObject, result: TickResult, seconds: float) -> None:
            results.append(result.outcome)

        def policy_removed(self, namespace: str, name: str) -> None:
            pass

    tick.behaviour = {"slow": hangs_once}
    sup = Supervisor(tick, observer=Observer())
    sup.upsert(record("slow"))
    # First tick: the deadline is the spec's interval (1 s); later ticks use the fast spec the fake parsed.
    await wait_for(lambda: "ok" in results, "a tick after the hung one", within=20)
    assert cut == 1
    assert results[0] == "timeout"
    await sup.stop()


@run
async def test_a_failing_tick_backs_off_and_the_loop_survives() -> None:
    tick = FakeTick()
    calls = 0

    async def fails_twice(obj: PolicyObject, memory: PolicyMemory) -> TickResult:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RuntimeError("boom")
        return TickResult(FAST, outcome="ok")

    tick.behaviour = {"x": fails_twice}
    sup = Supervisor(tick, settings=SupervisorSettings(min_backoff=0.01))
    sup.upsert(record("x"))
    await wait_for(lambda: calls >= 4, "ticks after two crashes", within=8)
    await sup.stop()


@run
async def test_a_gone_policy_ends_its_loop() -> None:
    tick = FakeTick()

    async def gone(obj: PolicyObject, memory: PolicyMemory) -> TickResult:
        return TickResult(FAST, outcome="gone")

    tick.behaviour = {"g": gone}
    sup = Supervisor(tick)
    sup.upsert(record("g"))
    await wait_for(lambda: sup.policy_count == 0, "the gone policy dropped")
    await asyncio.sleep(0.05)
    assert tick.ticks["g"] == 1
    await sup.stop()


class FakeLeadership:
    def __init__(self) -> None:
        self.leading = False
        self._changed = asyncio.Event()

    def set(self, leading: bool) -> None:
        self.leading = leading
        self._changed.set()
        self._changed = asyncio.Event()

    def is_leader(self) -> bool:
        return self.leading

    def remaining(self) -> float:
        return 10.0 if self.leading else 0.0

    async def wait_until_leader(self) -> None:
        while not self.leading:
            await self._changed.wait()


class FakeCheckpoints:
    def __init__(self) -> None:
        self.saved: list[tuple[str, bool]] = []
        self.restored: list[str] = []
        self.memory: dict[str, PolicyMemory] = {}

    async def restore(self, obj: PolicyObject, spec: PolicySpec) -> PolicyMemory | None:
        self.restored.append(obj.name)
        return self.memory.get(obj.name)

    async def after_tick(self, obj: PolicyObject, memory: PolicyMemory, scaled: bool, now: float) -> None:
        self.saved.append((obj.name, scaled))

    def forget(self, uid: str) -> None:
        self.memory.pop(uid.removeprefix("uid-"), None)


@run
async def test_only_the_leader_ticks_and_it_restores_state_on_every_takeover() -> None:
    tick = FakeTick()
    leader = FakeLeadership()
    checkpoints = FakeCheckpoints()
    restored = PolicyMemory(last_tick=123.0)
    checkpoints.memory["p"] = restored
    sup = Supervisor(tick, leadership=leader, checkpoints=checkpoints)
    sup.upsert(record("p"))
    await asyncio.sleep(0.1)
    assert tick.ticks["p"] == 0, "a standby never ticks"
    assert sup.stalled() == [], "a standby is healthy"
    leader.set(True)
    await wait_for(lambda: tick.ticks["p"] >= 2, "ticks once leading")
    assert checkpoints.restored == ["p"]
    assert tick.memories["p"][0] == id(restored), "the first tick runs on the restored memory"
    assert checkpoints.saved, "the leader saves checkpoints"
    leader.set(False)
    await asyncio.sleep(0.05)
    stopped_at = tick.ticks["p"]
    await asyncio.sleep(0.1)
    assert tick.ticks["p"] == stopped_at, "no tick after losing the lease"
    leader.set(True)
    await wait_for(lambda: tick.ticks["p"] > stopped_at, "ticks again after re-election")
    assert checkpoints.restored == ["p", "p"], "state is re-read after a takeover: the other replica acted"
    await sup.stop()


@run
async def test_a_new_generation_ticks_at_once() -> None:
    tick = FakeTick()
    slow: dict[str, Any] = {}

    async def long_interval(obj: PolicyObject, memory: PolicyMemory) -> TickResult:
        slow.setdefault("generations", []).append(obj.generation)
        return TickResult(30.0, outcome="ok")

    tick.behaviour = {"p": long_interval}
    sup = Supervisor(tick)
    sup.upsert(record("p", generation=1))
    await wait_for(lambda: tick.ticks["p"] == 1, "first tick")
    sup.upsert(record("p", generation=2))
    await wait_for(lambda: tick.ticks["p"] == 2, "second tick right after the spec changed", within=2)
    assert slow["generations"] == [1, 2]
    await sup.stop()


@run
async def test_stalled_reports_a_policy_without_progress() -> None:
    now = [1000.0]
    tick = FakeTick()

    async def very_slow(obj: PolicyObject, memory: PolicyMemory) -> TickResult:
        return TickResult(3600.0, outcome="ok")

    tick.behaviour = {"p": very_slow}
    sup = Supervisor(
        tick, monotonic=lambda: now[0], settings=SupervisorSettings(stall_intervals=3, stall_grace=10)
    )
    sup.upsert(record("p"))
    await wait_for(lambda: tick.ticks["p"] == 1, "first tick")
    assert sup.stalled() == []
    now[0] += 3 * FAST + 11
    assert sup.stalled() == ["ns/p"]
    await sup.stop()


class FakeLister:
    def __init__(self, present: dict[str, set[str] | None]) -> None:
        self.present = present

    async def uids(self, namespace: str) -> set[str] | None:
        return self.present.get(namespace)


@run
async def test_the_sweep_drops_policies_whose_namespace_vanished() -> None:
    tick = FakeTick()
    lister = FakeLister({"gone": set(), "kept": {"uid-k"}, "unknown": None})
    sup = Supervisor(
        tick, lister=lister, settings=SupervisorSettings(sweep_seconds=0.02), monotonic=lambda: 5.0
    )
    sup.upsert(record("g", namespace="gone", seen_at=1.0))
    sup.upsert(record("k", namespace="kept", seen_at=1.0))
    sup.upsert(record("u", namespace="unknown", seen_at=1.0))
    sup.start()
    await wait_for(lambda: sup.policy_count == 2, "the vanished policy dropped")
    await asyncio.sleep(0.06)
    assert sup.policy_count == 2, "a failed LIST (None) never drops a policy"
    await sup.stop()
