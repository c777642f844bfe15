"""Kubernetes Events about policies, with repeats suppressed so a 1 s interval cannot flood the API.

Scale Events are the exception: a scale action that differs from the last one reported for the policy is
always posted, so a real 12 -> 2 is never hidden behind an identical-looking message from minutes ago.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kubernetes import client

from surge.kube import request

log = logging.getLogger(__name__)

COMPONENT = "surge-operator"
MAX_MESSAGE = 1024  # what kubectl shows comfortably; the API allows more


@dataclass(frozen=True, slots=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str


class RepeatFilter:
    """Lets a key through at most once per `repeat_after` seconds; memory stays bounded.

    `due(key, scale=(from, to))` also lets through any scale action that differs from the last one let
    through for the same object (key[0]).
    """

    def __init__(self, repeat_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._repeat_after = repeat_after
        self._clock = clock
        self._last: dict[tuple[str, str, str], float] = {}
        self._last_scale: dict[str, tuple[int, int]] = {}

    def due(self, key: tuple[str, str, str], scale: tuple[int, int] | None = None) -> bool:
        now = self._clock()
        new_action = scale is not None and self._last_scale.get(key[0]) != scale
        if not new_action and now - self._last.get(key, float("-inf")) < self._repeat_after:
            return False
        self._last[key] = now
        if scale is not None:
            self._last_scale[key[0]] = scale
        if len(self._last) > 10_000:
            cutoff = now - self._repeat_after
            self._last = {k: v for k, v in self._last.items() if v >= cutoff}
            live = {k[0] for k in self._last}
            self._last_scale = {k: v for k, v in self._last_scale.items() if k in live}
        return True


def event_body(
    obj: ObjectRef, type_: str, reason: str, message: str, now: datetime, instance: str = COMPONENT
) -> dict[str, object]:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{obj.name}.", "namespace": obj.namespace},
        "involvedObject": {
            "apiVersion": obj.api_version,
            "kind": obj.kind,
            "name": obj.name,
            "namespace": obj.namespace,
            "uid": obj.uid,
        },
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "type": type_,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance[:128],  # which replica acted (the Lease identity)
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventRecorder:
    """Posts core/v1 Events; an identical (object, reason, message) within `repeat_after` s is dropped."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        repeat_after: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        instance: str = COMPONENT,
    ) -> None:
        self._api = api
        self._repeats = RepeatFilter(repeat_after, clock)
        self._instance = instance

    def _post(self, obj: ObjectRef, type_: str, reason: str, message: str) -> None:
        body = event_body(obj, type_, reason, message, datetime.now(UTC), self._instance)
        try:
            request(self._api, "POST", f"/api/v1/namespaces/{obj.namespace}/events", body=body)
        except Exception as exc:  # an Event is best effort: never fail a reconcile because of it
            log.warning("could not post event %s for %s/%s: %s", reason, obj.namespace, obj.name, exc)

    async def emit(
        self, obj: ObjectRef, type_: str, reason: str, message: str, *, scale: tuple[int, int] | None = None
    ) -> bool:
        """Posts unless it repeats a recent one; returns whether it was posted.

        `scale` = (from, to) marks a scale action: posted whenever it differs from the last one posted.
        """
        if not self._repeats.due((obj.uid, reason, message), scale):
            return False
        await asyncio.to_thread(self._post, obj, type_, reason, message)
        return True

    async def normal(
        self, obj: ObjectRef, reason: str, message: str, *, scale: tuple[int, int] | None = None
    ) -> bool:
        return await self.emit(obj, "Normal", reason, message, scale=scale)

    async def warning(
        self, obj: ObjectRef, reason: str, message: str, *, scale: tuple[int, int] | None = None
    ) -> bool:
        return await self.emit(obj, "Warning", reason, message, scale=scale)
