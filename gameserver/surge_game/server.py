"""The game server: TCP line protocol, a fixed-rate tick loop, capacity from the CPU request, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from surge_game import protocol as p
from surge_game import vocabulary as v
from surge_game.exposition import MetricsServer, Registry, labelset

log = logging.getLogger(__name__)

_MAX_PENDING_INPUTS = 32
_MAX_WRITE_BUFFER = 64 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one game-server process; `from_env` reads the container environment."""

    host: str = "127.0.0.1"
    port: int = 7000
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9100
    cpu_request: str = "500m"
    cpu_request_file: str = ""
    players_per_core: float = v.DEFAULT_PLAYERS_PER_CORE
    tick_rate: float = 10.0
    idle_timeout: float = 30.0
    pod: str = field(default_factory=socket.gethostname)
    namespace: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServerConfig:
        e = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            host=e.get("GAME_HOST", d.host),
            port=int(e.get("GAME_PORT", d.port)),
            metrics_host=e.get("METRICS_HOST", e.get("GAME_HOST", d.metrics_host)),
            metrics_port=int(e.get("METRICS_PORT", d.metrics_port)),
            cpu_request=e.get("CPU_REQUEST", d.cpu_request),
            cpu_request_file=e.get("CPU_REQUEST_FILE", d.cpu_request_file),
            players_per_core=float(e.get("PLAYERS_PER_CORE", d.players_per_core)),
            tick_rate=float(e.get("TICK_RATE", d.tick_rate)),
            idle_timeout=float(e.get("IDLE_TIMEOUT", d.idle_timeout)),
            pod=e.get("POD_NAME", d.pod),
            namespace=e.get("POD_NAMESPACE", d.namespace),
        )

    def validate(self) -> None:
        v.parse_cpu_millis(self.cpu_request)
        if self.tick_rate <= 0 or self.tick_rate > 200:
            raise ValueError(f"tick rate must be in (0, 200] Hz, got {self.tick_rate}")
        if self.players_per_core <= 0:
            raise ValueError(f"players per core must be > 0, got {self.players_per_core}")


def read_cpu_request_file(path: Path) -> float:
    """Millicores from a downward-API file (`resourceFieldRef: requests.cpu`, divisor 1m: "500")."""
    text = path.read_text().strip()
    return float(text) if text.isdigit() else v.parse_cpu_millis(text)


@dataclass
class Player:
    id: int
    name: str
    writer: asyncio.StreamWriter
    x: int = 0
    y: int = 0
    last_seq: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    inputs: deque[tuple[int, int, int]] = field(default_factory=lambda: deque(maxlen=_MAX_PENDING_INPUTS))


class GameServer:
    """Holds at most `capacity` players; joins beyond it get `REJECT full`. One tick loop for all sessions."""

    def __init__(self, config: ServerConfig) -> None:
        config.validate()
        self.config = config
        self.cpu_request_m = v.parse_cpu_millis(config.cpu_request)
        self.players: dict[int, Player] = {}
        self.tick = 0
        self._ids = itertools.count(1)
        self._labels = labelset(pod=config.pod, namespace=config.namespace)
        self.registry = Registry()
        self._online = self.registry.gauge(v.PLAYERS_ONLINE, "Players currently in a session.")
        self._capacity = self.registry.gauge(v.CAPACITY_PLAYERS, "Most players this pod accepts.")
        self._accepted = self.registry.counter(v.JOIN_ACCEPTED_TOTAL, "Joins accepted.")
        self._rejected = self.registry.counter(
            v.JOIN_REJECTED_TOTAL, "Joins rejected because the pod was full."
        )
        self._tick_hist = self.registry.histogram(v.TICK_SECONDS, "Wall time of one tick.", v.TICK_BUCKETS)
        self._accepted.inc(self._labels, 0)
        self._rejected.inc(self._labels, 0)
        self._game: asyncio.Server | None = None
        self._metrics = MetricsServer(self.render_metrics, config.metrics_host, config.metrics_port)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._sessions: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # --- capacity ------------------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return v.capacity_players(self.cpu_request_m, self.config.players_per_core)

    def set_cpu_request(self, millis: float) -> None:
        if millis != self.cpu_request_m:
            log.info(
                "cpu request %sm -> %sm: capacity %d -> %d",
                self.cpu_request_m,
                millis,
                self.capacity,
                v.capacity_players(millis, self.config.players_per_core),
            )
            self.cpu_request_m = millis

    def stats(self) -> p.Stats:
        return p.Stats(len(self.players), self.capacity, round(self.cpu_request_m), self.tick)

    def render_metrics(self) -> str:
        self._online.set(self._labels, len(self.players))
        self._capacity.set(self._labels, self.capacity)
        return self.registry.render()

    # --- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> tuple[tuple[str, int], tuple[str, int]]:
        self._game = await asyncio.start_server(
            self._session, self.config.host, self.config.port, limit=p.MAX_LINE
        )
        metrics_addr = await self._metrics.start()
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="tick-loop"))
        if self.config.cpu_request_file:
            self._tasks.append(asyncio.create_task(self._watch_cpu_request(), name="cpu-request"))
        sock = self._game.sockets[0].getsockname()
        return (str(sock[0]), int(sock[1])), metrics_addr

    async def serve_until_stopped(self) -> None:
        await self._stopping.wait()
        await self._shutdown()

    def request_stop(self) -> None:
        self._stopping.set()

    async def _shutdown(self) -> None:
        if self._game is not None:
            self._game.close()
        for player in list(self.players.values()):
            self._drop(player, "shutdown")
        for writer in list(self._writers):  # control connections (STATS) too
            writer.close()
        if self._sessions:
            _, pending = await asyncio.wait(self._sessions, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._metrics.stop()
        if self._game is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._game.wait_closed(), timeout=2)

    async def _watch_cpu_request(self) -> None:
        path = Path(self.config.cpu_request_file)
        while True:
            try:
                self.set_cpu_request(await asyncio.to_thread(read_cpu_request_file, path))
            except (OSError, ValueError) as exc:
                log.warning("cannot read %s: %s", path, exc)
            await asyncio.sleep(2.0)

    # --- the tick loop -------------------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        period = 1.0 / self.config.tick_rate
        next_tick = time.monotonic()
        while True:
            started = time.perf_counter()
            self._run_tick(time.monotonic())
            self._tick_hist.observe(self._labels, time.perf_counter() - started)
            next_tick += period
            now = time.monotonic()
            if next_tick < now:  # overrun: skip the missed ticks instead of bursting to catch up
                next_tick = now
            await asyncio.sleep(next_tick - now)

    def _run_tick(self, now: float) -> None:
        self.tick += 1
        for player in list(self.players.values()):
            if now - player.last_seen > self.config.idle_timeout:
                self._drop(player, "idle")
                continue
            if not player.inputs:
                continue
            while player.inputs:
                seq, dx, dy = player.inputs.popleft()
                player.x, player.y, player.last_seq = player.x + dx, player.y + dy, seq
            if player.writer.transport.get_write_buffer_size() > _MAX_WRITE_BUFFER:
                self._drop(player, "slow")  # a client that does not read its updates
                continue
            player.writer.write(p.encode(p.STATE, self.tick, player.last_seq, player.x, player.y))

    def _drop(self, player: Player, reason: str) -> None:
        self.players.pop(player.id, None)
        with contextlib.suppress(Exception):
            player.writer.write(p.encode(p.BYE, reason))
            player.writer.close()

    # --- one connection ------------------------------------------------------------------------------------
    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        player: Player | None = None
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
            task.add_done_callback(self._sessions.discard)
        self._writers.add(writer)
        try:
            while not writer.is_closing():
                try:
                    raw = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(p.encode(p.ERR, "line too long"))
                    break
                if not raw:
                    break
                words = raw.decode("utf-8", "replace").split()
                if not words:
                    continue
                command, args = words[0].upper(), words[1:]
                if player is not None:
                    player.last_seen = time.monotonic()
                if command == p.JOIN:
                    if player is not None:
                        writer.write(p.encode(p.ERR, "already joined"))
                    elif len(self.players) >= self.capacity:
                        self._rejected.inc(self._labels)
                        writer.write(p.encode(p.REJECT, "full", len(self.players), self.capacity))
                        break
                    else:
                        player = Player(next(self._ids), (args[0] if args else "anon")[:32], writer)
                        self.players[player.id] = player
                        self._accepted.inc(self._labels)
                        writer.write(p.encode(p.WELCOME, player.id, f"{self.config.tick_rate:g}"))
                elif command == p.INPUT:
                    if player is None or player.id not in self.players:
                        writer.write(p.encode(p.ERR, "join first"))
                        continue
                    try:
                        seq, dx, dy = (int(a) for a in args[:3])
                    except ValueError:
                        writer.write(p.encode(p.ERR, "usage: INPUT <seq> <dx> <dy>"))
                        continue
                    player.inputs.append((seq, max(-10, min(10, dx)), max(-10, min(10, dy))))
                elif command == p.LEAVE:
                    if player is not None and player.id in self.players:
                        self.players.pop(player.id, None)
                    writer.write(p.encode(p.BYE, "left"))
                    break
                elif command == p.STATS:
                    writer.write(self.stats().line().encode())
                elif command == p.PING:
                    writer.write(p.encode(p.PONG))
                else:
                    writer.write(p.encode(p.ERR, "unknown command"))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            if player is not None:
                self.players.pop(player.id, None)
            with contextlib.suppress(Exception):
                await writer.drain()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
