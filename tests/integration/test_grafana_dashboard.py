"""docs/grafana/surge-dashboard.json against the operator's real /metrics, scraped by the test bed Prometheus.

`surge run` runs as its own process (as in test_cli_operator) watching only this test's namespace, with
/metrics on a free loopback port registered with Prometheus through a file_sd file (as the load generator's
sim does). Three policies give every panel something to show: one scales on CPU, one has a broken query
(metric failures), one points at a missing Deployment (an outcome other than ok). Then every panel query of
the dashboard, with the template variables filled in for this operator and namespace, must return data.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import Testbed, fresh_namespace
from tests.integration.test_operator import (
    cpu_policy,
    create_policy,
    load_all,
    prometheus_policy,
    replicas,
    start_pods,
)
from tests.support.wait import StopWaitingError, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "surge-dashboard.json"
BUILTIN = {"__rate_interval", "__interval", "__range"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _targets(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title + refId, expr) of every panel target."""
    return [(f"{p['title']} {t['refId']}", t["expr"]) for p in dash["panels"] for t in p["targets"]]


def _fill(expr: str, values: dict[str, str]) -> str:
    """The expression as Grafana sends it: $var and ${var} replaced."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)


def _prometheus(url: str, path: str, **params: str) -> Any:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}{path}?{query}", timeout=10) as response:  # loopback only
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def test_dashboard_json_is_structurally_valid_for_grafana() -> None:
    dash = _dashboard()
    assert dash["schemaVersion"] >= 36
    assert dash["title"]
    assert dash["uid"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "namespace", "policy"):
        assert variables[name]["type"] == "query"
        assert variables[name]["query"]["query"].startswith("label_values(surge_")
        assert variables[name]["allValue"] == ".*"  # the expressions match with =~
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), ids
    for panel in dash["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        pos = panel["gridPos"]
        assert 0 <= pos["x"] < pos["x"] + pos["w"] <= 24, panel["title"]
        assert pos["h"] > 0, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip(), panel["title"]
            used = set(re.findall(r"\$\{?(\w+)\}?", target["expr"]))
            assert used <= set(variables) | BUILTIN, (panel["title"], used)
    # Every exported family appears on some panel (a new metric needs a panel or a reason not to).
    exprs = " ".join(e for _, e in _targets(dash))
    for family in (
        "surge_desired_replicas",
        "surge_current_replicas",
        "surge_metric_value",
        "surge_metric_target",
        "surge_metric_failures_total",
        "surge_scale_actions_total",
        "surge_decisions_total",
        "surge_tick_seconds_bucket",
        "surge_leader",
        "surge_policies",
    ):
        assert family in exprs, family


@pytest.fixture
def graf_namespace(k8s_api: client.ApiClient) -> Iterator[str]:
    yield from fresh_namespace(k8s_api, "graf-")  # not "t-*": the session's in-process operator ignores it


def test_every_panel_query_returns_data_from_the_operators_real_metrics(
    testbed: Testbed, crd: Path, k8s_api: client.ApiClient, graf_namespace: str, tmp_path: Path
) -> None:
    ns = graf_namespace
    job = f"surge-operator-{ns}"
    metrics_port = _free_port()
    log = tmp_path / "operator.log"
    sd_file = testbed.targets_dir / f"{job}.json"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "surge.cli", "run",
                "--kubeconfig", str(testbed.kubeconfig),
                "--namespace", ns,
                "--prometheus-url", testbed.prometheus_url,
                "--metrics-port", str(metrics_port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "SURGE_WATCH_TIMEOUT": "10"},
        )  # fmt: skip
        try:
            # Written whole, then renamed: Prometheus rereads the folder every 5 s and must never see half.
            partial = sd_file.with_suffix(".tmp")
            partial.write_text(
                json.dumps([{"targets": [f"127.0.0.1:{metrics_port}"], "labels": {"job": job}}])
            )
            partial.rename(sd_file)

            start_pods(k8s_api, ns, "web", 2, cpu_request="100m")
            load_all(k8s_api, ns, "web", "200m")  # 200% of requests against a 50% target: scales up
            start_pods(k8s_api, ns, "lobby", 1)
            create_policy(k8s_api, ns, "web", cpu_policy("web"))
            create_policy(
                k8s_api, ns, "broken", prometheus_policy("lobby", "sum(rate(surge_test_players[1m]")
            )
            create_policy(k8s_api, ns, "orphan", prometheus_policy("no-such-deployment", "vector(1)"))

            def alive() -> None:
                if proc.poll() is not None:
                    raise StopWaitingError(f"surge run exited {proc.returncode}: {log.read_text()[-2000:]}")

            def scraped() -> bool:
                alive()
                active = _prometheus(testbed.prometheus_url, "/api/v1/targets", state="active")[
                    "activeTargets"
                ]
                return any(t["labels"].get("job") == job and t["health"] == "up" for t in active)

            wait_until(scraped, timeout=30, what=f"Prometheus scraping {job}")
            wait_until(
                lambda: replicas(k8s_api, ns, "web") > 2, timeout=60, what="the CPU policy to scale up"
            )

            dash = _dashboard()
            # DNS labels are regexes matching only themselves (re.escape's "\\-" is no PromQL string escape).
            assert re.fullmatch(r"[a-z0-9-]+", job), job
            values = {"job": job, "namespace": ns, "policy": ".*"}
            values |= {"datasource": "", "__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
            queries = [(where, _fill(expr, values)) for where, expr in _targets(dash)]
            empty: list[str] = []

            def all_answer() -> bool:
                alive()
                empty[:] = [
                    f"{where}: {q}"
                    for where, q in queries
                    if not _prometheus(testbed.prometheus_url, "/api/v1/query", query=q)["result"]
                ]
                return not empty

            # rate() needs two samples of a series in its window: a few 5 s scrapes after the first one.
            try:
                wait_until(all_answer, timeout=60, what="every panel query to return data", interval=2)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\nempty panel queries:\n" + "\n".join(empty)) from None

            # The template variables offer this operator, namespace and its evaluated policies.
            def label(name: str, match: str) -> list[str]:
                found: list[str] = _prometheus(
                    testbed.prometheus_url, f"/api/v1/label/{name}/values", **{"match[]": match}
                )
                return found

            assert job in label("job", "surge_leader")
            assert ns in label("namespace", f'surge_desired_replicas{{job="{job}"}}')
            assert {"web", "broken"} <= set(
                label("policy", f'surge_desired_replicas{{job="{job}",namespace="{ns}"}}')
            )

            # What the panels show is what the operator decided, not just any series.
            def one(query: str) -> list[dict[str, Any]]:
                found: list[dict[str, Any]] = _prometheus(
                    testbed.prometheus_url, "/api/v1/query", query=query
                )["result"]
                return found

            sel = f'job="{job}",namespace="{ns}"'
            targets = one(f'surge_metric_target{{{sel},policy="web",metric="cpu"}}')
            assert [float(t["value"][1]) for t in targets] == [50.0]
            failures = {
                (f["metric"]["policy"], f["metric"]["reason"])
                for f in one(f"surge_metric_failures_total{{{sel}}}")
            }
            assert ("broken", "FailedGetExternalMetric") in failures
            # (web may fail a tick too while metrics-server has no usage for its new pods yet.)
            assert {policy for policy, _ in failures} <= {"broken", "web"}  # orphan never got to its metrics
            outcomes = {r["metric"]["outcome"] for r in one(f'surge_tick_seconds_count{{job="{job}"}}')}
            assert {"ok", "no-target"} <= outcomes
            assert one(f'surge_scale_actions_total{{job="{job}",direction="up"}}')
            assert [float(r["value"][1]) for r in one(f'surge_policies{{job="{job}"}}')] == [3.0]
        finally:
            sd_file.unlink(missing_ok=True)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]
