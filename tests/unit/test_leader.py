"""Leader election (surge.leader) against an in-memory Lease, on virtual time.

The fake server applies each write atomically with client-go's resourceVersion precondition; the fake
network in front of it can delay a request before and after the server applies it, refuse it, or lose the
answer of an applied write, and a request the client gave up on still reaches the server later (as a real
one in a worker thread does). Time is the event loop's virtual clock (tests/support/virtual_time.py), so
15 s leases take milliseconds and every instant can be checked.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client

from surge.config import OperatorConfig
from surge.leader import (
    LeaderElector,
    Lease,
    LeaseApiError,
    LeaseConflictError,
    LeaseGoneError,
    LeaseRecord,
    default_identity,
    elector_from_config,
    lease_from_json,
    lease_to_json,
)
from tests.support.virtual_time import VirtualTimeLoop, run_virtual

T = TypeVar("T")
LEASE, RENEW, RETRY = 15.0, 10.0, 2.0
JITTER = 0.5  # fixed jitter draw: a standby retries every 2 * (1 + 1.2 * 0.5) = 3.2 s
STANDBY_RETRY = RETRY * (1 + 1.2 * JITTER)


# --- fakes --------------------------------------------------------------------------------------------------
class FakeLeaseServer:
    """One Lease as the API server keeps it."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self.loop = loop
        self.lease: Lease | None = None
        self.down = False  # every request refused (API server unreachable)
        self.hang = False  # every request unanswered (until the client gives up)
        self.writes: list[tuple[float, LeaseRecord]] = []  # (virtual time applied, record)
        self.conflicts = 0
        self.in_flight: set[asyncio.Task[Any]] = set()  # requests on their way, whoever waits for them
        self._rv = 0

    def store(self, record: LeaseRecord) -> Lease:
        self._rv += 1
        self.lease = Lease(record, str(self._rv))
        self.writes.append((self.loop.time(), record))
        return self.lease

    def get(self) -> Lease | None:
        return self.lease

    def create(self, record: LeaseRecord) -> Lease:
        if self.lease is not None:
            self.conflicts += 1
            raise LeaseConflictError("409 AlreadyExists")
        return self.store(record)

    def replace(self, record: LeaseRecord, resource_version: str) -> Lease:
        if self.lease is None:
            raise LeaseGoneError("404 NotFound")
        if resource_version != self.lease.resource_version:
            self.conflicts += 1
            raise LeaseConflictError("409 Conflict")
        return self.store(record)

    def last_write_by(self, holder: str) -> float:
        return max(t for t, r in self.writes if r.holder == holder)

    async def shutdown(self) -> None:
        for task in list(self.in_flight):
            task.cancel()
        await asyncio.sleep(0)


@dataclass(frozen=True)
class Weather:
    """What the network does to one request."""

    before: float = 0.0  # delay until the server applies it
    after: float = 0.0  # delay of the answer
    refused: bool = False  # never reaches the server
    answer_lost: bool = False  # applied, but the client sees an error


CALM = Weather()


@dataclass
class FakeLeaseApi:
    server: FakeLeaseServer
    weather: Callable[[str], Weather] = lambda _op: CALM

    async def _call(self, op: str, apply: Callable[[], T]) -> T:
        w = self.weather(op)
        server = self.server

        async def travel() -> T:
            if server.hang:
                await asyncio.sleep(3600)
            if w.before:
                await asyncio.sleep(w.before)
            if w.refused or server.down:
                raise LeaseApiError(f"{op}: connection refused")
            result = apply()
            if w.after:
                await asyncio.sleep(w.after)
            if w.answer_lost:
                raise LeaseApiError(f"{op}: answer lost")
            return result

        # The request goes on when the caller gives up (a worker thread cannot be cancelled).
        task = asyncio.ensure_future(travel())
        server.in_flight.add(task)
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self.server.in_flight.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an answer nobody waits for any more is not an error

    async def get(self) -> Lease | None:
        return await self._call("get", self.server.get)

    async def create(self, record: LeaseRecord) -> Lease:
        return await self._call("create", lambda: self.server.create(record))

    async def replace(self, record: LeaseRecord, resource_version: str) -> Lease:
        return await self._call("replace", lambda: self.server.replace(record, resource_version))


def make_elector(
    server: FakeLeaseServer,
    identity: str,
    *,
    offset: float = 0.0,
    jitter: Callable[[], float] = lambda: JITTER,
    weather: Callable[[str], Weather] | None = None,
    on_change: Callable[[bool], None] | None = None,
) -> LeaderElector:
    loop = server.loop
    return LeaderElector(
        FakeLeaseApi(server, weather) if weather else FakeLeaseApi(server),
        identity,
        lease_duration=LEASE,
        renew_deadline=RENEW,
        retry_period=RETRY,
        # Each replica's own monotonic clock: any offset, same rate.
        clock=lambda: loop.time() + offset,
        jitter=jitter,
        wall_clock=lambda: datetime.fromtimestamp(1.8e9 + loop.time(), UTC),
        on_change=on_change,
    )


class Referee:
    """Checks at every loop iteration that at most one elector reports is_leader(); keeps the timeline."""

    def __init__(self, loop: VirtualTimeLoop, electors: list[LeaderElector]) -> None:
        self.loop = loop
        self.electors = electors
        self.overlaps: list[tuple[float, list[str]]] = []
        self.timeline: list[tuple[float, str | None]] = []  # (time, leader or None) at every change
        loop.on_iteration.append(self.check)

    def check(self) -> None:
        leaders = [e.identity for e in self.electors if e.is_leader()]
        if len(leaders) > 1 and len(self.overlaps) < 5:
            self.overlaps.append((self.loop.time(), leaders))
        now = leaders[0] if leaders else None
        if (self.timeline[-1][1] if self.timeline else None) != now:
            self.timeline.append((self.loop.time(), now))

    def first_lead(self, identity: str) -> float:
        return next(t for t, who in self.timeline if who == identity)


async def start(elector: LeaderElector) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    return asyncio.create_task(elector.run(stop)), stop


async def kill(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def sleep_until(loop: VirtualTimeLoop, t: float) -> None:
    await asyncio.sleep(max(0.0, t - loop.time()))


# --- acquire, renew, release --------------------------------------------------------------------------------
def test_the_first_replica_creates_the_lease_and_leads_at_once() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        changes: list[tuple[float, bool]] = []
        a = make_elector(server, "a", on_change=lambda leading: changes.append((loop.time(), leading)))
        assert not a.is_leader()
        task, stop = await start(a)
        await asyncio.wait_for(a.wait_until_leader(), 1)
        assert loop.time() == 0.0
        assert a.is_leader()
        assert server.lease is not None
        record = server.lease.record
        assert (record.holder, record.lease_duration_seconds, record.transitions) == ("a", 15, 0)
        assert record.acquire_time == record.renew_time == "2027-01-15T08:00:00.000000Z"
        stop.set()
        await task
        assert changes == [(0.0, True), (0.0, False)]

    run_virtual(main)


def test_the_leader_renews_every_retry_period_and_a_standby_never_takes_over() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        a, b = make_elector(server, "a"), make_elector(server, "b", offset=12345.6)
        referee = Referee(loop, [a, b])
        (ta, sa), (tb, sb) = await start(a), await start(b)
        await sleep_until(loop, 119)
        assert referee.timeline == [(0.0, "a")]
        assert not b.is_leader()
        renewals = [t for t, r in server.writes if r.holder == "a"]
        assert renewals == pytest.approx([2.0 * i for i in range(60)])
        assert server.lease is not None
        assert server.lease.record.transitions == 0
        assert server.lease.record.acquire_time == "2027-01-15T08:00:00.000000Z"
        assert server.lease.record.renew_time == "2027-01-15T08:01:58.000000Z"
        assert a.remaining() == pytest.approx(RENEW - 1)
        assert b.holder == "a"
        sa.set()
        sb.set()
        await asyncio.gather(ta, tb)

    run_virtual(main)


def test_a_standby_takes_over_only_after_the_record_stood_still_for_the_lease_duration() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        a, b = make_elector(server, "a"), make_elector(server, "b", offset=-777.0)
        referee = Referee(loop, [a, b])
        ta, _ = await start(a)
        await asyncio.sleep(1)
        tb, sb = await start(b)
        await sleep_until(loop, 31)
        await kill(ta)  # a killed process: no release
        last = server.last_write_by("a")
        assert last == 30.0
        # a stops acting when its renew deadline passes, b starts at least lease_duration after a's renewal.
        await sleep_until(loop, last + RENEW - 0.001)
        assert a.is_leader()
        assert not b.is_leader()
        await sleep_until(loop, last + RENEW)
        assert not a.is_leader()
        await asyncio.wait_for(b.wait_until_leader(), 60)
        took_over = loop.time()
        # b saw the last renewal at most one plain retry period late and woke when that record expired.
        assert last + LEASE <= took_over <= last + LEASE + RETRY + 0.01
        assert referee.overlaps == []
        assert server.lease is not None
        record = server.lease.record
        assert (record.holder, record.transitions) == ("b", 1)
        assert record.acquire_time == record.renew_time
        sb.set()
        await tb

    run_virtual(main)


@pytest.mark.parametrize("phase", [0.0, 0.3, 1.0, 1.7, 1.999])
@pytest.mark.parametrize("killed_after_renewal", [0.0, 0.9, 1.99])
@pytest.mark.parametrize("jitter", [0.0, 0.5, 1.0])
def test_a_killed_leader_is_replaced_within_lease_duration_plus_one_retry_period_of_its_last_renewal(
    phase: float, killed_after_renewal: float, jitter: float
) -> None:
    """Whatever the phase of the standby's polls, the moment of the kill and the jitter draw (CI once
    measured 15.5 s when a jittered poll and a jittered retry both fell late: up to 10 + 4.4 + 4.4 s)."""

    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        a = make_elector(server, "a")
        b = make_elector(server, "b", offset=123.4, jitter=lambda: jitter)
        referee = Referee(loop, [a, b])
        ta, _ = await start(a)
        await asyncio.sleep(phase + 0.001)
        tb, sb = await start(b)
        await sleep_until(loop, 20.0 + killed_after_renewal)
        await kill(ta)
        last = server.last_write_by("a")
        await asyncio.wait_for(b.wait_until_leader(), 60)
        took_over = referee.first_lead("b")
        assert last + LEASE <= took_over <= last + LEASE + RETRY + 0.01, (last, took_over)
        assert referee.overlaps == []
        sb.set()
        await tb

    run_virtual(main)


def test_a_graceful_stop_releases_the_lease_and_the_standby_takes_over_at_once() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        a, b = make_elector(server, "a"), make_elector(server, "b")
        referee = Referee(loop, [a, b])
        (ta, sa), (tb, sb) = await start(a), await start(b)
        await sleep_until(loop, 20.5)
        sa.set()
        await ta
        assert not a.is_leader()
        assert server.lease is not None
        released = server.lease.record
        assert (released.holder, released.lease_duration_seconds, released.transitions) == ("", 1, 0)
        assert await a.release() is False  # nothing left to release
        await asyncio.wait_for(b.wait_until_leader(), STANDBY_RETRY + 0.01)
        assert referee.timeline[:2] == [(0.0, "a"), (20.5, None)]
        assert 20.5 < referee.first_lead("b") <= 20.5 + STANDBY_RETRY
        assert referee.overlaps == []
        assert server.lease.record.transitions == 1
        sb.set()
        await tb

    run_virtual(main)


# --- races and failures -------------------------------------------------------------------------------------
def _slow(op: str) -> Weather:
    return Weather(before=0.1)


@pytest.mark.parametrize("existing", [False, True], ids=["both-create", "both-take-expired"])
def test_two_replicas_racing_for_the_lease_get_one_winner_and_one_409(existing: bool) -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        if existing:  # a holder that died long ago
            server.store(LeaseRecord("gone", 15, "", "", 4))
        a = make_elector(server, "a", weather=_slow)
        b = make_elector(server, "b", weather=_slow)
        referee = Referee(loop, [a, b])
        (ta, sa), (tb, sb) = await start(a), await start(b)
        await sleep_until(loop, 60)
        assert server.conflicts == 1  # both wrote on the same version; the server took exactly one
        winners = {who for _, who in referee.timeline if who}
        assert len(winners) == 1
        assert referee.overlaps == []
        assert server.lease is not None
        assert server.lease.record.transitions == (5 if existing else 0)
        sa.set()
        sb.set()
        await asyncio.gather(ta, tb)

    run_virtual(main)


@pytest.mark.parametrize("outage", ["refused", "hanging"])
def test_a_leader_that_cannot_renew_stops_at_the_renew_deadline_and_comes_back(outage: str) -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        changes: list[tuple[float, bool]] = []
        a = make_elector(server, "a", on_change=lambda leading: changes.append((loop.time(), leading)))
        ta, sa = await start(a)
        await sleep_until(loop, 21)
        setattr(server, "down" if outage == "refused" else "hang", True)
        last = server.last_write_by("a")
        assert last == 20.0
        await sleep_until(loop, last + RENEW - 0.001)
        assert a.is_leader()
        assert a.remaining() == pytest.approx(0.001)
        await asyncio.wait_for(a.wait_until_lost(), 1)
        assert loop.time() == pytest.approx(last + RENEW)
        assert not a.is_leader()
        assert changes == [(0.0, True), (last + RENEW, False)]
        await sleep_until(loop, 40)
        server.down = server.hang = False
        await asyncio.wait_for(a.wait_until_leader(), STANDBY_RETRY + RENEW)
        assert server.lease is not None
        assert (server.lease.record.holder, server.lease.record.transitions) == ("a", 0)  # its own again
        sa.set()
        await ta

    run_virtual(main)


def test_a_leader_steps_down_at_once_when_it_sees_another_holder() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        a = make_elector(server, "a")
        ta, sa = await start(a)
        await sleep_until(loop, 5)
        assert server.lease is not None
        server.store(LeaseRecord("intruder", 15, "", "", 1))  # e.g. `kubectl edit` of the Lease
        await asyncio.wait_for(a.wait_until_lost(), RETRY + 0.01)
        assert a.holder == "intruder"
        sa.set()
        await ta
        assert server.lease.record.holder == "intruder"  # nothing to release: it is not ours

    run_virtual(main)


def test_release_after_a_lost_answer_still_clears_the_holder() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        lose_next_replace = [False]

        def weather(op: str) -> Weather:
            if op == "replace" and lose_next_replace[0]:
                lose_next_replace[0] = False
                return Weather(answer_lost=True)
            return CALM

        a = make_elector(server, "a", weather=weather)
        ta, sa = await start(a)
        await sleep_until(loop, 5)
        lose_next_replace[0] = True  # the renewal at 6 s is applied, its answer lost: our version is stale
        await sleep_until(loop, 6.5)
        sa.set()
        await ta
        assert server.lease is not None
        assert server.lease.record.holder == ""
        assert server.conflicts == 1  # the stale release, then the retry on the current version

    run_virtual(main)


def test_a_renewal_counts_from_when_it_was_sent_not_from_its_slow_answer() -> None:
    """a's renewal at 10 s is applied at once but answered 7 s late, then a is cut off. Counting from
    the answer, a would act until 27 s while b takes over at 25.5 s."""

    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)

        def a_network(op: str) -> Weather:
            if loop.time() >= 10.5:
                return Weather(refused=True)
            return Weather(after=7.0) if op == "replace" and loop.time() == 10.0 else CALM

        a = make_elector(server, "a", weather=a_network)
        b = make_elector(server, "b")
        referee = Referee(loop, [a, b])
        ta, _ = await start(a)
        await asyncio.sleep(0.5)
        tb, sb = await start(b)  # b polls every 2 s from 0.5 s: it sees a's record of 10 s at 10.5 s
        await sleep_until(loop, 17.5)
        assert a.is_leader()  # the slow answer arrived: a renewed...
        assert a.remaining() == pytest.approx(2.5)  # ...as of 10 s, when it sent the renewal
        await asyncio.wait_for(b.wait_until_leader(), 30)
        assert loop.time() == pytest.approx(25.5)
        assert referee.overlaps == []
        assert referee.timeline == [(0.0, "a"), (20.0, None), (pytest.approx(25.5), "b")]
        await kill(ta)
        sb.set()
        await tb

    run_virtual(main)


def test_a_standby_counts_from_when_it_received_the_record_not_from_its_slow_request() -> None:
    """b's read sent at 2.5 s reaches the server at 11.7 s and sees a's renewal of 10 s; a is cut off at
    10.5 s. Counting from the request, b would take over at 17.5 s while a acts until 20 s."""

    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        a = make_elector(server, "a", weather=lambda _op: Weather(refused=loop.time() >= 10.5))
        b = make_elector(
            server, "b", weather=lambda op: Weather(before=9.2) if abs(loop.time() - 2.5) < 1e-6 else CALM
        )
        referee = Referee(loop, [a, b])
        ta, _ = await start(a)
        await asyncio.sleep(0.5)
        tb, sb = await start(b)
        await asyncio.wait_for(b.wait_until_leader(), 60)
        assert loop.time() >= 11.7 + LEASE
        assert referee.overlaps == []
        await kill(ta)
        sb.set()
        await tb

    run_virtual(main)


def test_a_lease_deleted_under_a_live_holder_is_not_taken_before_it_would_have_expired() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        server = FakeLeaseServer(loop)
        a, b = make_elector(server, "a"), make_elector(server, "b")
        referee = Referee(loop, [a, b])
        (ta, _), (tb, sb) = await start(a), await start(b)
        await sleep_until(loop, 10.5)
        await kill(ta)
        server.lease = None  # deleted by hand while a may still act (until 10 + RENEW)
        await asyncio.wait_for(b.wait_until_leader(), 60)
        assert referee.overlaps == []
        # b never saw a's renewal of 10 s, but one at most a poll period older: it waits a lease from that.
        assert loop.time() >= 10.0 - RETRY + LEASE
        sb.set()
        await tb

    run_virtual(main)


@pytest.mark.parametrize(
    ("lease", "renew", "retry"),
    [(15, 15, 2), (15, 10, 9), (15, 10, 0), (10, 15, 2)],
)
def test_durations_must_leave_room_between_renew_deadline_and_lease(
    lease: float, renew: float, retry: float
) -> None:
    api = FakeLeaseApi(FakeLeaseServer(VirtualTimeLoop()))
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        LeaderElector(api, "a", lease_duration=lease, renew_deadline=renew, retry_period=retry)
    with pytest.raises(ValueError, match="identity"):
        LeaderElector(api, "")


def test_the_elector_of_surge_run_follows_the_operator_config() -> None:
    cfg = OperatorConfig(leader_election=True, lease_name="l", lease_duration=30, renew_deadline=20)
    elector = elector_from_config(cfg, client.ApiClient(client.Configuration()))
    assert repr(elector).endswith("on Lease default/l)")  # no POD_NAMESPACE: the "default" namespace
    assert (elector.lease_duration, elector.renew_deadline, elector.retry_period) == (30, 20, 2)
    assert elector.identity == default_identity()
    named = replace(cfg, lease_namespace="surge-system", identity="pod-a")
    elector = elector_from_config(named, client.ApiClient(client.Configuration()))
    assert repr(elector) == "LeaderElector(pod-a on Lease surge-system/l)"


# --- the JSON of a Lease ------------------------------------------------------------------------------------
def test_lease_json_round_trip() -> None:
    record = LeaseRecord("pod-1_1", 15, "2027-01-15T08:00:00.000000Z", "2027-01-15T08:00:02.000000Z", 3)
    body = lease_to_json("surge-operator", "surge-system", record, "42")
    assert body["spec"] == {
        "holderIdentity": "pod-1_1",
        "leaseDurationSeconds": 15,
        "leaseTransitions": 3,
        "acquireTime": "2027-01-15T08:00:00.000000Z",
        "renewTime": "2027-01-15T08:00:02.000000Z",
    }
    assert body["metadata"] == {
        "name": "surge-operator",
        "namespace": "surge-system",
        "resourceVersion": "42",
    }
    assert lease_from_json(body) == Lease(record, "42")
    assert "resourceVersion" not in lease_to_json("n", "ns", record)["metadata"]


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"holderIdentity": 7, "leaseDurationSeconds": "15", "leaseTransitions": True, "renewTime": None},
    ],
)
def test_a_lease_written_by_someone_else_reads_as_empty_fields(spec: dict[str, Any]) -> None:
    lease = lease_from_json({"metadata": {"resourceVersion": "9"}, "spec": spec})
    assert lease == Lease(LeaseRecord("", 0, "", "", 0), "9")


@pytest.mark.parametrize("obj", [None, "text", {"spec": {}}, {"metadata": {"resourceVersion": 3}}])
def test_a_garbled_answer_is_an_api_error(obj: Any) -> None:
    with pytest.raises(LeaseApiError):
        lease_from_json(obj)


# --- no two leaders, whatever happens -----------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    replicas: int
    offsets: tuple[float, ...]
    seed: int
    refused: float  # probability per request
    answer_lost: float
    max_delay: float
    # (time, what, replica): kill (no release), stop (graceful), start (a new process), cut / heal (the
    # replica's network: while cut, every request it sends is refused)
    events: tuple[tuple[float, str, int], ...]


EVENTS = ["kill", "stop", "start", "cut", "heal"]
scenarios = st.integers(2, 3).flatmap(
    lambda n: st.builds(
        Scenario,
        replicas=st.just(n),
        offsets=st.tuples(*[st.floats(-1e6, 1e6, allow_nan=False)] * n),
        seed=st.integers(0, 2**32),
        refused=st.sampled_from([0.0, 0.1, 0.5]),
        answer_lost=st.sampled_from([0.0, 0.1, 0.3]),
        max_delay=st.sampled_from([0.0, 0.5, 3.0, 12.0]),
        events=st.lists(
            st.tuples(st.floats(0, 150), st.sampled_from(EVENTS), st.integers(0, n - 1)),
            max_size=10,
        ).map(lambda es: tuple(sorted(es))),
    )
)


def _simulate(s: Scenario, horizon: float = 200.0) -> Referee:
    rng = random.Random(s.seed)
    cut: set[int] = set()

    def weather_of(i: int) -> Callable[[str], Weather]:
        return lambda _op: Weather(refused=True) if i in cut else weather()

    def weather() -> Weather:
        return Weather(
            before=rng.uniform(0, s.max_delay) if rng.random() < 0.5 else 0.0,
            after=rng.uniform(0, s.max_delay) if rng.random() < 0.5 else 0.0,
            refused=rng.random() < s.refused,
            answer_lost=rng.random() < s.answer_lost,
        )

    async def main(loop: VirtualTimeLoop) -> Referee:
        server = FakeLeaseServer(loop)
        everyone: list[LeaderElector] = []  # killed ones too: they keep answering is_leader()
        referee = Referee(loop, everyone)
        running: dict[int, tuple[asyncio.Task[None], asyncio.Event]] = {}
        generation = 0

        async def begin(i: int) -> None:
            nonlocal generation
            generation += 1
            e = make_elector(
                server, f"r{i}-{generation}", offset=s.offsets[i], jitter=rng.random, weather=weather_of(i)
            )
            everyone.append(e)
            running[i] = await start(e)

        for i in range(s.replicas):
            await begin(i)
        for t, what, i in s.events:
            await sleep_until(loop, t)
            if what == "start" and i not in running:
                await begin(i)
            elif what == "kill" and i in running:
                await kill(running.pop(i)[0])
            elif what == "stop" and i in running:
                task, stop = running.pop(i)
                stop.set()
                await task
            elif what == "cut":
                cut.add(i)
            elif what == "heal":
                cut.discard(i)
        await sleep_until(loop, horizon)
        for task, stop in running.values():
            stop.set()
            await task
        await server.shutdown()
        return referee

    return run_virtual(main)


@settings(max_examples=200, deadline=None)
@given(scenarios)
def test_no_two_electors_are_ever_leader_at_the_same_instant(s: Scenario) -> None:
    referee = _simulate(s)
    assert referee.overlaps == []


def test_the_simulation_elects_someone_when_the_api_is_calm() -> None:
    referee = _simulate(
        Scenario(3, (0.0, 5e5, -3.0), 1, 0.0, 0.0, 0.5, ((50.0, "kill", 0), (90.0, "stop", 1)))
    )
    assert referee.overlaps == []
    leaders = [who for _, who in referee.timeline if who]
    assert len(leaders) >= 2  # a leader, then another after the kill
