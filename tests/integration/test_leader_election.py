"""Leader election on the real API server: two electors in one process compete for a real Lease.

Both use client-go's durations (15 s / 10 s / 2 s) and the real monotonic clock. A sampler looks at both
`is_leader()` every 10 ms; the assertions are about that timeline: never both at once, and how long the
standby needed after the leader was killed (no release) or stopped (release).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

import pytest
from kubernetes import client

from surge.kube import request
from surge.leader import KubeLeaseApi, LeaderElector

pytestmark = pytest.mark.integration

LEASE, RENEW, RETRY = 15.0, 10.0, 2.0
LEASE_NAME = "surge-operator"
# A standby reads the Lease every 2-4.4 s (client-go's jitter): it sees the last renewal up to 4.4 s late,
# waits the lease duration from then and takes it on its next read, up to 4.4 s later.
WORST_TAKEOVER = LEASE + 2 * RETRY * 2.2


@dataclass
class Timeline:
    """Samples of both electors' is_leader() on the monotonic clock."""

    electors: tuple[LeaderElector, LeaderElector]
    overlaps: list[float] = field(default_factory=list)
    last_leading: dict[str, float] = field(default_factory=dict)
    first_leading: dict[str, float] = field(default_factory=dict)

    def observe(self) -> None:
        now = time.monotonic()
        leaders = [e.identity for e in self.electors if e.is_leader()]
        if len(leaders) > 1:
            self.overlaps.append(now)
        for who in leaders:
            self.first_leading.setdefault(who, now)
            self.last_leading[who] = now

    async def sample(self, every: float = 0.01) -> None:
        while True:
            self.observe()
            await asyncio.sleep(every)


def _elector(k8s_api: client.ApiClient, namespace: str, identity: str) -> LeaderElector:
    api = KubeLeaseApi(k8s_api, namespace, LEASE_NAME, timeout=5.0)
    return LeaderElector(api, identity, lease_duration=LEASE, renew_deadline=RENEW, retry_period=RETRY)


def _lease(k8s_api: client.ApiClient, namespace: str) -> dict[str, object]:
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE_NAME}"
    spec: dict[str, object] = request(k8s_api, "GET", path)["spec"]
    return spec


async def _within(seconds: float, what: str, awaitable: Awaitable[None]) -> None:
    try:
        async with asyncio.timeout(seconds):
            await awaitable
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}") from None


def test_killed_leader_is_replaced_after_the_lease_expires_without_overlap(
    k8s_api: client.ApiClient, namespace: str
) -> None:
    async def main() -> dict[str, float]:
        a, b = _elector(k8s_api, namespace, "replica-a"), _elector(k8s_api, namespace, "replica-b")
        timeline = Timeline((a, b))
        sampler = asyncio.create_task(timeline.sample())
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        task_a = asyncio.create_task(a.run(stop_a))
        await _within(10, "replica-a to lead", a.wait_until_leader())
        task_b = asyncio.create_task(b.run(stop_b))
        await asyncio.sleep(3 * RETRY)  # b watches a renew a few times
        assert a.is_leader()
        assert not b.is_leader()
        assert b.holder == "replica-a"

        # Kill a: its loop ends without releasing (as a SIGKILLed process), its Lease stays as it was.
        killed = time.monotonic()
        last_renewal = killed - (RENEW - a.remaining())
        task_a.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task_a
        await _within(WORST_TAKEOVER + 5, "replica-b to take over", b.wait_until_leader())
        took_over = time.monotonic()
        timeline.observe()
        sampler.cancel()
        stop_b.set()
        await task_b
        assert not timeline.overlaps, f"both led at {len(timeline.overlaps)} samples"
        # a stopped acting at its renew deadline; b began at least a lease duration after a's renewal.
        assert timeline.last_leading["replica-a"] == pytest.approx(last_renewal + RENEW, abs=0.1)
        assert timeline.first_leading["replica-b"] > timeline.last_leading["replica-a"]
        assert took_over - last_renewal >= LEASE
        assert took_over - last_renewal <= WORST_TAKEOVER + 1.0
        return {
            "kill_to_leader_s": took_over - killed,
            "last_renewal_to_leader_s": took_over - last_renewal,
            "gap_without_leader_s": timeline.first_leading["replica-b"] - timeline.last_leading["replica-a"],
        }

    measured = asyncio.run(main())
    spec = _lease(k8s_api, namespace)
    assert spec["leaseTransitions"] == 1
    assert spec["holderIdentity"] == ""  # b released it on its graceful stop
    print(f"\nfailover after kill (15/10/2 s): {measured}")


def test_stopped_leader_releases_and_the_standby_takes_over_at_once(
    k8s_api: client.ApiClient, namespace: str
) -> None:
    async def main() -> dict[str, float]:
        a, b = _elector(k8s_api, namespace, "replica-a"), _elector(k8s_api, namespace, "replica-b")
        timeline = Timeline((a, b))
        sampler = asyncio.create_task(timeline.sample())
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        task_a = asyncio.create_task(a.run(stop_a))
        await _within(10, "replica-a to lead", a.wait_until_leader())
        task_b = asyncio.create_task(b.run(stop_b))
        await asyncio.sleep(RETRY)
        stopped = time.monotonic()
        stop_a.set()
        await task_a
        released = await asyncio.to_thread(_lease, k8s_api, namespace)
        assert released["holderIdentity"] in ("", "replica-b")
        await _within(2 * RETRY * 2.2 + 2, "replica-b to take over", b.wait_until_leader())
        took_over = time.monotonic()
        timeline.observe()
        sampler.cancel()
        stop_b.set()
        await task_b
        assert not timeline.overlaps
        assert timeline.first_leading["replica-b"] > timeline.last_leading["replica-a"]
        return {"stop_to_leader_s": took_over - stopped}

    measured = asyncio.run(main())
    assert measured["stop_to_leader_s"] <= RETRY * 2.2 + 1.0
    print(f"\nfailover after graceful stop (15/10/2 s): {measured}")
