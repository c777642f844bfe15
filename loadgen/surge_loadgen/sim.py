"""The simulated data plane for the embedded (KWOK) cluster.

Every step: read the target Deployment and its Ready pods from the API (raw JSON), compute each pod's capacity
from its current CPU request, place the demanded players (`model.Sessions`), patch the KWOK usage annotations
of the pods whose load moved (`model.PatchBatcher`), and update the per-pod game metrics served on a loopback
/metrics endpoint that is registered with Prometheus through a file_sd JSON file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from surge_game import vocabulary as v
from surge_game.exposition import MetricsServer, Registry, labelset

from surge_loadgen.model import PatchBatcher, Sessions, Usage
from surge_loadgen.timeline import Sample, dominant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PodInfo:
    name: str
    cpu_request_m: float


@dataclass(frozen=True)
class TargetState:
    desired: int
    ready: tuple[PodInfo, ...]


def label_selector(selector: dict[str, Any]) -> str:
    """A Deployment's spec.selector as a label-selector string."""
    parts = [f"{k}={val}" for k, val in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"unsupported selector operator {op!r}")
    return ",".join(parts)


def container_cpu_request_m(pod: dict[str, Any], container: str | None) -> float:
    """The game container's CPU request in effect, in millicores.

    That is the request the (simulated) kubelet reports as applied in status.containerStatuses[].resources,
    which an in-place resize changes once actuated; before a status exists, the pod spec's request.
    """
    containers = pod["spec"]["containers"]
    name = container or containers[0]["name"]
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for source in (
        next((s for s in statuses if s.get("name") == name), None),
        next((c for c in containers if c["name"] == name), None),
    ):
        cpu = (((source or {}).get("resources") or {}).get("requests") or {}).get("cpu")
        if cpu:
            return v.parse_cpu_millis(cpu)
    return 0.0


def is_ready(pod: dict[str, Any]) -> bool:
    meta, status = pod["metadata"], pod.get("status") or {}
    return (
        meta.get("deletionTimestamp") is None
        and status.get("phase") == "Running"
        and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
    )


def make_api_client(kubeconfig: str | None) -> client.ApiClient:
    """--kubeconfig, else $SURGE_KUBECONFIG, $KUBECONFIG, ~/.kube/config; in a pod the service account."""
    path = kubeconfig or os.environ.get("SURGE_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if not path and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    api = config.new_client_from_config(config_file=path or None)  # type: ignore[no-untyped-call]
    return cast(client.ApiClient, api)


def _json(response: object) -> Any:
    """The decoded body of a call made with _preload_content=False (skips the slow model deserialization)."""
    return json.loads(cast(Any, response).data)


class SimPlane:
    """One simulated game fleet: the Ready pods of `deployment` in `namespace`."""

    name = "sim"

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        deployment: str,
        *,
        container: str | None = None,
        cost: v.CostModel | None = None,
        batcher: PatchBatcher | None = None,
        targets_dir: Path | None = None,
        metrics_host: str = "127.0.0.1",
        metrics_port: int = 0,
    ) -> None:
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.namespace, self.deployment, self.container = namespace, deployment, container
        self.cost = cost or v.CostModel()
        self.batcher = batcher or PatchBatcher()
        self.sessions = Sessions()
        self.targets_dir = targets_dir
        self.sd_file: Path | None = None
        self.api_writes = 0
        self.rejected_total = 0
        self.dropped_total = 0
        self._selector: str | None = None
        self._last_target = TargetState(desired=0, ready=())
        self.read_errors_in_a_row = 0
        self._clock = time.monotonic
        self.registry = Registry()
        self._online = self.registry.gauge(v.PLAYERS_ONLINE, "Players currently in a session (simulated).")
        self._capacity = self.registry.gauge(v.CAPACITY_PLAYERS, "Most players this pod accepts (simulated).")
        self._accepted = self.registry.counter(v.JOIN_ACCEPTED_TOTAL, "Joins accepted (simulated).")
        self._rejected = self.registry.counter(v.JOIN_REJECTED_TOTAL, "Joins rejected: pod full (simulated).")
        self._tick = self.registry.histogram(
            v.TICK_SECONDS, "Tick time from the load model (simulated).", v.TICK_BUCKETS
        )
        self._demand = self.registry.gauge(v.DEMAND_PLAYERS, "Players who want to play (scenario demand).")
        self._unserved = self.registry.gauge(v.UNSERVED_PLAYERS, "Demand minus players in a session.")
        self._fleet = labelset(namespace=namespace, deployment=deployment)
        self._pods_seen: set[str] = set()
        self.metrics = MetricsServer(self.registry.render, metrics_host, metrics_port)

    # --- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        host, port = await self.metrics.start()
        log.info("sim metrics on http://%s:%d/metrics", host, port)
        if self.targets_dir is not None:
            self.sd_file = self.targets_dir / f"surge-loadgen-{self.namespace}-{self.deployment}.json"
            body = json.dumps([{"targets": [f"{host}:{port}"], "labels": {"job": "surge-game-sim"}}])
            await asyncio.to_thread(_write_atomic, self.sd_file, body)

    async def stop(self) -> None:
        if self.sd_file is not None:
            with contextlib.suppress(OSError):
                self.sd_file.unlink()
        await self.metrics.stop()

    @property
    def metrics_url(self) -> str:
        host, port = self.metrics.address
        return f"http://{host}:{port}/metrics"

    # --- one step ------------------------------------------------------------------------------------------
    def _read_target(self) -> TargetState:
        dep = _json(
            self.apps.read_namespaced_deployment(self.deployment, self.namespace, _preload_content=False)
        )
        self._selector = label_selector(dep["spec"]["selector"])
        pods = _json(
            self.core.list_namespaced_pod(
                self.namespace, label_selector=self._selector, _preload_content=False
            )
        )["items"]
        ready = tuple(
            PodInfo(p["metadata"]["name"], container_cpu_request_m(p, self.container))
            for p in pods
            if is_ready(p)
        )
        return TargetState(desired=int(dep["spec"].get("replicas", 1)), ready=ready)

    def _patch(self, patches: dict[str, Usage]) -> list[str]:
        written = []
        for pod, usage in patches.items():
            body = {"metadata": {"annotations": usage.annotations()}}
            try:
                self.core.patch_namespaced_pod(pod, self.namespace, body, _preload_content=False)
            except ApiException as exc:
                if exc.status != 404:  # a pod deleted since the read: nothing to drive
                    log.warning("patching usage of %s failed: %s", pod, exc.reason)
                continue
            written.append(pod)
        return written

    async def _target(self) -> TargetState:
        """This step's view of the target; after a failed read, the last one (the API may blip)."""
        try:
            self._last_target = await asyncio.to_thread(self._read_target)
            self.read_errors_in_a_row = 0
        except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
            self.read_errors_in_a_row += 1
            if self.read_errors_in_a_row in (1, 10, 100):
                log.warning(
                    "reading %s/%s failed (%d in a row): %s",
                    self.namespace,
                    self.deployment,
                    self.read_errors_in_a_row,
                    getattr(exc, "reason", exc),
                )
        return self._last_target

    async def step(self, t: float, demand: int) -> Sample:
        target = await self._target()
        capacities = {p.name: self.cost.capacity(p.cpu_request_m) for p in target.ready}
        result = self.sessions.step(capacities, demand)
        self.rejected_total += result.rejected
        self.dropped_total += result.dropped

        wanted = {
            p.name: Usage(
                cpu_m=round(self.cost.cpu_millis(self.sessions.players[p.name])),
                memory_mi=round(self.cost.memory_mib(self.sessions.players[p.name])),
            )
            for p in target.ready
        }
        now = self._clock()
        due = self.batcher.due(now, wanted)
        if due:
            for pod in await asyncio.to_thread(self._patch, due):
                self.batcher.done(pod, due[pod], now)
                self.api_writes += 1

        self._export(target, capacities, result.joined, result.rejected, demand, result.unserved)
        return Sample(
            t=t,
            demand=demand,
            served=result.served,
            unserved=result.unserved,
            capacity=sum(capacities.values()),
            replicas_ready=len(target.ready),
            replicas_desired=target.desired,
            cpu_request_m=dominant([round(p.cpu_request_m) for p in target.ready]),
            rejected_total=self.rejected_total,
            dropped_total=self.dropped_total,
            api_writes_total=self.api_writes,
        )

    def _export(
        self,
        target: TargetState,
        capacities: dict[str, int],
        joined: dict[str, int],
        rejected: int,
        demand: int,
        unserved: int,
    ) -> None:
        names = [p.name for p in target.ready]
        requests = {p.name: p.cpu_request_m for p in target.ready}
        for gone in self._pods_seen - set(names):
            self.registry.drop_labels(labelset(pod=gone, namespace=self.namespace))
        self._pods_seen = set(names)
        # Rejected attempts hit full pods: spread them evenly (the first pods by name take the remainder).
        share, extra = divmod(rejected, len(names)) if names else (0, 0)
        for i, pod in enumerate(sorted(names)):
            labels = labelset(pod=pod, namespace=self.namespace)
            players = self.sessions.players.get(pod, 0)
            self._online.set(labels, players)
            self._capacity.set(labels, capacities[pod])
            self._accepted.inc(labels, joined.get(pod, 0))
            self._rejected.inc(labels, share + (1 if i < extra else 0))
            self._tick.observe(labels, self.cost.tick_seconds(players, requests[pod]))
        self._demand.set(self._fleet, demand)
        self._unserved.set(self._fleet, unserved)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
