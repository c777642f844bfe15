"""PromQL queries through prometheus-api-client, reduced to one timestamped number or a clear failure."""

from __future__ import annotations

import ast
import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from surge.metrics.types import MetricUnavailable, Sample

REASON = "FailedGetPrometheusMetric"


def reduce_result(query: str, result: Any) -> Sample:
    """Turns an instant-query result into one Sample; empty, multi-series or NaN results are errors."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        ts, raw = result  # scalar result: [timestamp, "value"]
    elif isinstance(result, list) and len(result) == 1 and isinstance(result[0], dict):
        ts, raw = result[0]["value"]
    elif isinstance(result, list) and not result:
        raise MetricUnavailable(
            REASON, f"query returned no data (no series match, or they are stale): {query}"
        )
    elif isinstance(result, list):
        raise MetricUnavailable(
            REASON, f"query returned {len(result)} series, expected one number; wrap it in sum(...): {query}"
        )
    else:
        raise MetricUnavailable(REASON, f"unexpected result shape {type(result).__name__}: {query}")
    value = float(raw)
    if math.isnan(value) or math.isinf(value):
        raise MetricUnavailable(REASON, f"query returned {raw}: {query}")
    return Sample(value=value, timestamp=float(ts))


class PrometheusSource:
    """One connection per server URL; each query has a hard timeout and at most one retry."""

    def __init__(
        self,
        default_url: str,
        *,
        timeout: float = 5.0,
        max_age: float = 120.0,
        pool_size: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._default_url = default_url.rstrip("/")
        self._timeout = timeout
        self._max_age = max_age
        self._clock = clock
        self._pool_size = pool_size
        self._connections: dict[str, PrometheusConnect] = {}

    def _connection(self, url: str) -> PrometheusConnect:
        if url not in self._connections:
            # The library's default retries 3 times with backoff; an autoscaler tick cannot wait that long.
            retry = Retry(total=1, backoff_factor=0.1, status_forcelist=[502, 503, 504])
            session = requests.Session()
            connection = PrometheusConnect(url=url, retry=retry, timeout=self._timeout, session=session)
            # After the library mounted its own adapter: one pooled connection per I/O thread, since a smaller
            # pool drops and re-opens connections under load (requests' default is 10).
            session.mount(url, HTTPAdapter(max_retries=retry, pool_maxsize=self._pool_size))
            self._connections[url] = connection
        return self._connections[url]

    def _query(self, query: str, url: str) -> Sample:
        try:
            result = self._connection(url).custom_query(query, params={"timeout": f"{self._timeout:g}s"})
        except PrometheusApiClientException as exc:
            raise MetricUnavailable(
                REASON, f"Prometheus refused the query: {_server_error(str(exc))}"
            ) from exc
        except requests.RequestException as exc:
            raise MetricUnavailable(REASON, f"Prometheus at {url} unreachable: {_short(str(exc))}") from exc
        sample = reduce_result(query, result)
        if self._clock() - sample.timestamp > self._max_age:
            raise MetricUnavailable(REASON, f"result is older than {self._max_age:.0f}s: {query}")
        return sample

    async def query(self, query: str, server: str | None = None) -> Sample:
        return await asyncio.to_thread(self._query, query, (server or self._default_url).rstrip("/"))


def _server_error(text: str) -> str:
    """Prometheus' own error text ("parse error: ...") out of the library's exception message."""
    # The library formats the response body as a bytes literal: HTTP Status Code 400 (b'{"error": ...}')
    start = text.find("b'")
    try:
        body = json.loads(ast.literal_eval(text[start : text.rindex("'") + 1]))
        return _short(str(body["error"]))
    except (ValueError, SyntaxError, KeyError, TypeError):
        return _short(text)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
