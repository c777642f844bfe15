"""The real data plane: bots that open real TCP connections to game servers and play.

Each bot is one player who wants to play: it asks the matchmaker for the least-loaded server with a free slot,
sends JOIN, and on WELCOME sends INPUT at `input_rate` (waiting for each STATE echo); on REJECT it waits
`retry_interval` and tries again; when its server drops it, it rejoins (churn). The controller starts and
stops bots each step so their number follows the scenario's demand. A control connection per server asks STATS
every step (capacity, CPU request).

The fleet is a fixed list of addresses (`--servers`) or is discovered (`--servers-from-k8s NS/SELECTOR`): the
Ready pods matching a label selector, listed again every few seconds, so pods that come and go are followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from surge_game import protocol as p

from surge_loadgen.sim import is_ready
from surge_loadgen.timeline import Sample, dominant

log = logging.getLogger(__name__)

Address = tuple[str, int]


def parse_servers(text: str) -> list[Address]:
    """'127.0.0.1:7000,127.0.0.1:7001' -> [(host, port), ...]."""
    out: list[Address] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"expected host:port, got {item!r}")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ValueError("no servers given")
    return out


DEFAULT_GAME_PORT = 7000
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def parse_k8s_target(text: str) -> tuple[str, str]:
    """'games/app=arena' -> ('games', 'app=arena'): a namespace and a label selector."""
    namespace, sep, selector = text.partition("/")
    if not sep or not _DNS_LABEL.match(namespace) or not selector.strip():
        raise ValueError(f"expected NAMESPACE/LABELSELECTOR (e.g. games/app=arena), got {text!r}")
    return namespace, selector.strip()


@dataclass(frozen=True)
class Fleet:
    """A discovered fleet: the game addresses of its Ready pods, and how many pods it has (Ready or not)."""

    addresses: tuple[Address, ...]
    pods: int


def fleet_from_pods(pods: list[dict[str, Any]], default_port: int = DEFAULT_GAME_PORT) -> Fleet:
    """Pods (raw JSON) -> Fleet. The port is the container port named 'game', else `default_port`."""
    addresses: list[Address] = []
    alive = 0
    for pod in pods:
        status = pod.get("status") or {}
        if pod["metadata"].get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
            continue
        alive += 1
        if not is_ready(pod) or not status.get("podIP"):
            continue
        ports = [port for c in pod["spec"]["containers"] for port in c.get("ports") or []]
        port = next((q["containerPort"] for q in ports if q.get("name") == "game"), default_port)
        addresses.append((status["podIP"], int(port)))
    return Fleet(tuple(sorted(addresses)), alive)


class PodDiscovery:
    """`--servers-from-k8s NAMESPACE/SELECTOR`: lists the matching pods (blocking; call it in a thread).

    Needs only `list` on pods in that namespace (in a pod: its service account).
    """

    def __init__(self, api: Any, namespace: str, selector: str) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api)
        self.namespace, self.selector = namespace, selector

    def __call__(self) -> Fleet:
        response = self.core.list_namespaced_pod(
            self.namespace, label_selector=self.selector, _preload_content=False
        )
        return fleet_from_pods(json.loads(cast(Any, response).data)["items"])


class _ServerView:
    """The loadgen's view of one server: STATS over a control connection, plus its own bots on it."""

    def __init__(self, address: Address) -> None:
        self.address = address
        self.stats: p.Stats | None = None
        self.bots = 0  # own bots joining or playing there (exact: the servers only see our bots)
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def refresh(self, io_timeout: float) -> None:
        try:
            if self._conn is None:
                self._conn = await asyncio.wait_for(asyncio.open_connection(*self.address), io_timeout)
            reader, writer = self._conn
            writer.write(p.encode(p.STATS))
            await writer.drain()
            self.stats = p.Stats.parse((await asyncio.wait_for(reader.readline(), io_timeout)).decode())
        except (OSError, TimeoutError, ValueError) as exc:
            log.debug("STATS from %s:%d failed: %r", *self.address, exc)
            self.stats = None
            await self.close()

    async def close(self) -> None:
        if self._conn is not None:
            writer = self._conn[1]
            self._conn = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@dataclass
class _Bot:
    id: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    playing: bool = False
    joining: bool = False
    task: asyncio.Task[None] | None = None


class RealPlane:
    """Bots against a fixed list of game servers (loopback addresses in tests) or a discovered fleet.

    With `discover` (a blocking callable, run in a worker thread), the list of servers is replaced by the
    discovered one at start and then at most every `rediscover_every` seconds; a failed discovery keeps the
    last list. Servers that disappear lose their control connection; their bots find out by themselves.
    """

    name = "real"

    def __init__(
        self,
        servers: list[Address],
        *,
        input_rate: float = 2.0,
        retry_interval: float = 1.0,
        io_timeout: float = 2.0,
        max_bots: int = 2000,
        settle_budget: float = 0.4,
        discover: Callable[[], Fleet] | None = None,
        rediscover_every: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settle_budget = settle_budget
        self.views = [_ServerView(a) for a in servers]
        self.discover, self.rediscover_every, self._clock = discover, rediscover_every, clock
        self._discovered_at: float | None = None
        self.discovery_errors_in_a_row = 0
        self.fleet_pods = len(servers)
        self.input_rate, self.retry_interval, self.io_timeout = input_rate, retry_interval, io_timeout
        self.max_bots = max_bots
        self.bots: dict[int, _Bot] = {}
        self._ids = itertools.count(1)
        self.rejected_total = 0
        self.dropped_total = 0
        self.accepted_total = 0
        self._stopping: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._refresh()

    async def stop(self) -> None:
        for bot in self.bots.values():
            bot.stop.set()
        tasks = [b.task for b in self.bots.values() if b.task] + list(self._stopping)
        self.bots.clear()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.io_timeout + 1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for view in self.views:
            await view.close()

    async def _refresh(self) -> None:
        await self._rediscover()
        await asyncio.gather(*(view.refresh(self.io_timeout) for view in self.views))

    async def _rediscover(self) -> None:
        now = self._clock()
        if self.discover is None or (
            self._discovered_at is not None and now - self._discovered_at < self.rediscover_every
        ):
            return
        self._discovered_at = now
        try:
            fleet = await asyncio.to_thread(self.discover)
        except Exception as exc:  # any client error: keep playing against the last known fleet
            self.discovery_errors_in_a_row += 1
            if self.discovery_errors_in_a_row in (1, 10, 100):
                log.warning(
                    "discovering the game servers failed (%d in a row): %r",
                    self.discovery_errors_in_a_row,
                    exc,
                )
            return
        self.discovery_errors_in_a_row = 0
        self.fleet_pods = fleet.pods
        known = {view.address: view for view in self.views}
        wanted = set(fleet.addresses)
        for address, view in known.items():
            if address not in wanted:
                await view.close()
        self.views = [known.get(address) or _ServerView(address) for address in fleet.addresses]

    # --- matchmaking ---------------------------------------------------------------------------------------
    def _pick(self) -> _ServerView | None:
        """The least-loaded reachable server (own bots / capacity) with a free slot, else the least loaded."""
        up = [view for view in self.views if view.stats is not None]
        if not up:
            return None

        def load(view: _ServerView) -> float:
            cap = view.stats.capacity if view.stats else 0
            return view.bots / cap if cap > 0 else float("inf")

        free = [view for view in up if view.stats is not None and view.bots < view.stats.capacity]
        return min(free or up, key=load)

    # --- one bot -------------------------------------------------------------------------------------------
    async def _bot(self, bot: _Bot) -> None:
        rng = random.Random(bot.id)
        while not bot.stop.is_set():
            view = self._pick()
            if view is None:
                bot.joining = False
                await _wait(bot.stop, self.retry_interval)
                continue
            view.bots += 1
            bot.joining = True
            try:
                outcome = await self._session(bot, view, rng)
            finally:
                view.bots -= 1
                bot.playing = bot.joining = False
            if outcome == "rejected":
                self.rejected_total += 1
                await _wait(bot.stop, self.retry_interval)
            elif outcome == "dropped":
                self.dropped_total += 1
            elif outcome == "error":
                await _wait(bot.stop, self.retry_interval)

    async def _session(self, bot: _Bot, view: _ServerView, rng: random.Random) -> str:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*view.address), self.io_timeout)
        except (OSError, TimeoutError):
            return "error"
        try:
            writer.write(p.encode(p.JOIN, f"bot{bot.id}"))
            await writer.drain()
            reply = (await asyncio.wait_for(reader.readline(), self.io_timeout)).decode().split()
            bot.joining = False
            if not reply or reply[0] != p.WELCOME:
                return "rejected" if reply and reply[0] == p.REJECT else "error"
            bot.playing = True
            self.accepted_total += 1
            period = 1.0 / self.input_rate
            for seq in itertools.count(1):
                if await _wait(bot.stop, period * rng.uniform(0.8, 1.2)):
                    writer.write(p.encode(p.LEAVE))
                    await writer.drain()
                    with contextlib.suppress(TimeoutError, OSError):
                        await asyncio.wait_for(_read_until(reader, p.BYE), self.io_timeout)
                    return "left"
                writer.write(p.encode(p.INPUT, seq, rng.randint(-1, 1), rng.randint(-1, 1)))
                await writer.drain()
                line = await asyncio.wait_for(_read_until(reader, p.STATE, p.BYE), self.io_timeout)
                if not line.startswith(p.STATE):
                    return "dropped"
            return "left"  # unreachable: the loop above only ends by returning
        except (OSError, TimeoutError, EOFError):
            return "dropped" if bot.playing else "error"
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # --- the controller ------------------------------------------------------------------------------------
    def _follow(self, demand: int) -> None:
        want = min(demand, self.max_bots)
        if want > len(self.bots):
            for _ in range(want - len(self.bots)):
                bot = _Bot(next(self._ids), joining=True)
                bot.task = asyncio.create_task(self._bot(bot), name=f"bot-{bot.id}")
                self.bots[bot.id] = bot
        elif want < len(self.bots):
            # Waiting players give up first, then players leave (the longest-playing first).
            order = sorted(self.bots.values(), key=lambda b: (b.playing, b.id))
            for bot in order[: len(self.bots) - want]:
                bot.stop.set()
                del self.bots[bot.id]
                if bot.task is not None:
                    self._stopping.add(bot.task)
                    bot.task.add_done_callback(self._stopping.discard)

    async def _settle(self, budget: float) -> None:
        """Gives this step's joins up to `budget` seconds to get their answer (bounded poll)."""
        for _ in range(max(1, int(budget / 0.02))):
            if not any(bot.joining for bot in self.bots.values()):
                return
            await asyncio.sleep(0.02)

    async def step(self, t: float, demand: int) -> Sample:
        await self._refresh()
        self._follow(demand)
        await self._settle(self.settle_budget)
        up = [view.stats for view in self.views if view.stats is not None]
        served = sum(1 for bot in self.bots.values() if bot.playing)
        return Sample(
            t=t,
            demand=demand,
            served=served,
            unserved=max(0, demand - served),
            capacity=sum(s.capacity for s in up),
            replicas_ready=len(up),
            replicas_desired=self.fleet_pods if self.discover else len(self.views),
            cpu_request_m=dominant([s.cpu_request_m for s in up]),
            rejected_total=self.rejected_total,
            dropped_total=self.dropped_total,
        )


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Sleeps up to `seconds`; True as soon as `event` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


async def _read_until(reader: asyncio.StreamReader, *prefixes: str) -> str:
    """Next line starting with one of `prefixes` (other lines skipped); EOFError at end of stream."""
    for _ in range(1000):  # bounded: a server never sends that many unrelated lines
        raw = await reader.readline()
        if not raw:
            raise EOFError
        line = raw.decode(errors="replace")
        if line.startswith(prefixes):
            return line
    raise EOFError
