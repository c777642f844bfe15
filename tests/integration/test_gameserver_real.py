"""The game server as a real local process on 127.0.0.1, driven by real TCP clients and by the real-plane
load generator. No cluster involved; every wait polls a state with a deadline."""

from __future__ import annotations

import json
import queue
import re
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from surge_game import vocabulary as v

from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    proc: subprocess.Popen[str]
    game: tuple[str, int]
    metrics_url: str

    @property
    def address(self) -> str:
        return f"{self.game[0]}:{self.game[1]}"


def _start(*args: str) -> Server:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "surge_game",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--metrics-port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        first = lines.get(timeout=20)
    except queue.Empty:
        proc.kill()
        raise AssertionError("the game server did not print its listening line within 20 s") from None
    match = re.search(r"game=([\d.]+):(\d+) metrics=([\d.]+):(\d+)", first)
    assert match, f"unexpected first line: {first!r}"
    return Server(proc, (match[1], int(match[2])), f"http://{match[3]}:{match[4]}/metrics")


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str) -> Server:
        server = _start(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.proc.terminate()
    for server in started:
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=5)


class Client:
    def __init__(self, server: Server) -> None:
        self.sock = socket.create_connection(server.game, timeout=5)
        self.file = self.sock.makefile("r", encoding="utf-8")

    def ask(self, line: str) -> str:
        self.sock.sendall((line + "\n").encode())
        return self.file.readline().strip()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def scrape(url: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} (comments skipped)."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def series(metrics: dict[str, float], name: str) -> float:
    values = [val for key, val in metrics.items() if key.split("{")[0] == name]
    assert len(values) == 1, (name, metrics)
    return values[0]


def test_capacity_from_cpu_request_is_enforced_and_reported(start_server: Callable[..., Server]) -> None:
    # 50m at 100 players per core: 5 players.
    server = start_server(
        "--cpu-request", "50m", "--players-per-core", "100", "--pod", "arena-0", "--namespace", "games"
    )
    capacity = v.capacity_players(50, 100)
    assert capacity == 5
    clients = [Client(server) for _ in range(capacity + 2)]
    try:
        replies = [c.ask(f"JOIN bot{i}") for i, c in enumerate(clients)]
        assert all(r.startswith("WELCOME ") for r in replies[:capacity]), replies
        assert replies[capacity:] == [f"REJECT full {capacity} {capacity}"] * 2
        # A rejected client is disconnected by the server.
        assert clients[capacity].file.readline() == ""

        # A player in a session gets its input applied at the next tick.
        assert re.fullmatch(r"STATE \d+ 7 2 -3", clients[0].ask("INPUT 7 2 -3"))

        metrics = scrape(server.metrics_url)
        assert series(metrics, v.PLAYERS_ONLINE) == capacity
        assert series(metrics, v.CAPACITY_PLAYERS) == capacity
        assert series(metrics, v.JOIN_ACCEPTED_TOTAL) == capacity
        assert series(metrics, v.JOIN_REJECTED_TOTAL) == 2
        assert series(metrics, f"{v.TICK_SECONDS}_count") > 0
        assert f'{v.PLAYERS_ONLINE}{{namespace="games",pod="arena-0"}}' in metrics

        # Leaving frees a slot for the next player.
        assert clients[0].ask("LEAVE") == "BYE left"
        newcomer = Client(server)
        clients.append(newcomer)
        assert newcomer.ask("JOIN late").startswith("WELCOME ")
        assert newcomer.ask("STATS").startswith(
            f"STATS online={capacity} capacity={capacity} cpu_request_m=50"
        )
        metrics = scrape(server.metrics_url)
        assert series(metrics, v.JOIN_ACCEPTED_TOTAL) == capacity + 1
        assert series(metrics, v.PLAYERS_ONLINE) == capacity
    finally:
        for c in clients:
            c.close()


def test_disconnected_players_free_their_slots(start_server: Callable[..., Server]) -> None:
    server = start_server("--cpu-request", "20m", "--players-per-core", "100")  # 2 players
    first, second = Client(server), Client(server)
    assert first.ask("JOIN a").startswith("WELCOME")
    assert second.ask("JOIN b").startswith("WELCOME")
    first.close()  # no LEAVE: the connection just drops
    wait_until(
        lambda: series(scrape(server.metrics_url), v.PLAYERS_ONLINE) == 1,
        timeout=10,
        what="the dropped player to be removed",
    )
    third = Client(server)
    try:
        assert third.ask("JOIN c").startswith("WELCOME")
    finally:
        second.close()
        third.close()


def test_a_bigger_cpu_request_raises_capacity_without_a_restart(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """The downward-API file the pod gets (requests.cpu, divisor 1m) is re-read: in-place resize works."""
    request_file = tmp_path / "cpu_request"
    request_file.write_text("100\n")
    server = start_server("--cpu-request-file", str(request_file), "--players-per-core", "100")
    wait_until(
        lambda: series(scrape(server.metrics_url), v.CAPACITY_PLAYERS) == 10,
        timeout=10,
        what="capacity 10 from the 100m request",
    )
    request_file.write_text("300\n")
    wait_until(
        lambda: series(scrape(server.metrics_url), v.CAPACITY_PLAYERS) == 30,
        timeout=15,
        what="capacity 30 after the request grew to 300m",
    )


def test_real_plane_run_against_two_local_servers(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    servers = [start_server("--cpu-request", "100m", "--players-per-core", "100") for _ in range(2)]
    capacity = 2 * v.capacity_players(100, 100)  # 20
    trace = tmp_path / "burst.csv"
    trace.write_text("seconds,players\n0,6\n2,6\n5,30\n9,30\n12,4\n")
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable, "-m", "surge_loadgen", "run", "--plane", "real",
            "--servers", ",".join(s.address for s in servers),
            "--trace", str(trace), "--out", str(out), "--progress-every", "2", "--input-rate", "4",
        ],
        capture_output=True, text=True, timeout=90, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "[real t=" in proc.stdout  # progress lines

    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "burst"
    assert summary["plane"] == "real"
    assert summary["peak_demand"] == 30
    assert summary["peak_unserved"] >= 30 - capacity
    assert summary["unserved_player_seconds"] > 0
    assert summary["rejected_joins"] > 0
    assert summary["replicas_max"] == 2
    assert summary["cpu_request_m_max"] == 100
    rows = (out / "timeline.csv").read_text().splitlines()
    assert rows[0].startswith("t,demand,served,unserved,capacity")
    assert len(rows) >= 10
    assert max(int(r.split(",")[2]) for r in rows[1:]) == capacity  # served never beyond capacity
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The servers saw real players and are empty again once the bots left.
    for server in servers:
        metrics = scrape(server.metrics_url)
        assert series(metrics, v.JOIN_ACCEPTED_TOTAL) >= capacity / 2
        assert series(metrics, v.JOIN_REJECTED_TOTAL) > 0
        wait_until(
            lambda s=server: series(scrape(s.metrics_url), v.PLAYERS_ONLINE) == 0,
            timeout=10,
            what="all bots to leave",
        )
