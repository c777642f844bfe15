"""The real plane's fleet discovery (`--servers-from-k8s NS/SELECTOR`): target parsing, pods -> addresses, and
the plane following a fleet whose pods come and go (scripted discovery, injected clock, no cluster)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from surge_loadgen.cli import main
from surge_loadgen.real import Fleet, RealPlane, fleet_from_pods, parse_k8s_target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("games/app=arena", ("games", "app=arena")),
        ("games/app=arena,tier in (a,b)", ("games", "app=arena,tier in (a,b)")),
        ("g-1/app", ("g-1", "app")),
    ],
)
def test_parse_k8s_target(text: str, expected: tuple[str, str]) -> None:
    assert parse_k8s_target(text) == expected


@pytest.mark.parametrize("text", ["games", "games/", "/app=arena", "Games/app=arena", "a_b/app=x"])
def test_parse_k8s_target_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="NAMESPACE/LABELSELECTOR"):
        parse_k8s_target(text)


def _pod(
    name: str,
    ip: str | None = "10.0.0.1",
    *,
    ready: bool = True,
    phase: str = "Running",
    deleting: bool = False,
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if ip:
        status["podIP"] = ip
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "arena", "ports": ports or []}]},
        "status": status,
    }


def test_fleet_from_pods_keeps_ready_pods_and_counts_live_ones() -> None:
    pods = [
        _pod("b", "10.0.0.2", ports=[{"name": "metrics", "containerPort": 9100}]),
        _pod("a", "10.0.0.1", ports=[{"name": "game", "containerPort": 7100}]),
        _pod("starting", "10.0.0.3", ready=False),  # counts as a pod, not yet a server
        _pod("pending", None, ready=False, phase="Pending"),
        _pod("no-ip", None),
        _pod("leaving", "10.0.0.4", deleting=True),  # terminating: neither
        _pod("done", "10.0.0.5", phase="Succeeded"),
    ]
    fleet = fleet_from_pods(pods)
    assert fleet.addresses == (("10.0.0.1", 7100), ("10.0.0.2", 7000))
    assert fleet.pods == 5


def _closed_ports(n: int) -> list[int]:
    """Loopback ports nobody listens on (bound, then released): connecting is refused at once."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_real_plane_follows_the_discovered_fleet() -> None:
    p1, p2, p3 = (("127.0.0.1", port) for port in _closed_ports(3))
    now = [0.0]
    script: list[Fleet | Exception] = [
        Fleet((p1,), pods=2),
        Fleet((p1, p2), pods=2),
        RuntimeError("API down"),
        Fleet((p2, p3), pods=3),
    ]
    calls: list[float] = []

    def discover() -> Fleet:
        calls.append(now[0])
        item = script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    plane = RealPlane([], discover=discover, rediscover_every=3.0, clock=lambda: now[0], io_timeout=0.5)

    async def scenario() -> None:
        await plane.start()
        assert [view.address for view in plane.views] == [p1]
        first = plane.views[0]

        now[0] = 1.0  # too early: no new listing
        sample = await plane.step(1.0, 0)
        assert calls == [0.0]
        assert (sample.replicas_desired, sample.replicas_ready) == (2, 0)  # nobody listens on the ports

        now[0] = 3.0
        await plane.step(3.0, 0)
        assert [view.address for view in plane.views] == [p1, p2]
        assert plane.views[0] is first  # a known server keeps its view (and its bots' count)

        now[0] = 6.0  # the listing fails: keep playing against the last fleet
        await plane.step(6.0, 0)
        assert [view.address for view in plane.views] == [p1, p2]
        assert plane.discovery_errors_in_a_row == 1

        now[0] = 9.0
        sample = await plane.step(9.0, 0)
        assert [view.address for view in plane.views] == [p2, p3]
        assert sample.replicas_desired == 3
        assert plane.discovery_errors_in_a_row == 0
        await plane.stop()

    asyncio.run(scenario())
    assert calls == [0.0, 3.0, 6.0, 9.0]


def test_cli_real_plane_needs_exactly_one_server_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["run", "--plane", "real", "--out", str(tmp_path)]
    for extra in ([], ["--servers", "127.0.0.1:7000", "--servers-from-k8s", "games/app=arena"]):
        with pytest.raises(SystemExit) as exc:
            main([*base, *extra])
        assert exc.value.code == 2
        assert "--servers-from-k8s" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--servers-from-k8s", "games"])
    assert "NAMESPACE/LABELSELECTOR" in capsys.readouterr().err
