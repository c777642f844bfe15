"""Kubernetes Events about policies, with repeats suppressed so a 1 s interval cannot flood the API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kubernetes import client

log = logging.getLogger(__name__)

COMPONENT = "surge-operator"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str


class RepeatFilter:
    """Lets a key through at most once per `repeat_after` seconds; memory stays bounded."""

    def __init__(self, repeat_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._repeat_after = repeat_after
        self._clock = clock
        self._last: dict[tuple[str, str, str], float] = {}

    def due(self, key: tuple[str, str, str]) -> bool:
        now = self._clock()
        if now - self._last.get(key, float("-inf")) < self._repeat_after:
            return False
        self._last[key] = now
        if len(self._last) > 10_000:
            cutoff = now - self._repeat_after
            self._last = {k: v for k, v in self._last.items() if v >= cutoff}
        return True


class EventRecorder:
    """Posts core/v1 Events; an identical (object, reason, message) within `repeat_after` s is dropped."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        repeat_after: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._repeats = RepeatFilter(repeat_after, clock)

    def _post(self, obj: ObjectRef, type_: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{obj.name}.", namespace=obj.namespace),
            involved_object=client.V1ObjectReference(
                api_version=obj.api_version,
                kind=obj.kind,
                name=obj.name,
                namespace=obj.namespace,
                uid=obj.uid,
            ),
            reason=reason,
            message=message[:1024],
            type=type_,
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=COMPONENT,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        try:
            self._core.create_namespaced_event(obj.namespace, event, _request_timeout=10)
        except Exception as exc:  # an Event is best effort: never fail a reconcile because of it
            log.warning("could not post event %s for %s/%s: %s", reason, obj.namespace, obj.name, exc)

    async def emit(self, obj: ObjectRef, type_: str, reason: str, message: str) -> bool:
        """Posts unless it repeats a recent one; returns whether it was posted."""
        if not self._repeats.due((obj.uid, reason, message)):
            return False
        await asyncio.to_thread(self._post, obj, type_, reason, message)
        return True

    async def normal(self, obj: ObjectRef, reason: str, message: str) -> bool:
        return await self.emit(obj, "Normal", reason, message)

    async def warning(self, obj: ObjectRef, reason: str, message: str) -> bool:
        return await self.emit(obj, "Warning", reason, message)
