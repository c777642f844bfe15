"""A hanging Prometheus cannot slow the real one: 16 queries hang on a drip server, the real one answers.

Run with `-s` to see the measured latencies.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from surge.metrics.prometheus import SERVER_BUSY, PrometheusSource
from surge.metrics.types import MetricUnavailable
from tests.conftest import Testbed
from tests.support.drip_server import drip_server

pytestmark = pytest.mark.integration

HANGING = 16
TIMEOUT = 5.0
BOUND = 1.0  # seconds for one query to the real Prometheus while the drip server holds 16 requests


@dataclass
class Measured:
    baseline: list[float]  # seconds per query to the real Prometheus, nothing hanging
    loaded: list[float]  # the same while HANGING queries hang on the drip server
    other_io: float  # one call on asyncio's default executor meanwhile
    busy: MetricUnavailable  # one more query to the drip server
    busy_after: float
    results: list[object]  # what the hanging queries ended with
    hung_for: float  # until the last of them ended


async def _latencies(source: PrometheusSource, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.monotonic()
        sample = await source.query("vector(1)")
        out.append(time.monotonic() - started)
        assert sample.value == 1.0
    return out


async def _other_io_latency() -> float:
    """A blocking call on asyncio's default executor (where the operator's other clients run)."""
    started = time.monotonic()
    await asyncio.to_thread(time.sleep, 0)
    return time.monotonic() - started


def test_a_dripping_server_does_not_delay_the_real_prometheus(testbed: Testbed) -> None:
    with drip_server(interval=2.0) as drip:
        source = PrometheusSource(
            testbed.prometheus_url, timeout=TIMEOUT, pool_size=HANGING, allowed_urls=[drip.url]
        )

        async def scenario() -> Measured:
            # As small as a tight operator's pool: the drip must not be able to take it.
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=2))
            await source.query("vector(1)")  # connect once, as a running operator would have
            baseline = await _latencies(source, 20)
            started = time.monotonic()
            hanging = [asyncio.create_task(source.query("up", drip.url)) for _ in range(HANGING)]
            for _ in range(500):
                if source.in_flight(drip.url) == HANGING and drip.connections == HANGING:
                    break
                await asyncio.sleep(0.01)
            assert source.in_flight(drip.url) == HANGING
            loaded = await _latencies(source, 20)
            other_io = await _other_io_latency()
            busy_started = time.monotonic()
            with pytest.raises(MetricUnavailable) as busy:
                await source.query("up", drip.url)
            busy_after = time.monotonic() - busy_started
            results = await asyncio.gather(*hanging, return_exceptions=True)
            hung_for = time.monotonic() - started
            return Measured(baseline, loaded, other_io, busy.value, busy_after, list(results), hung_for)

        got = asyncio.run(scenario())
        source.close()

    ms = {k: f"{v * 1000:.1f} ms" for k, v in vars(got).items() if isinstance(v, float)}
    print(
        f"\nreal Prometheus, 20 queries each: median {statistics.median(got.baseline) * 1000:.1f} ms / max "
        f"{max(got.baseline) * 1000:.1f} ms alone; median {statistics.median(got.loaded) * 1000:.1f} ms / "
        f"max {max(got.loaded) * 1000:.1f} ms while {HANGING} queries hang on a drip server; a "
        f"default-executor call {ms['other_io']}; query {HANGING + 1} to the drip server refused after "
        f"{ms['busy_after']}; the hanging ones ended after {got.hung_for:.2f} s (timeout {TIMEOUT:g} s)"
    )
    assert max(got.loaded) < BOUND
    assert got.other_io < 0.2
    assert got.busy.reason == SERVER_BUSY
    assert got.busy_after < 0.1
    assert len(got.results) == HANGING
    for result in got.results:
        assert isinstance(result, MetricUnavailable)
        assert "no complete answer within 5s" in result.message
    assert got.hung_for < TIMEOUT + 1.0
