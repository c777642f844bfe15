"""AutoScalePolicyCheckpoint objects: read a policy's decision state at start, write it after ticks.

``CheckpointStore`` talks to the API server through a small port (``CheckpointApi``: get / create /
replace with resourceVersion), run in worker threads; ``KubeCheckpointApi`` is the real one (raw JSON
through ``surge.kube.request``), tests use an in-memory fake. Bad data never raises: ``load`` returns
None and tells the caller why (an Event for the user), ``save`` returns False and logs one line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.api.spec import PolicySpec
from surge.decision.checkpoint import CheckpointError, Restored, decode, encode
from surge.decision.plan import PlanState
from surge.kube import request

__all__ = [
    "API_VERSION",
    "KIND",
    "CheckpointApi",
    "CheckpointApiError",
    "CheckpointConflict",
    "CheckpointMissing",
    "CheckpointStore",
    "KubeCheckpointApi",
    "ProblemReport",
    "checkpoint_body",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

GROUP, VERSION, PLURAL = "autoscaling.surge.dev", "v1alpha1", "autoscalepolicycheckpoints"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "AutoScalePolicyCheckpoint"
UNREADABLE = "CheckpointUnreadable"

# (reason, message): the caller turns it into a Warning Event on the policy.
ProblemReport = Callable[[str, str], None]


class CheckpointConflict(Exception):  # noqa: N818 - an answer of the server, not a bug
    """409: the object exists already (create) or changed since it was read (replace)."""


class CheckpointMissing(Exception):  # noqa: N818
    """404 on replace: the object is gone (e.g. the garbage collector deleted it)."""


class CheckpointApiError(Exception):
    """Any other failure to talk to the API server (refused, timed out, 5xx, 403 ...)."""


class CheckpointApi(Protocol):
    """Blocking calls (the store runs them in worker threads)."""

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        ...

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT; ``body.metadata.resourceVersion`` is the precondition (409 when stale)."""
        ...


class KubeCheckpointApi:
    def __init__(self, api: client.ApiClient, timeout: float = 10.0) -> None:
        self._api = api
        self._timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return request(self._api, method, path, body=body, timeout=self._timeout)
        except ApiException as exc:
            if exc.status == 404:
                raise CheckpointMissing(path) from exc
            if exc.status == 409:
                raise CheckpointConflict(path) from exc
            raise CheckpointApiError(f"{method} {path}: {exc.status} {exc.reason}") from exc
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:  # ValueError: not JSON
            raise CheckpointApiError(f"{method} {path}: {exc}") from exc

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            answer = self._call("GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}")
        except CheckpointMissing:
            return None
        return answer if isinstance(answer, dict) else {}

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self._call("POST", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", body)
        return answer if isinstance(answer, dict) else {}

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"
        answer = self._call("PUT", path, body)
        return answer if isinstance(answer, dict) else {}


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def checkpoint_body(
    namespace: str, policy_name: str, policy_uid: str, spec: dict[str, Any]
) -> dict[str, Any]:
    """The whole object: same name as the policy, owned by it (garbage-collected with it)."""
    owner = {
        "apiVersion": API_VERSION,
        "kind": "AutoScalePolicy",
        "name": policy_name,
        "uid": policy_uid,
        "controller": True,
        # False: true would need update on autoscalepolicies/finalizers, and nothing needs to wait.
        "blockOwnerDeletion": False,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": policy_name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "surge"},
            "ownerReferences": [owner],
        },
        "spec": spec,
    }


def _resource_version(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    return str(metadata.get("resourceVersion", "")) if isinstance(metadata, dict) else ""


class CheckpointStore:
    """Checkpoint I/O runs on threads of its own (a bulkhead): at 1,000 policies its ~17-33 writes/s shared
    the ticks' I/O pool and queued every tick's `GET /scale` behind them (p99 tick 10 s, measured). When more
    than `max_pending` writes wait, a save is skipped (False: the schedule retries it later)."""

    def __init__(
        self,
        api: CheckpointApi,
        *,
        clock: Callable[[], float] = time.time,
        threads: int = 4,
        max_pending: int = 64,
    ) -> None:
        self._api = api
        self._clock = clock
        self._versions: dict[tuple[str, str], str] = {}  # last resourceVersion seen per checkpoint
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="surge-checkpoint")
        self._max_pending = max_pending
        self._pending = 0

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._pending -= 1

    async def load(
        self,
        namespace: str,
        policy_name: str,
        policy_uid: str,
        spec: PolicySpec,
        *,
        on_problem: ProblemReport | None = None,
    ) -> Restored | None:
        """The saved (state, last_tick), or None: none saved, or unusable (then ``on_problem`` says why)."""

        def problem(reason: str, message: str) -> None:
            log.warning("checkpoint %s/%s not used: %s", namespace, policy_name, message)
            if on_problem is not None:
                on_problem(reason, message)

        try:
            obj = await self._run(self._api.get, namespace, policy_name)
        except CheckpointApiError as exc:
            problem(UNREADABLE, f"could not read the checkpoint, starting without it: {exc}")
            return None
        if obj is None:
            return None
        self._versions[(namespace, policy_name)] = _resource_version(obj)
        try:
            return decode(obj.get("spec") or {}, spec, policy_uid=policy_uid, now=self._clock())
        except CheckpointError as exc:
            problem(exc.reason, f"checkpoint ignored, starting without it: {exc.message}")
            return None

    async def save(
        self,
        namespace: str,
        policy_name: str,
        policy_uid: str,
        state: PlanState,
        last_tick: float | None,
        now: float,
        *,
        generation: int = 0,
    ) -> bool:
        """Write the checkpoint (create or replace). False when the API refused it (logged)."""
        spec = encode(state, last_tick, now, policy_uid=policy_uid, generation=generation)
        spec["savedAt"] = _rfc3339(now)
        body = checkpoint_body(namespace, policy_name, policy_uid, spec)
        if self._pending >= self._max_pending:
            log.debug(
                "checkpoint %s/%s not saved now: %d writes pending", namespace, policy_name, self._pending
            )
            return False
        try:
            answer = await self._run(self._write, namespace, policy_name, body)
        except (CheckpointApiError, CheckpointConflict, CheckpointMissing) as exc:
            log.warning("checkpoint %s/%s not saved: %s", namespace, policy_name, exc)
            return False
        self._versions[(namespace, policy_name)] = _resource_version(answer)
        return True

    def forget(self, namespace: str, policy_name: str) -> None:
        """Drop what is cached for a deleted policy."""
        self._versions.pop((namespace, policy_name), None)

    def _write(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        # Blocking (worker thread). We are the only writer, so a conflict means our cached version is
        # stale (another replica wrote before a handover, or a first save meets an old object): re-read
        # once and replace; a second conflict gives up until the next save.
        version = self._versions.get((namespace, name))
        try:
            if version:
                return self._replace(namespace, name, body, version)
            return self._api.create(namespace, body)
        except CheckpointMissing:
            return self._api.create(namespace, body)
        except CheckpointConflict:
            current = self._api.get(namespace, name)
            if current is None:
                return self._api.create(namespace, body)
            return self._replace(namespace, name, body, _resource_version(current))

    def _replace(self, namespace: str, name: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        metadata = {**body["metadata"], "resourceVersion": version}
        return self._api.replace(namespace, name, {**body, "metadata": metadata})
