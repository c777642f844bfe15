"""Deleting policies never stops or delays the others (issue: cancellation leaked between policies).

50 policies in one namespace tick every 2 s on one Prometheus series; 25 are deleted while all tick; the
other 25 must then follow three changes of the series, one per interval or so, each visible in their
status (desiredReplicas and the time of lastDecision).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from tests.conftest import Testbed
from tests.integration.test_operator import GROUP, PLURAL, VERSION, create_policy
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

POLICIES = 50
INTERVAL = 2


class _Series(BaseHTTPRequestHandler):
    value: ClassVar[dict[str, float]] = {}

    def do_GET(self) -> None:
        body = "".join(f'surge_test_load{{namespace="{ns}"}} {v}\n' for ns, v in self.value.items())
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def load_series(testbed: Testbed, namespace: str) -> Iterator[dict[str, float]]:
    """A loopback series whose value the test changes; scraped by the test bed's Prometheus."""
    values: dict[str, float] = {namespace: 10.0}
    handler = type("Load", (_Series,), {"value": values})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sd_file = testbed.targets_dir / f"cancel-{namespace}.json"
    target = f"127.0.0.1:{server.server_address[1]}"
    sd_file.write_text(json.dumps([{"targets": [target], "labels": {"job": f"cancel-{namespace}"}}]))
    try:
        yield values
    finally:
        sd_file.unlink(missing_ok=True)
        server.shutdown()


def _deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,  # no pods needed: DryRun decisions on a Prometheus value
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "surge.dev/placeholder:never-pulled"}]},
            },
        },
    }


def _policy(target: str, namespace: str) -> dict[str, Any]:
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "mode": "DryRun",
        "interval": f"{INTERVAL}s",
        "horizontal": {
            "minReplicas": 0,
            "maxReplicas": 100,
            "metrics": [
                {
                    "type": "Prometheus",
                    "prometheus": {
                        "query": f'sum(surge_test_load{{namespace="{namespace}"}})',
                        "target": {"type": "Value", "value": "10"},
                    },
                }
            ],
        },
    }


def _statuses(api: client.ApiClient, namespace: str) -> dict[str, dict[str, Any]]:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)[
        "items"
    ]
    return {p["metadata"]["name"]: p.get("status") or {} for p in items}


def test_deleting_half_of_the_policies_never_stops_the_other_half(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str, load_series: dict[str, float]
) -> None:
    apps = client.AppsV1Api(k8s_api)
    names = [f"p{i:02d}" for i in range(POLICIES)]
    for name in names:
        apps.create_namespaced_deployment(namespace, _deployment(name))
        create_policy(k8s_api, namespace, name, _policy(name, namespace))

    def all_desire(which: list[str], replicas: int) -> dict[str, dict[str, Any]] | None:
        statuses = _statuses(k8s_api, namespace)
        ok = all(statuses.get(n, {}).get("desiredReplicas") == replicas for n in which)
        return statuses if ok else None

    # 10 at 10 per replica -> 1 (DryRun: nothing is written to the Deployments).
    wait_until(lambda: all_desire(names, 1), timeout=120, what="all 50 policies deciding")

    doomed, kept = names[::2], names[1::2]
    custom = client.CustomObjectsApi(k8s_api)
    for name in doomed:  # while every policy ticks
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    for step in (2, 3, 4):
        load_series[namespace] = step * 10.0
        changed_at = time.monotonic()
        statuses = wait_until(
            lambda s=step: all_desire(kept, s),  # type: ignore[misc]
            timeout=5 + 2 * INTERVAL + 10,  # scrape (5 s) + two intervals + a busy machine
            what=f"the 25 remaining policies deciding {step} replicas",
        )
        took = time.monotonic() - changed_at
        times = {statuses[n]["lastDecision"]["time"] for n in kept}
        assert all(t for t in times)
        print(f"step to {step}: all 25 remaining policies followed in {took:.1f} s")
    assert not set(doomed) & set(_statuses(k8s_api, namespace)), "deleted policies are gone"
