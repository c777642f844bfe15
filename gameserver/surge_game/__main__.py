"""`python -m surge_game [--port N ...]`: run one game-server process until SIGTERM/SIGINT.

Flags override the environment (GAME_HOST, GAME_PORT, METRICS_HOST, METRICS_PORT, CPU_REQUEST,
CPU_REQUEST_FILE, PLAYERS_PER_CORE, TICK_RATE, IDLE_TIMEOUT, POD_NAME, POD_NAMESPACE). Port 0 picks a free
port; the first stdout line names the bound addresses:
`surge-game listening game=HOST:PORT metrics=HOST:PORT capacity=N`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys

from surge_game.server import GameServer, ServerConfig


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    base = ServerConfig.from_env()
    ap = argparse.ArgumentParser(prog="surge-game", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default=base.host, help="game listen address (default %(default)s)")
    ap.add_argument(
        "--port", type=int, default=base.port, help="game port, 0 = any free (default %(default)s)"
    )
    ap.add_argument("--metrics-host", default=base.metrics_host)
    ap.add_argument("--metrics-port", type=int, default=base.metrics_port, help="/metrics port, 0 = any free")
    ap.add_argument("--cpu-request", default=base.cpu_request, help="CPU request, e.g. 500m (sets capacity)")
    ap.add_argument(
        "--cpu-request-file",
        default=base.cpu_request_file,
        help="downward-API file with requests.cpu (divisor 1m), re-read every 2 s",
    )
    ap.add_argument("--players-per-core", type=float, default=base.players_per_core)
    ap.add_argument("--tick-rate", type=float, default=base.tick_rate, help="ticks per second")
    ap.add_argument("--idle-timeout", type=float, default=base.idle_timeout)
    ap.add_argument("--pod", default=base.pod, help="value of the 'pod' metric label")
    ap.add_argument("--namespace", default=base.namespace, help="value of the 'namespace' metric label")
    ns = ap.parse_args(argv)
    config = dataclasses.replace(
        base,
        host=ns.host,
        port=ns.port,
        metrics_host=ns.metrics_host,
        metrics_port=ns.metrics_port,
        cpu_request=ns.cpu_request,
        cpu_request_file=ns.cpu_request_file,
        players_per_core=ns.players_per_core,
        tick_rate=ns.tick_rate,
        idle_timeout=ns.idle_timeout,
        pod=ns.pod,
        namespace=ns.namespace,
    )
    try:
        config.validate()
    except ValueError as exc:
        ap.error(str(exc))
    return config


async def amain(config: ServerConfig) -> None:
    server = GameServer(config)
    (ghost, gport), (mhost, mport) = await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    print(
        f"surge-game listening game={ghost}:{gport} metrics={mhost}:{mport} capacity={server.capacity}",
        flush=True,
    )
    await server.serve_until_stopped()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(amain(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
