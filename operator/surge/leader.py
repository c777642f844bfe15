"""Leader election on a coordination.k8s.io/v1 Lease: several replicas, one acts.

The semantics and names are client-go's (lease duration 15 s, renew deadline 10 s, retry period 2 s), with
one deliberate tightening: `is_leader()` is true only while this replica's last *successful* renewal is
younger than the renew deadline, measured from the moment that renewal was *sent*. A standby takes the
Lease only after the record it observed has not changed for the lease duration, measured from the moment
it *received* that record. The server applies a renewal after it is sent and before anyone can read it, so
a replica that cannot renew stops acting at least `lease_duration - renew_deadline` (5 s) before another
may start. Both durations are measured on each replica's own monotonic clock, so skew between machines
does not matter (only their rates, which differ by far less than 5 s in 15 s).

Writes carry the resourceVersion of the record they replace: two replicas racing for the Lease get one
success and one 409, never two winners.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.config import OperatorConfig
from surge.kube import request

log = logging.getLogger(__name__)

# A wake-up that lands this close before the renew deadline counts as at it: float rounding of
# `clock() + offset` must not make the loop wait again for a span too small to pass.
CLOCK_SLACK = 1e-6
# client-go's JitterFactor: a standby waits retry_period * (1 + 1.2 * rand) between attempts.
JITTER_FACTOR = 1.2


# --- the Lease and the port to the API server ---------------------------------------------------------------
@dataclass(frozen=True)
class LeaseRecord:
    """The spec of a Lease, as leader election reads and writes it (client-go's LeaderElectionRecord)."""

    holder: str  # "" = nobody (released)
    lease_duration_seconds: int
    acquire_time: str  # MicroTime text; informational only, never used for decisions
    renew_time: str
    transitions: int


@dataclass(frozen=True)
class Lease:
    record: LeaseRecord
    resource_version: str


class LeaseApiError(Exception):
    """Any failure to read or write the Lease (HTTP error, timeout, connection refused, garbled answer)."""


class LeaseConflictError(LeaseApiError):
    """409: the Lease changed since it was read (replace) or already exists (create)."""


class LeaseGoneError(LeaseApiError):
    """404 on replace: the Lease was deleted since it was read."""


class LeaseApi(Protocol):
    """One named Lease. `replace` succeeds only if the Lease still has `resource_version`."""

    async def get(self) -> Lease | None: ...

    async def create(self, record: LeaseRecord) -> Lease: ...

    async def replace(self, record: LeaseRecord, resource_version: str) -> Lease: ...


def micro_time(at: datetime) -> str:
    """Kubernetes MicroTime text (RFC 3339 with microseconds, UTC)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _section(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def lease_from_json(obj: Any) -> Lease:
    """A Lease from the API's JSON; fields of the wrong type read as empty (anyone may have written it)."""
    if not isinstance(obj, dict):
        raise LeaseApiError(f"expected a Lease object, got {type(obj).__name__}")
    meta = _section(obj, "metadata")
    spec = _section(obj, "spec")
    rv = meta.get("resourceVersion")
    if not isinstance(rv, str) or not rv:
        raise LeaseApiError("Lease without metadata.resourceVersion")

    def text(key: str) -> str:
        value = spec.get(key)
        return value if isinstance(value, str) else ""

    return Lease(
        record=LeaseRecord(
            holder=text("holderIdentity"),
            lease_duration_seconds=_int(spec.get("leaseDurationSeconds")),
            acquire_time=text("acquireTime"),
            renew_time=text("renewTime"),
            transitions=_int(spec.get("leaseTransitions")),
        ),
        resource_version=rv,
    )


def lease_to_json(
    name: str, namespace: str, record: LeaseRecord, resource_version: str = ""
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if resource_version:
        meta["resourceVersion"] = resource_version
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.lease_duration_seconds,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time:
        spec["acquireTime"] = record.acquire_time
    if record.renew_time:
        spec["renewTime"] = record.renew_time
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}


class KubeLeaseApi:
    """The Lease on the API server, through `surge.kube.request` in a worker thread.

    The worker is this object's own single thread, not the loop's default executor: under load every I/O
    thread may be busy with ticks, and a renewal queued behind them would cost the leadership.
    """

    def __init__(self, api: client.ApiClient, namespace: str, name: str, *, timeout: float = 5.0) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self._timeout = timeout
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="surge-lease")

    def __repr__(self) -> str:
        return f"Lease {self._namespace}/{self._name}"

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        def send() -> Any:
            return request(self._api, method, path, body=body, timeout=self._timeout)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, send)
        except ApiException as exc:
            status = exc.status or 0
            message = f"{method} {self!r}: HTTP {status} {exc.reason or ''}".strip()
            if status == 409:
                raise LeaseConflictError(message) from None
            if status == 404:
                raise LeaseGoneError(message) from None
            raise LeaseApiError(message) from None
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise LeaseApiError(f"{method} {self!r}: {type(exc).__name__}: {exc}") from None

    async def get(self) -> Lease | None:
        try:
            return lease_from_json(await self._call("GET", f"{self._collection}/{self._name}"))
        except LeaseGoneError:
            return None

    async def create(self, record: LeaseRecord) -> Lease:
        body = lease_to_json(self._name, self._namespace, record)
        return lease_from_json(await self._call("POST", self._collection, body))

    async def replace(self, record: LeaseRecord, resource_version: str) -> Lease:
        body = lease_to_json(self._name, self._namespace, record, resource_version)
        return lease_from_json(await self._call("PUT", f"{self._collection}/{self._name}", body))


def elector_from_config(
    cfg: OperatorConfig, api: client.ApiClient, *, on_change: Callable[[bool], None] | None = None
) -> LeaderElector:
    """The elector `surge run --leader-elect` uses: the Lease in the pod's namespace (else "default")."""
    lease_api = KubeLeaseApi(
        api,
        cfg.lease_namespace or "default",
        cfg.lease_name,
        # Below the renew deadline, so one hung request cannot hold the Lease client's thread past it.
        timeout=min(5.0, cfg.renew_deadline / 2),
    )
    return LeaderElector(
        lease_api,
        cfg.identity or default_identity(),
        lease_duration=cfg.lease_duration,
        renew_deadline=cfg.renew_deadline,
        retry_period=cfg.retry_period,
        on_change=on_change,
    )


def default_identity() -> str:
    """hostname (the pod's name in a cluster) and pid: unique per replica, stable across nothing else."""
    return f"{socket.gethostname()}_{os.getpid()}"


# --- the elector --------------------------------------------------------------------------------------------
class LeaderElector:
    """Acquires, renews and releases one Lease; `is_leader()` says whether this replica may act right now.

    `clock` must be the event loop's clock (monotonic; the default is the same clock asyncio uses), because
    waits and timeouts run on the loop. `on_change(leading)` is called on every transition (e.g. a gauge).
    """

    def __init__(
        self,
        api: LeaseApi,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if not identity:
            raise ValueError("leader election needs a non-empty identity")
        if not 0 < retry_period * JITTER_FACTOR < renew_deadline < lease_duration:
            # client-go's own validation: a standby must not take over while the leader may still renew.
            raise ValueError(
                "leader election needs lease_duration > renew_deadline > 1.2 * retry_period > 0, got "
                f"{lease_duration} / {renew_deadline} / {retry_period}"
            )
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._api = api
        self._clock = clock
        self._jitter = jitter
        self._wall = wall_clock
        self._on_change = on_change
        # What this replica last saw of the Lease and when it first saw that version (own clock).
        self._observed: Lease | None = None
        self._observed_at = 0.0
        # When the last successful acquire/renew was sent; None = not holding.
        self._renewed_at: float | None = None
        self._leading = asyncio.Event()
        self._not_leading = asyncio.Event()
        self._not_leading.set()
        self._last_error = ""

    def __repr__(self) -> str:
        return f"LeaderElector({self.identity} on {self._api!r})"

    # -- what the rest of the operator asks -----------------------------------------------------------------
    def is_leader(self) -> bool:
        return self.remaining() > 0

    def remaining(self) -> float:
        """Seconds this replica may still act without another successful renewal (0 = not leader)."""
        if self._renewed_at is None:
            return 0.0
        return max(0.0, self._renewed_at + self.renew_deadline - self._clock())

    async def wait_until_leader(self) -> None:
        while not self.is_leader():
            await self._leading.wait()
            if not self.is_leader():  # the event can be stale by a few ms after a missed deadline
                await asyncio.sleep(min(self.retry_period, 0.1))

    async def wait_until_lost(self) -> None:
        """Returns once this replica is not leader (at once if it is not)."""
        while self.is_leader():
            await self._not_leading.wait()
            if self.is_leader():
                await asyncio.sleep(min(self.retry_period, 0.1))

    @property
    def holder(self) -> str:
        """The holder of the Lease as last observed ("" = none or unknown)."""
        return self._observed.record.holder if self._observed else ""

    # -- the loop -------------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Acquire, then renew until leadership is lost (then acquire again), until `stop` is set.

        On `stop` a holder releases the Lease so a standby takes over at once. Cancelling the task instead
        releases nothing (as a killed process would): `is_leader()` turns false at the renew deadline and
        the Lease expires on its own, so a standby waits 15-23 s instead of 2-4 s. Prefer `stop`.
        """
        log.info("leader election: %s competing for %r", self.identity, self._api)
        while not stop.is_set():
            if await self._acquire(stop):
                await self._renew(stop)
        await self.release()

    async def _acquire(self, stop: asyncio.Event) -> bool:
        while not stop.is_set():
            if await self._attempt(self.renew_deadline):
                self._set_leading(True)
                log.info("leader election: %s became leader", self.identity)
                return True
            if await _stopped_within(stop, self._standby_delay()):
                return False
        return False

    async def _renew(self, stop: asyncio.Event) -> None:
        next_attempt = self._clock() + self.retry_period
        while True:
            deadline = self._deadline()
            if await _stopped_within(stop, max(0.0, min(next_attempt, deadline) - self._clock())):
                return
            now = self._clock()
            if now >= deadline - CLOCK_SLACK:
                self._lose(f"no successful renewal within {self.renew_deadline:g} s ({self._last_error})")
                return
            if await self._attempt(deadline - now):
                next_attempt = now + self.retry_period
            elif self.holder and self.holder != self.identity:
                self._lose(f"the Lease is held by {self.holder}")
                return
            else:
                next_attempt = self._clock() + self.retry_period

    def _standby_delay(self) -> float:
        """How long a replica that does not hold the Lease waits before its next attempt.

        client-go's jittered retry period, except while another replica holds a live Lease: then poll on the
        plain retry period (its last renewal is seen at most one period late) and wake the moment the
        record would expire, not up to a jittered period after it. A SIGKILLed leader is thus replaced
        within lease_duration + retry_period of its last renewal (10 + 2 s as shipped) instead of up to
        lease_duration + 2 x 2.2 x retry_period (18.8 s, measured 15.5 s in CI). GETs are all a poll costs.
        """
        jittered = self.retry_period * (1 + JITTER_FACTOR * self._jitter())
        if self._observed is None or self.holder in ("", self.identity):
            return jittered
        until_expiry = self._expiry() - self._clock()
        if until_expiry <= 0:  # expired, yet the takeover failed (a 409 or an error): client-go's pace
            return jittered
        return min(self.retry_period, until_expiry + CLOCK_SLACK)

    def _deadline(self) -> float:
        return (self._renewed_at if self._renewed_at is not None else -math.inf) + self.renew_deadline

    # -- one try (client-go's tryAcquireOrRenew) ------------------------------------------------------------
    async def _attempt(self, within: float) -> bool:
        try:
            async with asyncio.timeout(within):
                return await self._try_acquire_or_renew()
        except TimeoutError:
            self._failed(f"no answer within {within:.1f} s")
        except LeaseApiError as exc:
            self._failed(str(exc))
        except Exception as exc:  # a bug or a surprise must not end leader election for good
            self._failed(f"{type(exc).__name__}: {exc}")
        return False

    async def _try_acquire_or_renew(self) -> bool:
        wall = micro_time(self._wall())
        lease = await self._api.get()
        if lease is None:
            if self._observed is not None and self.holder not in ("", self.identity) and not self._expired():
                return False  # deleted under a live holder: wait until the record we saw would expire
            record = LeaseRecord(self.identity, self._duration_seconds(), wall, wall, 0)
            sent = self._clock()
            self._succeeded(await self._api.create(record), sent)
            return True
        self._observe(lease)
        old = lease.record
        mine = old.holder == self.identity
        if old.holder and not mine and not self._expired():
            return False
        record = LeaseRecord(
            holder=self.identity,
            lease_duration_seconds=self._duration_seconds(),
            acquire_time=old.acquire_time if mine else wall,
            renew_time=wall,
            transitions=old.transitions if mine else old.transitions + 1,
        )
        sent = self._clock()
        self._succeeded(await self._api.replace(record, lease.resource_version), sent)
        return True

    def _observe(self, lease: Lease) -> None:
        if lease != self._observed:
            if self._observed is None or lease.record.holder != self._observed.record.holder:
                log.info("leader election: the Lease is held by %r", lease.record.holder or None)
            self._observed = lease
            self._observed_at = self._clock()

    def _expiry(self) -> float:
        """When the observed record expires on this replica's clock."""
        assert self._observed is not None
        # Never trust a holder's advertised duration to be shorter than our own.
        duration = max(float(self._observed.record.lease_duration_seconds), self.lease_duration)
        return self._observed_at + duration

    def _expired(self) -> bool:
        return self._clock() >= self._expiry()

    def _succeeded(self, lease: Lease, sent: float) -> None:
        self._observed = lease
        self._observed_at = sent
        self._renewed_at = sent
        if self._last_error:
            log.info("leader election: %s renewed the Lease again", self.identity)
        self._last_error = ""

    def _failed(self, why: str) -> None:
        if why != self._last_error:  # one line per distinct failure, not one per retry
            log.warning("leader election: %s: %s; retrying every %g s", self.identity, why, self.retry_period)
        self._last_error = why

    def _duration_seconds(self) -> int:
        return math.ceil(self.lease_duration)

    # -- transitions ----------------------------------------------------------------------------------------
    def _set_leading(self, leading: bool) -> None:
        if leading:
            self._not_leading.clear()
            self._leading.set()
        else:
            self._renewed_at = None
            self._leading.clear()
            self._not_leading.set()
        if self._on_change is not None:
            self._on_change(leading)

    def _lose(self, why: str) -> None:
        self._set_leading(False)
        log.warning("leader election: %s lost leadership: %s", self.identity, why)

    async def release(self) -> bool:
        """Stop acting, then clear holderIdentity so a standby takes over at once (graceful stop).

        Returns True when the Lease was released; False when this replica did not hold it or the write
        failed (the Lease then expires on its own).
        """
        was_leading = self._renewed_at is not None
        if was_leading:
            self._set_leading(False)  # before the write: nobody may act twice, even for a moment
        if self.holder != self.identity or self._observed is None:
            return False
        lease = self._observed
        wall = micro_time(self._wall())
        # client-go's release: no holder, duration 1 s, the transition count kept.
        released = replace(lease.record, holder="", lease_duration_seconds=1, renew_time=wall)
        try:
            async with asyncio.timeout(self.renew_deadline):
                try:
                    self._observed = await self._api.replace(released, lease.resource_version)
                except LeaseConflictError:
                    # Our last renewal's answer may have been lost: release the current version if ours.
                    current = await self._api.get()
                    if current is None or current.record.holder != self.identity:
                        return False
                    released = replace(current.record, holder="", lease_duration_seconds=1, renew_time=wall)
                    self._observed = await self._api.replace(released, current.resource_version)
        except (TimeoutError, LeaseApiError) as exc:
            why = str(exc) or "no answer"
            log.warning("leader election: %s could not release the Lease: %s", self.identity, why)
            return False
        log.info("leader election: %s released the Lease", self.identity)
        return True


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Waits up to `seconds`; True as soon as `stop` is set."""
    if stop.is_set():
        return True
    try:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation.
        async with asyncio.timeout(max(0.0, seconds)):
            await stop.wait()
    except TimeoutError:
        return False
    return True
