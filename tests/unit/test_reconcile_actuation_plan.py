"""What actuation writes for a decision (decision.actuation_plan): pure, one table."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from surge.api.spec import ResourceAmounts, UpdateMode, VerticalSpec
from surge.decision.actuation_plan import PodView, plan_actuation
from surge.decision.model import ContainerResources
from surge.decision.vertical import ContainerEstimate, ContainerResize, plan_resizes
from tests.unit import builders

T = 1_000_000.0
GROW = ContainerResize(
    container="app",
    old_requests=ResourceAmounts(cpu=1.0, memory=2**29),
    new_requests=ResourceAmounts(cpu=2.0, memory=2**29),
    old_limits=ResourceAmounts(),
    new_limits=ResourceAmounts(),
    reason="cpu 1 -> 2",
)
NEW_SIZE = {"app": {"requests": {"cpu": "2", "memory": "512Mi"}}}


def pod(name: str, *, cpu: float = 1.0, created: float = T - 3600, deleting: bool = False) -> PodView:
    return PodView(
        name, created, deleting, (ContainerResources("app", requests=ResourceAmounts(cpu=cpu, memory=2**29)),)
    )


PODS = [
    pod("old"),
    pod("fresh", created=T - 5),
    pod("leaving", deleting=True),
    pod("done", cpu=2.0),
]


@dataclass
class Case:
    name: str
    mode: UpdateMode
    previous_tick: float | None = T - 10
    dry_run: bool = False
    to: int = 5
    resizes: tuple[ContainerResize, ...] = (GROW,)
    # expectations
    scale_to: int | None = None
    pods: list[str] = field(default_factory=list)
    template: bool = False
    on_refusal: bool = False


CASES = [
    Case("no change, no writes", UpdateMode.IN_PLACE, resizes=()),
    Case("scale only", UpdateMode.OFF, to=8, scale_to=8),
    Case("Off never resizes", UpdateMode.OFF),
    Case("InPlace: live pods not at the target", UpdateMode.IN_PLACE, pods=["old", "fresh"]),
    Case("InPlace with a scale", UpdateMode.IN_PLACE, to=3, scale_to=3, pods=["old", "fresh"]),
    Case(
        "InPlaceOrRecreate: pods, and the template if refused",
        UpdateMode.IN_PLACE_OR_RECREATE,
        pods=["old", "fresh"],
        on_refusal=True,
    ),
    Case("Recreate: the template only", UpdateMode.RECREATE, template=True),
    Case("Initial: pods created since the last tick", UpdateMode.INITIAL, pods=["fresh"]),
    Case("Initial without history: none", UpdateMode.INITIAL, previous_tick=None),
    Case("DryRun writes nothing but reports the count", UpdateMode.IN_PLACE, dry_run=True, to=8, scale_to=8),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_actuation(case: Case) -> None:
    plan = plan_actuation(
        from_replicas=5,
        to_replicas=case.to,
        resizes=case.resizes,
        update_mode=case.mode,
        pods=PODS,
        previous_tick=case.previous_tick,
        dry_run=case.dry_run,
    )
    assert plan.scale_to == case.scale_to
    assert [r.pod for r in plan.pod_resizes] == case.pods
    assert all(r.resources == NEW_SIZE for r in plan.pod_resizes)
    assert (plan.template_patch == NEW_SIZE) is case.template
    assert (plan.template_on_refusal == NEW_SIZE) is case.on_refusal
    assert plan.dry_run is case.dry_run
    assert plan.writes is (not case.dry_run and bool(case.scale_to or case.pods or case.template))


def test_one_patch_per_pod_with_every_container_that_needs_it() -> None:
    sidecar = ContainerResize(
        container="sidecar",
        old_requests=ResourceAmounts(cpu=0.1),
        new_requests=ResourceAmounts(cpu=0.2),
        old_limits=ResourceAmounts(),
        new_limits=ResourceAmounts(),
        reason="cpu 100m -> 200m",
    )
    two = PodView(
        "two",
        T - 3600,
        containers=(
            ContainerResources("app", requests=ResourceAmounts(cpu=1.0, memory=2**29)),
            ContainerResources("sidecar", requests=ResourceAmounts(cpu=0.1)),
        ),
    )
    plan = plan_actuation(
        from_replicas=1,
        to_replicas=1,
        resizes=(GROW, sidecar),
        update_mode=UpdateMode.IN_PLACE,
        pods=[two],
        previous_tick=None,
        dry_run=False,
    )
    assert len(plan.pod_resizes) == 1
    assert set(plan.pod_resizes[0].resources) == {"app", "sidecar"}
    assert plan.resize_reasons == ("app: cpu 1 -> 2", "sidecar: cpu 100m -> 200m")


# --- in place, each pod against its own requests ------------------------------------------------------------
# The template stays at 250m in place; earlier resizes moved the pods. The demo showed Events saying
# "cpu 250m -> 501m" for pods going 621m -> 501m: judged by the template, the confidence rule (never shrink
# on little data) and minChangeFraction never saw the pods' real requests.
TEMPLATE_CPU = 0.25


def _estimate(target: float, *, confidence: float, history: float = 3600.0) -> ContainerEstimate:
    return ContainerEstimate(
        container="app",
        target=ResourceAmounts(cpu=target),
        lower_bound=ResourceAmounts(cpu=target * 0.8),
        upper_bound=ResourceAmounts(cpu=target * 1.5),
        uncapped_target=ResourceAmounts(cpu=target),
        history_seconds=history,
        confidence=confidence,
    )


def _vertical() -> VerticalSpec:
    parsed = builders.spec(
        vertical={
            "updateMode": "InPlace",
            "halfLife": "10m",
            "containerPolicies": [{"containerName": "app", "controlledResources": ["cpu"]}],
        }
    ).vertical
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    ("pod_cpu", "target", "confidence", "resized_to", "reason"),
    [
        # raising is always allowed, whatever the template says
        (0.25, 0.501, 0.1, "501m", "cpu 250m -> 501m"),
        # the pod is above the target: not shrunk at low confidence (the template would say raise)
        (0.621, 0.501, 0.1, None, None),
        # with enough history it comes down, and the reason names the pod's own request
        (0.621, 0.501, 5.0, "501m", "cpu 621m -> 501m"),
        # the target came back to the template's value: pods resized away from it still follow
        (0.621, TEMPLATE_CPU, 5.0, "250m", "cpu 621m -> 250m"),
        # a pod already at the target is left alone although the template is not
        (0.501, 0.501, 5.0, None, None),
        # a change below minChangeFraction (10%) inside the bounds waits, judged on the pod's request
        (0.52, 0.501, 5.0, None, None),
    ],
)
def test_in_place_judges_each_pod_by_its_own_requests(
    pod_cpu: float, target: float, confidence: float, resized_to: str | None, reason: str | None
) -> None:
    vertical = _vertical()
    estimates = (_estimate(target, confidence=confidence),)
    template = [ContainerResources("app", requests=ResourceAmounts(cpu=TEMPLATE_CPU))]
    resizes = plan_resizes(estimates, vertical, template)  # what the template alone would say
    the_pod = PodView(
        "p", T - 3600, False, (ContainerResources("app", requests=ResourceAmounts(cpu=pod_cpu)),)
    )
    actions = plan_actuation(
        from_replicas=1,
        to_replicas=1,
        resizes=resizes,
        update_mode=UpdateMode.IN_PLACE,
        pods=[the_pod],
        previous_tick=T - 10,
        dry_run=False,
        estimates=estimates,
        vertical=vertical,
    )
    if resized_to is None:
        assert actions.pod_resizes == ()
        assert actions.resize_reasons == ()
    else:
        assert [(r.pod, r.resources["app"]["requests"]["cpu"]) for r in actions.pod_resizes] == [
            ("p", resized_to)
        ]
        assert reason is not None
        assert any(reason in why for why in actions.resize_reasons), actions.resize_reasons
