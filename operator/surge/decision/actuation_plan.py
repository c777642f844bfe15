"""What to write for a decision: the scale count, which pods to resize with which resources, template patches.

Pure: reconcile executes the plan (one PATCH per pod) and reports each outcome. Rules:
- InPlace / InPlaceOrRecreate resize running pods through `pods/resize` and leave the template alone
  (patching it would roll every pod); a pod created later is resized on its next tick.
- Initial resizes only pods created since the previous tick; with no previous tick (first tick, no
  checkpoint) it resizes none, so a restart never resizes pods that already ran.
- Recreate patches the pod template (the workload's controller replaces the pods).
- InPlaceOrRecreate: when the API server refuses an in-place resize, patch the template instead (once).
- Deleting pods and pods already at the target are skipped.
- In place, each pod is judged against its own requests, not the template's (VPA's updater does the same):
  after earlier in-place resizes a pod's request is no longer the template's, and judging it by the
  template would shrink it at low confidence or move it for a change below minChangeFraction.
- DryRun and pause: nothing is written; a changed count is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from surge.api.spec import UpdateMode, VerticalSpec
from surge.decision.model import ContainerResources
from surge.decision.vertical import ContainerEstimate, ContainerResize, plan_resizes

__all__ = ["ActuationPlan", "PodResize", "PodView", "Resources", "plan_actuation"]

# container name -> {"requests": {"cpu": "250m", ...}, "limits": {...}} (what the API server receives)
Resources = Mapping[str, Mapping[str, Mapping[str, str]]]

_IN_PLACE = (UpdateMode.IN_PLACE, UpdateMode.IN_PLACE_OR_RECREATE, UpdateMode.INITIAL)


@dataclass(frozen=True, slots=True)
class PodView:
    """A pod as actuation sees it: name, lifecycle and the containers' current resources."""

    name: str
    created: float  # creationTimestamp, seconds
    deleting: bool = False
    containers: Sequence[ContainerResources] = ()


@dataclass(frozen=True, slots=True)
class PodResize:
    pod: str
    resources: Resources  # only the containers of this pod that are not at the target yet


@dataclass(frozen=True, slots=True)
class ActuationPlan:
    scale_to: int | None = None  # None: no /scale write
    scale_from: int = 0
    pod_resizes: tuple[PodResize, ...] = ()
    template_patch: Resources | None = None  # Recreate: written as planned
    template_on_refusal: Resources | None = None  # InPlaceOrRecreate: written if a resize is refused
    dry_run: bool = False  # nothing is written; a changed count is reported as DryRunRescale
    resize_reasons: tuple[str, ...] = field(default=())  # "container: why", for the Event

    @property
    def writes(self) -> bool:
        return not self.dry_run and (
            self.scale_to is not None or bool(self.pod_resizes) or self.template_patch is not None
        )


def _resources(resizes: Sequence[ContainerResize]) -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = {}
    for resize in resizes:
        body = resize.to_dict()
        out[body["name"]] = {kind: dict(values) for kind, values in body["resources"].items() if values}
    return out


def _at_target(pod: PodView, resize: ContainerResize) -> bool:
    current = next((c for c in pod.containers if c.name == resize.container), None)
    if current is None:
        return True  # the pod has no such container: nothing to resize
    return current.requests == resize.new_requests and current.limits == resize.new_limits


def plan_actuation(
    *,
    from_replicas: int,
    to_replicas: int,
    resizes: Sequence[ContainerResize],
    update_mode: UpdateMode,
    pods: Sequence[PodView],
    previous_tick: float | None,
    dry_run: bool,
    estimates: Sequence[ContainerEstimate] = (),
    vertical: VerticalSpec | None = None,
    oom_containers: frozenset[str] = frozenset(),
) -> ActuationPlan:
    """`resizes` were decided against the template; with `vertical` and `estimates` given, the in-place
    modes decide again per pod against that pod's own requests (without them: the template's resizes)."""
    scale_to = to_replicas if to_replicas != from_replicas else None
    reasons = tuple(f"{r.container}: {r.reason}" for r in resizes)
    if dry_run:
        return ActuationPlan(scale_to, from_replicas, dry_run=True, resize_reasons=reasons)
    per_pod = vertical is not None and bool(estimates) and update_mode in _IN_PLACE
    # A template already at the target says nothing about pods resized away from it earlier.
    if update_mode is UpdateMode.OFF or not (resizes or per_pod):
        return ActuationPlan(scale_to, from_replicas)
    if update_mode is UpdateMode.RECREATE:
        return ActuationPlan(
            scale_to, from_replicas, template_patch=_resources(resizes), resize_reasons=reasons
        )
    assert update_mode in _IN_PLACE
    pod_resizes = []
    pod_reasons: list[str] = []
    for pod in pods:
        if pod.deleting:
            continue
        if update_mode is UpdateMode.INITIAL and (previous_tick is None or pod.created < previous_tick):
            continue
        if per_pod:
            assert vertical is not None
            needed = list(plan_resizes(estimates, vertical, pod.containers, oom_containers))
        else:
            needed = [r for r in resizes if not _at_target(pod, r)]
        if needed:
            pod_resizes.append(PodResize(pod.name, _resources(needed)))
            pod_reasons.extend(f"{r.container}: {r.reason}" for r in needed)
    on_refusal = _resources(resizes) if update_mode is UpdateMode.IN_PLACE_OR_RECREATE else None
    if per_pod:
        reasons = tuple(dict.fromkeys(pod_reasons))  # what the pods' own requests made of it, once each
    return ActuationPlan(
        scale_to,
        from_replicas,
        pod_resizes=tuple(pod_resizes),
        template_on_refusal=on_refusal,
        resize_reasons=reasons,
    )
