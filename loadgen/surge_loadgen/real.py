"""The real data plane: bots that open real TCP connections to game servers and play.

Each bot is one player who wants to play: it asks the matchmaker for the least-loaded server with a free slot,
sends JOIN, and on WELCOME sends INPUT at `input_rate` (waiting for each STATE echo); on REJECT it waits
`retry_interval` and tries again; when its server drops it, it rejoins (churn). The controller starts and
stops bots each step so their number follows the scenario's demand. A control connection per server asks STATS
every step (capacity, CPU request).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from dataclasses import dataclass, field

from surge_game import protocol as p

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
    """Bots against a fixed list of game servers (loopback addresses in tests)."""

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
    ) -> None:
        self.settle_budget = settle_budget
        self.views = [_ServerView(a) for a in servers]
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
        await asyncio.gather(*(view.refresh(self.io_timeout) for view in self.views))

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
            replicas_desired=len(self.views),
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
