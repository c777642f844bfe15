"""PrometheusSource against small loopback servers: deadline, bulkhead, redirects, size, errors, allowlist."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from surge.metrics.prom_servers import NOT_ALLOWED
from surge.metrics.prometheus import REASON, SERVER_BUSY, PrometheusSource
from surge.metrics.types import MetricUnavailable, Sample
from tests.support.drip_server import Answer, answer_server, drip_server, prometheus_vector
from tests.support.wait import wait_until

T = TypeVar("T")
SLACK = 0.5  # scheduling noise on a loaded 2-core machine


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


async def eventually(probe: Callable[[], bool], *, what: str, seconds: float = 5.0) -> None:
    """Polls on the loop (the probes read thread-side counters) until probe() or the deadline."""
    for _ in range(int(seconds / 0.01)):
        if probe():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {seconds:g}s waiting for {what}")


def fixed(answer: Answer) -> Callable[[str], Answer]:
    return lambda _path: answer


def ok(*series: tuple[dict[str, str], str]) -> Answer:
    return Answer(body=prometheus_vector(*series))


def fails(source: PrometheusSource, query: str, server: str | None = None) -> MetricUnavailable:
    async def scenario() -> MetricUnavailable:
        with pytest.raises(MetricUnavailable) as info:
            await source.query(query, server)
        return info.value

    return run(scenario)


def test_one_number_from_a_loopback_prometheus() -> None:
    with answer_server(fixed(ok(({"job": "x"}, "42")))) as server:
        source = PrometheusSource(server.url)
        sample = run(lambda: source.query("sum(x)"))
        source.close()
    assert sample.value == 42.0
    assert server.paths[0].startswith("/api/v1/query?query=sum%28x%29")


# A byte arrives more often than the timeout, so a per-read timeout (requests') would wait for ever.
@pytest.mark.parametrize(("interval", "timeout"), [(2.0, 3.0), (0.2, 1.0)])
def test_a_server_that_drips_fails_within_the_total_time_limit(interval: float, timeout: float) -> None:
    with drip_server(interval=interval) as server:
        source = PrometheusSource(server.url, timeout=timeout)
        started = time.monotonic()
        error = fails(source, "sum(players)")
        elapsed = time.monotonic() - started
        # The thread has ended too (its socket is bounded by the deadline), not only the caller's wait.
        wait_until(
            lambda: source.in_flight() == 0, timeout=SLACK, what="the request thread to end", interval=0.02
        )
        source.close()
    assert timeout - 0.05 < elapsed < timeout + SLACK, elapsed
    assert error.reason == REASON
    assert (
        error.message
        == f"Prometheus at {server.url} gave no complete answer within {timeout:g}s: sum(players)"
    )


def test_a_cancelled_caller_ends_its_request_at_once() -> None:
    with drip_server(interval=0.2) as server:
        source = PrometheusSource(server.url, timeout=30.0)

        async def scenario() -> None:
            task = asyncio.create_task(source.query("up"))
            await eventually(lambda: server.connections == 1, what="the request to reach the server")
            assert source.in_flight() == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        started = time.monotonic()
        run(scenario)
        wait_until(
            lambda: source.in_flight() == 0, timeout=2, what="the request thread to end", interval=0.02
        )
        ended = time.monotonic() - started
        wait_until(lambda: server.disconnected == 1, timeout=2, what="the server to see the client go")
        source.close()
    assert ended < 2.0  # far below the 30 s deadline


def test_a_full_bulkhead_fails_fast_and_other_servers_still_answer() -> None:
    with drip_server(interval=2.0) as slow, answer_server(fixed(ok(({}, "7")))) as fast:
        source = PrometheusSource(slow.url, timeout=3.0, pool_size=2, allowed_urls=[fast.url])

        async def scenario() -> tuple[float, MetricUnavailable, float, Sample]:
            hanging = [asyncio.create_task(source.query("up")) for _ in range(2)]
            await eventually(lambda: source.in_flight() == 2, what="two requests in flight")
            started = time.monotonic()
            with pytest.raises(MetricUnavailable) as info:
                await source.query("up")
            refused_after = time.monotonic() - started
            started = time.monotonic()
            sample = await source.query("sum(y)", fast.url)
            answered_after = time.monotonic() - started
            for task in hanging:
                task.cancel()
            await asyncio.gather(*hanging, return_exceptions=True)
            return refused_after, info.value, answered_after, sample

        refused_after, error, answered_after, sample = run(scenario)
        source.close()
    assert refused_after < 0.1
    assert error.reason == SERVER_BUSY
    assert "2 queries to Prometheus at" in error.message
    assert "not sent" in error.message
    assert answered_after < 0.5
    assert sample.value == 7.0


def test_redirects_are_refused_and_not_followed() -> None:
    with answer_server(fixed(ok(({}, "1")))) as elsewhere:
        moved = Answer(status=302, headers={"Location": f"{elsewhere.url}/api/v1/query?query=up"})
        with answer_server(fixed(moved)) as server:
            error = fails(PrometheusSource(server.url), "up")
    assert elsewhere.requests == 0
    assert "answered HTTP 302, a redirect; redirects are not followed" in error.message
    assert elsewhere.url not in error.message


def test_an_answer_beyond_the_size_cap_is_an_error() -> None:
    big = ok(*[({"pod": f"p{i}"}, "1") for i in range(100)])
    with answer_server(fixed(big)) as server:
        error = fails(PrometheusSource(server.url, max_response_bytes=1000), "x")
    assert len(big.body) > 1000
    assert "larger than 1000 bytes" in error.message


def test_an_answer_beyond_the_size_cap_without_a_length_is_an_error() -> None:
    body = prometheus_vector(*[({"pod": f"p{i}"}, "1") for i in range(100)])
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 100]), body[i : i + 100]) for i in range(0, len(body), 100)
    )
    answer = Answer(
        body=chunked + b"0\r\n\r\n",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    with answer_server(fixed(answer)) as server:
        error = fails(PrometheusSource(server.url, max_response_bytes=1000), "x")
    assert "larger than 1000 bytes" in error.message


def test_an_error_answer_keeps_only_prometheus_own_fields() -> None:
    body = json.dumps(
        {"status": "error", "errorType": "bad_data", "error": "1:4: parse error: unclosed", "data": "SECRET"}
    ).encode()
    with answer_server(fixed(Answer(status=400, body=body))) as server:
        error = fails(PrometheusSource(server.url), "sum(x")
    assert error.message == (
        f"Prometheus at {server.url} refused the query (bad_data: 1:4: parse error: unclosed): sum(x"
    )


@pytest.mark.parametrize(
    "answer",
    [
        Answer(status=500, body=b"<html>SECRET internal page</html>", headers={"Content-Type": "text/html"}),
        Answer(status=404, body=b""),
        Answer(status=503, body=b'{"detail": "SECRET"}'),
        Answer(status=204, body=b""),
    ],
)
def test_an_error_answer_without_those_fields_is_only_its_status(answer: Answer) -> None:
    with answer_server(fixed(answer)) as server:
        error = fails(PrometheusSource(server.url), "up")
    assert error.message == f"Prometheus at {server.url} answered HTTP {answer.status}: up"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"status": "success"}', "answered without data.result"),
        (
            b'{"status": "success", "data": {"resultType": "string", "result": [1, "abc"]}}',
            "'abc' where a number",
        ),
        (
            b'{"status": "success", "data": {"resultType": "vector", "result": 5}}',
            "unexpected result shape int",
        ),
        (b"<html>SECRET</html>", "not JSON"),
        (b"[" * 200_000, "nested too deeply"),
        (prometheus_vector(({}, "1e400")), "returned +Inf"),
    ],
)
def test_malformed_answers_are_clear_failures(body: bytes, fragment: str) -> None:
    with answer_server(fixed(Answer(body=body))) as server:
        error = fails(PrometheusSource(server.url, max_response_bytes=1 << 20), "sum(x)")
    assert fragment in error.message
    assert "SECRET" not in error.message
    assert error.message.endswith(": sum(x)")


def test_a_server_outside_the_allowlist_is_never_contacted() -> None:
    with answer_server(fixed(ok(({}, "1")))) as default, answer_server(fixed(ok(({}, "2")))) as other:
        error = fails(PrometheusSource(default.url), "up", other.url)
        allowed = PrometheusSource(default.url, allowed_urls=[other.url.replace("http", "HTTP") + "/"])
        sample = run(lambda: allowed.query("up", other.url))
    assert error.reason == NOT_ALLOWED
    assert "--prometheus-allowed-url" in error.message
    assert other.requests == 1  # only the allowed query
    assert default.requests == 0
    assert sample.value == 2.0


def test_query_by_pod_over_http() -> None:
    answer = ok(({"pod": "a"}, "3"), ({"pod": "b"}, "NaN"), ({"pod": "c"}, "5"))
    with answer_server(fixed(answer)) as server:
        source = PrometheusSource(server.url)
        samples = run(lambda: source.query_by_pod("sum by (pod) (x)"))
    assert {pod: s.value for pod, s in samples.items()} == {"a": 3.0, "c": 5.0}


def test_a_stale_result_is_refused() -> None:
    answer = Answer(body=prometheus_vector(({}, "1"), ts=1000.0))
    with answer_server(fixed(answer)) as server:
        error = fails(PrometheusSource(server.url, max_age=60, clock=lambda: 1100.0), "up")
    assert "older than 60s" in error.message


def test_connections_are_reused_and_compression_is_refused() -> None:
    seen: list[Any] = []

    def respond(path: str) -> Answer:
        seen.append(path)
        return ok(({}, "1"))

    with answer_server(respond) as server:
        source = PrometheusSource(server.url)

        async def scenario() -> None:
            for _ in range(3):
                await source.query("up")

        run(scenario)
        source.close()
    assert server.requests == 3
    assert server.connections == 1
    assert server.accept_encodings == ["identity"] * 3


def test_a_keep_alive_connection_the_server_closed_is_replaced_once() -> None:
    with answer_server(fixed(Answer(body=prometheus_vector(({}, "1")), close_after=True))) as server:
        source = PrometheusSource(server.url)

        async def scenario() -> list[float]:
            return [(await source.query("up")).value for _ in range(3)]

        values = run(scenario)
        source.close()
    assert values == [1.0, 1.0, 1.0]
    assert server.connections == 3


def test_a_closed_source_fails_clearly() -> None:
    with answer_server(fixed(ok(({}, "1")))) as server:
        source = PrometheusSource(server.url)
        run(lambda: source.query("up"))
        source.close()
        error = fails(source, "up")
    assert "shut down" in error.message
