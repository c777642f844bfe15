"""Every replica count a Deployment went through, recorded by a watch from the test process.

Polling would miss a write that is undone within the poll interval (two replicas writing +2 each, a user's
scale overwritten at once); a watch sees every resourceVersion. The watch is re-established after an API
server or etcd outage, and each record keeps the managers of the write (managedFields) for the two-writer
check.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch


@dataclass(frozen=True)
class ScaleRecord:
    at: float  # time.monotonic() when the test saw it
    replicas: int
    resource_version: str
    managers: tuple[tuple[str, str, str], ...]  # (manager, operation, subresource) touching spec.replicas


def _replica_managers(meta: Any) -> tuple[tuple[str, str, str], ...]:
    out = []
    for entry in meta.managed_fields or []:
        fields = (entry.fields_v1 or {}).get("f:spec", {})
        if "f:replicas" in fields:
            out.append((entry.manager or "", entry.operation or "", entry.subresource or ""))
    return tuple(out)


@dataclass
class ScaleHistory:
    api: client.ApiClient
    namespace: str
    name: str
    records: list[ScaleRecord] = field(default_factory=list)
    watch_errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ScaleHistory:
        self._thread = threading.Thread(target=self._run, name=f"history-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _record(self, obj: Any) -> None:
        if obj is None or obj.spec is None:
            return
        replicas = int(obj.spec.replicas or 0)
        if self.records and self.records[-1].replicas == replicas:
            return
        self.records.append(
            ScaleRecord(
                time.monotonic(), replicas, obj.metadata.resource_version, _replica_managers(obj.metadata)
            )
        )

    def _run(self) -> None:
        apps = client.AppsV1Api(self.api)
        selector = f"metadata.name={self.name}"
        while not self._stop.is_set():
            try:
                listing = apps.list_namespaced_deployment(
                    self.namespace, field_selector=selector, _request_timeout=5
                )
                for item in listing.items:
                    self._record(item)
                stream = watch.Watch().stream(
                    apps.list_namespaced_deployment,
                    self.namespace,
                    field_selector=selector,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=3,
                    _request_timeout=10,
                )
                for event in stream:
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record(event["object"])
                    elif event["type"] == "DELETED":
                        self.records.append(ScaleRecord(time.monotonic(), 0, "", (("<deleted>", "", ""),)))
                    if self._stop.is_set():
                        break
            except Exception:  # the API server or etcd is down: try again shortly
                self.watch_errors += 1
                self._stop.wait(0.3)

    # --- analysis -----------------------------------------------------------------------------------------

    def values(self) -> list[int]:
        return [r.replicas for r in self.records]

    def current(self) -> int | None:
        return self.records[-1].replicas if self.records else None

    def value_at(self, at: float) -> int | None:
        before = [r for r in self.records if r.at <= at]
        return before[-1].replicas if before else None

    def after(self, at: float) -> list[ScaleRecord]:
        return [r for r in self.records if r.at > at]

    def max_growth(self, window: float) -> tuple[int, float]:
        """The largest increase within any `window` seconds and when it ended (a Pods rate policy check)."""
        worst, when = 0, 0.0
        for rec in self.records:
            start = self.value_at(rec.at - window)
            inside = [r.replicas for r in self.records if rec.at - window < r.at <= rec.at]
            floor = min([*inside, *([start] if start is not None else [])])
            if rec.replicas - floor > worst:
                worst, when = rec.replicas - floor, rec.at
        return worst, when

    def describe(self, origin: float) -> str:
        return ", ".join(f"{r.at - origin:+.1f}s={r.replicas}" for r in self.records)
