"""Namespace tenancy on the real cluster: `surge run --prometheus-tenancy namespace` behind prom-label-proxy.

Two namespaces A and B each export a loopback series labelled with their own namespace, under the same
metric name, plus one series only B has. The operator runs as shipped (its own process) with its Prometheus
URL at the test bed's prom-label-proxy. A policy in A on its own series scales; policies in A that name B's
series get no data or a refusal, and B's number never appears in their status or Events. B, meanwhile,
reads its own number through the same proxy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import CLUSTER_SH, Testbed, fresh_namespace
from tests.integration.test_operator import (
    condition,
    create_policy,
    events,
    policy_status,
    prometheus_policy,
    replicas,
    start_pods,
)
from tests.support.exporter import loopback_series
from tests.support.wait import holds_for, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

A_PLAYERS = "450"  # A's own number: 450 at 100 per replica -> 5 replicas
B_PLAYERS = "271.828"  # B's number, distinctive enough to be searched for in text
B_SECRET = "31337.5"  # a series only B has
# How B's numbers would look in status or an Event (plain, or as a milli-unit quantity).
B_SPELLINGS = ("271.828", "271828m", "31337.5", "31337500m")


def tenant_url() -> str:
    """The namespace-enforcing proxy of the running test bed (testbed/cluster.sh env)."""
    out = subprocess.run(["bash", str(CLUSTER_SH), "env"], capture_output=True, text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    url = env.get("SURGE_PROMETHEUS_TENANT_URL", "")
    assert url.startswith("http://127.0.0.1:"), f"no loopback tenant URL in `cluster.sh env`: {out}"
    return url


def instant(base: str, query: str, **params: str) -> list[dict[str, Any]]:
    """One instant query straight to a Prometheus API (loopback only)."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query, **params})
    with urllib.request.urlopen(url, timeout=5) as response:
        result: list[dict[str, Any]] = json.load(response)["data"]["result"]
        return result


def policy_text(api: client.ApiClient, namespace: str, name: str) -> str:
    """Everything the tenant can read about a policy: its status and its Events."""
    status = policy_status(api, namespace, name)
    messages = [f"{e.reason}: {e.message}" for e in events(api, namespace, name)]
    return json.dumps(status) + "\n" + "\n".join(messages)


@pytest.fixture
def two_tenants(k8s_api: client.ApiClient) -> Iterator[tuple[str, str]]:
    with ExitStack() as stack:
        a = stack.enter_context(_namespace(k8s_api))
        b = stack.enter_context(_namespace(k8s_api))
        yield a, b


class _namespace:  # noqa: N801 - used like a function
    """fresh_namespace as a context manager (two of them in one fixture)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._gen = fresh_namespace(api, "ten-")

    def __enter__(self) -> str:
        return next(self._gen)

    def __exit__(self, *_: object) -> None:
        next(self._gen, None)


def test_a_policy_sees_only_its_own_namespace_series(
    testbed: Testbed, crd: Path, k8s_api: client.ApiClient, two_tenants: tuple[str, str], tmp_path: Path
) -> None:
    a, b = two_tenants
    metric = f"surge_tenancy_{uuid.uuid4().hex[:8]}_players"
    secret = f"surge_tenancy_{uuid.uuid4().hex[:8]}_secret"
    proxy = tenant_url()
    with ExitStack() as stack:
        stack.enter_context(
            loopback_series(testbed.targets_dir, f"tenancy-{a}", f'{metric}{{namespace="{a}"}} {A_PLAYERS}\n')
        )
        stack.enter_context(
            loopback_series(
                testbed.targets_dir,
                f"tenancy-{b}",
                f'{metric}{{namespace="{b}"}} {B_PLAYERS}\n{secret}{{namespace="{b}"}} {B_SECRET}\n',
            )
        )
        # Control: the shared Prometheus holds B's series, so a leak would have something to leak.
        wait_until(
            lambda: len(instant(testbed.prometheus_url, f'{{__name__=~"{metric}|{secret}"}}')) == 3,
            timeout=60,
            what="both exporters scraped",
        )
        # The proxy alone already confines a query to the namespace it is given.
        assert instant(proxy, f"sum({secret})", namespace=a) == []
        assert [s["value"][1] for s in instant(proxy, f"sum({metric})", namespace=b)] == [B_PLAYERS]

        start_pods(k8s_api, a, "arena", 1)
        start_pods(k8s_api, a, "snoop", 1)
        start_pods(k8s_api, a, "spoof", 1)
        start_pods(k8s_api, b, "arena", 1)
        create_policy(k8s_api, a, "own", prometheus_policy("arena", f"sum({metric})"))
        create_policy(k8s_api, a, "snoop", prometheus_policy("snoop", f"sum({secret})"))
        create_policy(k8s_api, a, "spoof", prometheus_policy("spoof", f'sum({metric}{{namespace="{b}"}})'))
        create_policy(k8s_api, b, "own", prometheus_policy("arena", f"sum({metric})"))

        proc = stack.enter_context(_operator(testbed, proxy, [a, b], tmp_path / "operator.log"))

        # A on its own series scales on A's number only (450 -> 5), B on B's (271.8 -> 3).
        try:
            wait_until(
                lambda: replicas(k8s_api, a, "arena") == 5, timeout=90, what="A's policy to scale to 5"
            )
        except AssertionError as exc:  # say why: the condition tells a refused query from a slow operator
            metrics = condition(policy_status(k8s_api, a, "own"), "MetricsAvailable")
            raise AssertionError(f"{exc}; MetricsAvailable of A's policy: {metrics}") from None
        wait_until(lambda: replicas(k8s_api, b, "arena") == 3, timeout=90, what="B's policy to scale to 3")

        # A's policy naming B-only series: no data, never B's number.
        snoop = wait_until(
            lambda: (
                (c := condition(policy_status(k8s_api, a, "snoop"), "MetricsAvailable")).get("status")
                == "False"
                and c
            ),
            timeout=60,
            what="MetricsAvailable=False on the snooping policy",
        )
        assert "no data" in snoop["message"], snoop
        # A's policy naming B's label value explicitly: the proxy refuses it (-error-on-replace).
        spoof = wait_until(
            lambda: (
                (c := condition(policy_status(k8s_api, a, "spoof"), "MetricsAvailable")).get("status")
                == "False"
                and c
            ),
            timeout=60,
            what="MetricsAvailable=False on the spoofing policy",
        )
        assert "conflicts with injected matcher" in spoof["message"], spoof
        wait_until(
            lambda: all(
                any(e.reason == "FailedGetExternalMetric" for e in events(k8s_api, a, name))
                for name in ("snoop", "spoof")
            ),
            timeout=30,
            what="the metric failures as Events",
        )

        def nothing_of_b_leaks() -> bool:
            text = "\n".join(policy_text(k8s_api, a, name) for name in ("own", "snoop", "spoof"))
            return not any(spelling in text for spelling in B_SPELLINGS)

        assert nothing_of_b_leaks(), "\n".join(policy_text(k8s_api, a, n) for n in ("own", "snoop", "spoof"))
        holds_for(nothing_of_b_leaks, seconds=5, what="no trace of B's numbers in A's status and Events")
        # Each policy still holds its own namespace's answer (a leak would have summed both: 8 replicas).
        assert replicas(k8s_api, a, "arena") == 5
        assert replicas(k8s_api, b, "arena") == 3
        assert replicas(k8s_api, a, "snoop") == 1
        assert replicas(k8s_api, a, "spoof") == 1
        assert proc.poll() is None, "the operator exited"


class _operator:  # noqa: N801 - used like a function
    """`surge run` in tenancy mode, watching only the given namespaces; SIGTERM on exit."""

    def __init__(self, testbed: Testbed, prometheus_url: str, namespaces: list[str], log: Path) -> None:
        self._args = [
            sys.executable, "-m", "surge.cli", "run",
            "--kubeconfig", str(testbed.kubeconfig),
            "--prometheus-url", prometheus_url,
            "--prometheus-tenancy", "namespace",
            *(arg for ns in namespaces for arg in ("--namespace", ns)),
        ]  # fmt: skip
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> subprocess.Popen[bytes]:
        env = {"PATH": "/usr/bin:/bin", "SURGE_WATCH_TIMEOUT": "10"}
        if "PYTHONPATH" in os.environ:  # lets the test drive a source tree other than the installed one
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        with self._log.open("w") as out:
            self._proc = subprocess.Popen(self._args, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self._proc

    def __exit__(self, *_: object) -> None:
        assert self._proc is not None
        self._proc.terminate()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
