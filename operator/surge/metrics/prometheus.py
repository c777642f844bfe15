"""PromQL through prometheus-api-client, bounded per request and per server, reduced to clear numbers.

The library builds the request and reads `data.result`; everything that can hurt the operator is ours:
which servers may be contacted (`prom_servers`), the transport with its deadline, size cap and refusal of
redirects (`prom_http`), one bulkhead of threads per server (`prom_bulkhead`), and the checks of the answer
(`prom_answer`), and in tenancy mode the namespace every query is confined to (`prom_tenancy`). Every
failure is a MetricUnavailable whose message says which query and what to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException

from surge.metrics.prom_answer import REASON, clip, reduce_by_pod, reduce_result
from surge.metrics.prom_bulkhead import Bulkhead, BulkheadClosedError, BulkheadFullError
from surge.metrics.prom_http import (
    BoundedAdapter,
    DeadlineError,
    RedirectError,
    ServerAnswerError,
    TooLargeError,
    UnreachableError,
)
from surge.metrics.prom_servers import ServerAllowlist
from surge.metrics.prom_tenancy import Tenancy
from surge.metrics.types import MetricUnavailable, Sample

__all__ = ["REASON", "SERVER_BUSY", "PrometheusSource", "reduce_by_pod", "reduce_result"]

SERVER_BUSY = "PrometheusServerBusy"
T = TypeVar("T")


class PrometheusSource:
    """Instant queries against the default server or an allowed one; each server has its own bulkhead.

    With `tenancy="namespace"` every query must name the policy's namespace, which is sent as the value a
    label-enforcing proxy confines the query to; the servers are then expected to be such proxies.
    """

    def __init__(
        self,
        default_url: str,
        *,
        timeout: float = 5.0,
        max_age: float = 120.0,
        pool_size: int = 10,
        clock: Callable[[], float] = time.time,
        allowed_urls: Sequence[str] = (),
        max_response_bytes: int = 1 << 20,
        tenancy: str = "",
    ) -> None:
        self._servers = ServerAllowlist(default_url, allowed_urls)
        self._tenancy = Tenancy(tenancy)
        self._timeout = timeout
        self._max_age = max_age
        self._clock = clock
        self._pool_size = pool_size
        self._max_bytes = max_response_bytes
        self._clients: dict[str, PrometheusConnect] = {}
        self._bulkheads: dict[str, Bulkhead] = {}

    async def query(self, query: str, server: str | None = None, namespace: str | None = None) -> Sample:
        """One number (a scalar or a one-series vector); `namespace`: the policy's (tenancy mode)."""
        url = self._servers.resolve(server)
        params = self._tenancy.params(namespace, query)
        sample = await self._run(url, query, params, lambda result: reduce_result(query, result))
        self._check_age(query, sample)
        return sample

    async def query_by_pod(
        self, query: str, server: str | None = None, namespace: str | None = None
    ) -> dict[str, Sample]:
        """One number per pod, keyed by each series' `pod` label (HPA's Pods metric type)."""
        url = self._servers.resolve(server)
        params = self._tenancy.params(namespace, query)
        samples = await self._run(url, query, params, lambda result: reduce_by_pod(query, result))
        for sample in samples.values():
            self._check_age(query, sample)
        return samples

    def in_flight(self, server: str | None = None) -> int:
        """Requests to a server whose thread has not finished (for tests and the operator's metrics)."""
        bulkhead = self._bulkheads.get(self._servers.resolve(server))
        return bulkhead.in_flight if bulkhead else 0

    def close(self) -> None:
        for bulkhead in self._bulkheads.values():
            bulkhead.close()
        for client in self._clients.values():
            client.close()

    async def _run(self, url: str, query: str, params: dict[str, str], reduce: Callable[[Any], T]) -> T:
        client = self._client(url)
        bulkhead = self._bulkheads.get(url)
        if bulkhead is None:
            bulkhead = self._bulkheads[url] = Bulkhead(str(len(self._bulkheads)), self._pool_size)

        def fetch() -> T:
            # Runs in the bulkhead's thread: the request, the JSON decoding and the reduction.
            return reduce(self._fetch(client, url, query, params))

        try:
            return await bulkhead.run(fetch, self._timeout)
        except BulkheadFullError as exc:
            raise MetricUnavailable(
                SERVER_BUSY,
                f"{exc.in_flight} queries to Prometheus at {url} are still waiting for an answer (the server "
                f"is slow or hanging), so this one was not sent: {clip(query)}",
            ) from None
        except DeadlineError:
            raise self._deadline(url, query) from None
        except BulkheadClosedError:  # the operator is stopping
            raise MetricUnavailable(REASON, f"the Prometheus client is shut down: {clip(query)}") from None

    def _client(self, url: str) -> PrometheusConnect:
        client = self._clients.get(url)
        if client is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or credentials from the environment
            client = PrometheusConnect(url=url, session=session, timeout=self._timeout)
            adapter = BoundedAdapter(
                max_response_bytes=self._max_bytes, default_timeout=self._timeout, pool_size=self._pool_size
            )
            # Replaces the adapter the library mounted: every request to any URL goes through ours.
            for prefix in (url, "http://", "https://"):
                session.mount(prefix, adapter)
            self._clients[url] = client
        return client

    def _fetch(self, client: PrometheusConnect, url: str, query: str, params: dict[str, str]) -> Any:
        where = f"Prometheus at {url}"
        try:
            # The PromQL travels URL-encoded in `query`, so its text can never add or replace a parameter.
            return client.custom_query(query, params={"timeout": f"{self._timeout:g}s", **params})
        except DeadlineError:
            raise self._deadline(url, query) from None
        except RedirectError as exc:
            raise MetricUnavailable(
                REASON,
                f"{where} answered HTTP {exc.status}, a redirect; redirects are not followed, so name the "
                f"server's final address: {clip(query)}",
            ) from None
        except TooLargeError as exc:
            raise MetricUnavailable(
                REASON,
                f"the answer of {where} is larger than {exc.limit} bytes; aggregate the query "
                f"(e.g. sum by (pod) (...)): {clip(query)}",
            ) from None
        except ServerAnswerError as exc:
            if exc.error:
                detail = f"refused the query ({exc.error_type or 'error'}: {exc.error})"
            else:
                detail = f"answered HTTP {exc.status}"
            raise MetricUnavailable(REASON, f"{where} {detail}: {clip(query)}") from None
        except UnreachableError as exc:
            raise MetricUnavailable(REASON, f"{where} unreachable ({exc}): {clip(query)}") from None
        except (requests.exceptions.JSONDecodeError, ValueError):
            raise MetricUnavailable(
                REASON, f"{where} answered with something that is not JSON: {clip(query)}"
            ) from None
        except RecursionError:
            raise MetricUnavailable(
                REASON, f"{where} answered with JSON nested too deeply: {clip(query)}"
            ) from None
        except (KeyError, TypeError, IndexError):
            raise MetricUnavailable(
                REASON,
                f"{where} answered without data.result (is the address a Prometheus query API?): "
                f"{clip(query)}",
            ) from None
        except (requests.RequestException, PrometheusApiClientException) as exc:
            raise MetricUnavailable(REASON, f"{where} failed ({type(exc).__name__}): {clip(query)}") from None

    def _deadline(self, url: str, query: str) -> MetricUnavailable:
        return MetricUnavailable(
            REASON, f"Prometheus at {url} gave no complete answer within {self._timeout:g}s: {clip(query)}"
        )

    def _check_age(self, query: str, sample: Sample) -> None:
        if self._clock() - sample.timestamp > self._max_age:
            raise MetricUnavailable(REASON, f"result is older than {self._max_age:.0f}s: {clip(query)}")
