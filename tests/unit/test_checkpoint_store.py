"""CheckpointStore over an in-memory API (same answers as the API server: 404, 409 on a stale version)."""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

import pytest

from surge.decision import PlanState
from surge.decision.behavior import BehaviorState, Recommendation, ScaleEvent
from surge.persistence.checkpoints import (
    API_VERSION,
    CheckpointApiError,
    CheckpointConflict,
    CheckpointMissing,
    CheckpointStore,
)
from tests.unit.builders import NOW, cpu_metric, spec

UID = "uid-1"
SPEC = spec(horizontal={"maxReplicas": 20, "metrics": [cpu_metric()]})
STATE = PlanState(
    behavior=BehaviorState(
        (Recommendation(NOW - 20, 12), Recommendation(NOW - 5, 2)), (ScaleEvent(NOW - 60, 4),)
    ),
    consecutive_failures=1,
)


class FakeCheckpointApi:
    """Objects by (namespace, name); resourceVersion preconditions like the API server."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_with: Exception | None = None
        self._version = 0

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.fail_with is not None:
            raise self.fail_with

    def _stored(self, body: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self._version)
        self.objects[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._check("get")
        obj = self.objects.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check("create")
        if (namespace, body["metadata"]["name"]) in self.objects:
            raise CheckpointConflict("already exists")
        return self._stored(body)

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check("replace")
        current = self.objects.get((namespace, name))
        if current is None:
            raise CheckpointMissing(name)
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise CheckpointConflict("stale resourceVersion")
        return self._stored(body)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def store(api: FakeCheckpointApi, now: float = NOW) -> CheckpointStore:
    return CheckpointStore(api, clock=lambda: now)


def test_save_then_load_round_trip_with_owner_reference() -> None:
    api = FakeCheckpointApi()
    assert run(store(api).save("ns", "arena", UID, STATE, NOW - 1, NOW, generation=4))
    obj = api.objects[("ns", "arena")]
    assert obj["apiVersion"] == API_VERSION
    assert obj["kind"] == "AutoScalePolicyCheckpoint"
    (owner,) = obj["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": API_VERSION,
        "kind": "AutoScalePolicy",
        "name": "arena",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": False,
    }
    assert "finalizers" not in obj["metadata"]
    assert obj["spec"]["policyGeneration"] == 4
    assert obj["spec"]["savedAt"].endswith("Z")
    restored = run(store(api, NOW + 10).load("ns", "arena", UID, SPEC))
    assert restored is not None
    state, last_tick = restored
    assert state == STATE
    assert last_tick == NOW - 1


def test_second_save_replaces_with_the_known_version() -> None:
    api = FakeCheckpointApi()
    s = store(api)
    assert run(s.save("ns", "arena", UID, STATE, None, NOW))
    assert run(s.save("ns", "arena", UID, PlanState(), None, NOW + 30))
    assert api.calls == ["create", "replace"]
    assert api.objects[("ns", "arena")]["spec"]["savedTime"] == NOW + 30


def test_stale_version_rereads_once_and_replaces() -> None:
    api = FakeCheckpointApi()
    first, second = store(api), store(api)  # e.g. two replicas around a handover
    assert run(first.save("ns", "arena", UID, STATE, None, NOW))
    assert run(second.save("ns", "arena", UID, STATE, None, NOW + 1))  # create -> 409 -> get -> replace
    assert api.calls == ["create", "create", "get", "replace"]
    api.calls.clear()
    assert run(first.save("ns", "arena", UID, PlanState(), None, NOW + 2))  # stale -> 409 -> get -> replace
    assert api.calls == ["replace", "get", "replace"]
    assert api.objects[("ns", "arena")]["spec"]["savedTime"] == NOW + 2


def test_deleted_checkpoint_is_created_again() -> None:
    api = FakeCheckpointApi()
    s = store(api)
    assert run(s.save("ns", "arena", UID, STATE, None, NOW))
    del api.objects[("ns", "arena")]  # the garbage collector, or a person
    assert run(s.save("ns", "arena", UID, STATE, None, NOW + 30))
    assert api.calls == ["create", "replace", "create"]


def test_save_failure_returns_false_and_does_not_raise() -> None:
    api = FakeCheckpointApi()
    api.fail_with = CheckpointApiError("connection refused")
    assert run(store(api).save("ns", "arena", UID, STATE, None, NOW)) is False


def test_nothing_saved_loads_none_without_a_problem() -> None:
    problems: list[tuple[str, str]] = []
    result = run(
        store(FakeCheckpointApi()).load("ns", "arena", UID, SPEC, on_problem=lambda *p: problems.append(p))
    )
    assert result is None
    assert problems == []


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda o: o["spec"].update(schemaVersion=99), "UnsupportedCheckpointVersion"),
        (lambda o: o["spec"].update(policyUID="uid-of-a-deleted-policy"), "CheckpointOfAnotherPolicy"),
        (lambda o: o["spec"]["state"].update(behavior={"events": "x"}), "MalformedCheckpoint"),
        (lambda o: o.update(spec="not an object"), "MalformedCheckpoint"),
        (lambda o: o["spec"].update(savedTime=NOW - 86400), "CheckpointTooOld"),
    ],
)
def test_unusable_checkpoint_loads_none_and_reports_why(damage: Any, reason: str) -> None:
    api = FakeCheckpointApi()
    assert run(store(api).save("ns", "arena", UID, STATE, None, NOW))
    damage(api.objects[("ns", "arena")])
    problems: list[tuple[str, str]] = []
    result = run(store(api, NOW + 5).load("ns", "arena", UID, SPEC, on_problem=lambda *p: problems.append(p)))
    assert result is None
    ((got, message),) = problems
    assert got == reason
    assert "starting without it" in message


def test_unreachable_api_loads_none_and_reports_why() -> None:
    api = FakeCheckpointApi()
    api.fail_with = CheckpointApiError("GET ...: 503 Service Unavailable")
    problems: list[tuple[str, str]] = []
    assert run(store(api).load("ns", "arena", UID, SPEC, on_problem=lambda *p: problems.append(p))) is None
    assert problems[0][0] == "CheckpointUnreadable"
    assert "503" in problems[0][1]


def test_a_load_remembers_the_version_so_the_next_save_replaces() -> None:
    api = FakeCheckpointApi()
    assert run(store(api).save("ns", "arena", UID, STATE, None, NOW))
    restarted = store(api, NOW + 3)
    assert run(restarted.load("ns", "arena", UID, SPEC)) is not None
    api.calls.clear()
    assert run(restarted.save("ns", "arena", UID, STATE, None, NOW + 4))
    assert api.calls == ["replace"]


def test_writes_beyond_the_bulkhead_are_skipped_not_queued() -> None:
    # Checkpoint I/O has threads of its own; when too many writes wait, a save is skipped (the schedule
    # retries it) instead of queueing, so checkpoints never hold up ticks.
    release = threading.Event()

    class SlowApi(FakeCheckpointApi):
        def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            release.wait(5)
            return super().create(namespace, body)

    api = SlowApi()
    s = CheckpointStore(api, clock=lambda: NOW, threads=1, max_pending=2)

    async def scenario() -> list[bool]:
        first = asyncio.ensure_future(s.save("ns", "a", UID, STATE, None, NOW))
        second = asyncio.ensure_future(s.save("ns", "b", UID, STATE, None, NOW))
        await asyncio.sleep(0.05)
        third = await s.save("ns", "c", UID, STATE, None, NOW)  # two pending: skipped at once
        release.set()
        return [await first, await second, third]

    assert run(scenario()) == [True, True, False]
    assert sorted(name for _, name in api.objects) == ["a", "b"]
