"""`surge explain`: the renderer turns realistic policy objects into the right sentences and JSON fields.

Each case is a status the operator writes in that situation (shapes from surge.api.status); time is
injected, so the relative times in the text are exact.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from surge.api.spec import Behavior
from surge.api.status import LastDecision
from surge.decision.behavior import BehaviorState, Recommendation, normalize
from surge.explain import cli as explain_cli
from surge.explain.render import explain, next_evaluation, to_json, to_text

NOW = 1_796_000_000.0  # 2026-11-30T...Z


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cond(type_: str, status: str, reason: str, message: str = "", at: float = NOW - 600) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": iso(at),
        "observedGeneration": 1,
    }


HEALTHY = [
    cond("AbleToScale", "True", "ReadyForNewScale", "the last scale time was sufficiently old"),
    cond("ScalingActive", "True", "ValidMetricFound", "the planner was able to compute a replica count"),
    cond("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the acceptable range"),
    cond("MetricsAvailable", "True", "AllMetricsAvailable", "all metrics returned data"),
    cond("Conflict", "False", "NoConflict", "horizontal and vertical are coordinated"),
    cond("Ready", "True", "Reconciled", "the policy is being applied"),
]

CPU = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
}
PLAYERS = {
    "type": "Prometheus",
    "prometheus": {"query": "sum(players)", "target": {"type": "AverageValue", "averageValue": "100"}},
}


def policy(
    *,
    status: dict[str, Any] | None,
    mode: str = "Active",
    metrics: list[dict[str, Any]] | None = None,
    max_replicas: int = 10,
    annotations: dict[str, str] | None = None,
    generation: int = 1,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "autoscaling.surge.dev/v1alpha1",
        "kind": "AutoScalePolicy",
        "metadata": {
            "name": "web",
            "namespace": "games",
            "uid": "uid-1",
            "generation": generation,
            "annotations": annotations or {},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "mode": mode,
            "interval": "15s",
            "horizontal": {"minReplicas": 1, "maxReplicas": max_replicas, "metrics": metrics or [CPU]},
        },
    }
    if status is not None:
        body["status"] = status
    return body


def metric(
    name: str, type_: str, value: str, target: str, proposed: int | None, error: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": type_, "value": value, "target": target, "error": error}
    if proposed is not None:
        out["proposedReplicas"] = proposed
    return out


def status(
    frm: int,
    to: int,
    reason: str,
    *,
    limited_by: str = "",
    metrics: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    decided: float = NOW - 5,
    scaled: bool = False,
    hold_until: float | None = None,
) -> dict[str, Any]:
    decision: dict[str, Any] = {
        "time": iso(decided),
        "from": frm,
        "to": to,
        "reason": reason,
        "limitedBy": limited_by,
    }
    if hold_until is not None:
        decision["holdUntil"] = iso(hold_until)
    out: dict[str, Any] = {
        "observedGeneration": 1,
        "currentReplicas": frm,
        "desiredReplicas": to,
        "currentMetrics": metrics if metrics is not None else [metric("cpu", "Resource", "200", "50", to)],
        "lastDecision": decision,
        "consecutiveFailures": 0,
        "conditions": conditions if conditions is not None else HEALTHY,
    }
    if scaled:
        out["lastScaleTime"] = iso(decided)
    return out


CASES: list[tuple[str, dict[str, Any], list[str], dict[str, Any]]] = [
    (
        "scaled up by a metric",
        policy(
            status=status(
                2,
                8,
                "cpu: cpu utilization 200% of 50% target over 2 ready pod(s) -> 8",
                scaled=True,
            )
        ),
        [
            "AutoScalePolicy games/web -> Deployment/web  (mode Active, interval 15s)",
            "Replicas: current 2, desired 8 (min 1, max 10)",
            f"Decision: At {iso(NOW - 5)} it scaled from 2 to 8 replicas.",
            "cpu (Resource): value 200%, target 50% -> proposes 8 replica(s) [highest: this one decides]",
        ],
        {"summary": f"At {iso(NOW - 5)} it scaled from 2 to 8 replicas.", "whyNothing": [], "limitedBy": []},
    ),
    (
        "the highest of two metrics wins",
        policy(
            metrics=[CPU, PLAYERS],
            status=status(
                3,
                7,
                "prometheus-1: value 650 = 216.7 per replica vs 100 target -> 7 (max of 2 metrics)",
                scaled=True,
                metrics=[
                    metric("cpu", "Resource", "80", "50", 5),
                    metric("prometheus-1", "Prometheus", "216667m", "100", 7),
                ],
            ),
        ),
        [
            "cpu (Resource): value 80%, target 50% -> proposes 5 replica(s)",
            "prometheus-1 (Prometheus): value 216667m, target 100 -> proposes 7 replica(s) "
            "[highest: this one decides]",
        ],
        {"metrics.winner": [False, True]},
    ),
    (
        "limited by a rate policy",
        policy(
            max_replicas=50,
            status=status(
                4,
                8,
                "cpu: ... -> 20; ScaleUpLimit: the desired replica count is increasing faster than "
                "the maximum scale rate (20 -> 8)",
                limited_by="ScaleUpLimit",
                metrics=[metric("cpu", "Resource", "250", "50", 20)],
                scaled=True,
            ),
        ),
        [
            "Limited by the scale-up rate policy (behavior.scaleUp: 100% per 15s or 4 pod(s) per 15s "
            "(selectPolicy Max)): the metrics asked for 20, it allows 8 now."
        ],
        {"decision.limitedBy": "ScaleUpLimit"},
    ),
    (
        "held by the scale-down stabilization window",
        policy(
            status=status(
                6,
                6,
                "cpu: ... -> 2; ScaleDownStabilized: recent recommendations were higher than current one, "
                "applying the highest recent recommendation (2 -> 6)",
                limited_by="ScaleDownStabilized",
                metrics=[metric("cpu", "Resource", "10", "50", 2)],
                hold_until=NOW + 200,
            ),
        ),
        [
            f"Decision: Decided at {iso(NOW - 5)} to keep 6 replica(s).",
            "Why nothing happened:",
            "Held by the scale-down stabilization window (300s): the highest recommendation of the window "
            f"keeps the count at 6 until {iso(NOW + 200)} (in 3m).",
        ],
        {"decision.holdUntil": iso(NOW + 200), "whyNothing.0": "Held by the scale-down stabilization window"},
    ),
    (
        "at maxReplicas",
        policy(
            status=status(
                10,
                10,
                "cpu: ... -> 14; TooManyReplicas: the desired replica count is more than the maximum replica "
                "count (14 -> 10)",
                limited_by="TooManyReplicas",
                metrics=[metric("cpu", "Resource", "70", "50", 14)],
            ),
        ),
        ["Capped at maxReplicas (10): the metrics asked for 14.", "Why nothing happened:"],
        {"whyNothing.0": "Capped at maxReplicas (10)"},
    ),
    (
        "every metric failed",
        policy(
            status=status(
                3,
                3,
                "all metrics failed (cpu: no pod metrics for 3 pod(s)): keeping 3 replicas",
                metrics=[metric("cpu", "Resource", "", "50", None, "no pod metrics for 3 pod(s)")],
                conditions=[
                    *HEALTHY[:3],
                    cond("MetricsAvailable", "False", "AllMetricsFailed", "cpu: no pod metrics for 3 pod(s)"),
                    HEALTHY[4],
                    HEALTHY[5],
                ],
            ),
        ),
        [
            "cpu (Resource): FAILED: no pod metrics for 3 pod(s)",
            "Every metric failed, so the count is kept (cpu: no pod metrics for 3 pod(s)).",
            "MetricsAvailable=False AllMetricsFailed since",
        ],
        {"metrics.0.error": "no pod metrics for 3 pod(s)"},
    ),
    (
        "a failed metric blocks the scale-down",
        policy(
            metrics=[CPU, PLAYERS],
            status=status(
                5,
                5,
                "cpu: ... -> 2; scale-down to 2 blocked because a metric failed "
                "(prometheus-1: query failed): keeping 5 replicas",
                metrics=[
                    metric("cpu", "Resource", "12", "50", 2),
                    metric("prometheus-1", "Prometheus", "", "100", None, "query failed"),
                ],
            ),
        ),
        [
            "A failed metric blocks the scale-down: missing data never scales a workload down.",
            "A scale-down is blocked because a metric failed (prometheus-1).",
        ],
        {},
    ),
    (
        "within tolerance",
        policy(
            status=status(
                4,
                4,
                "cpu: cpu utilization 52% of 50% target -> 4",
                metrics=[metric("cpu", "Resource", "52", "50", 4)],
            )
        ),
        [
            "The highest proposal equals the current count (4): the metrics are at their targets within "
            "tolerance (tolerance scaleUp 0.1, scaleDown 0.1)."
        ],
        {"whyNothing.0": "The highest proposal equals the current count (4)"},
    ),
    (
        "DryRun",
        policy(
            mode="DryRun",
            status=status(
                2,
                5,
                "cpu: ... -> 5",
                metrics=[metric("cpu", "Resource", "120", "50", 5)],
                conditions=[
                    *HEALTHY[:5],
                    cond("Ready", "True", "DryRun", "mode DryRun: decisions are reported"),
                ],
            ),
        ),
        [
            "(mode DryRun, interval 15s)",
            f"Decision: At {iso(NOW - 5)} it would scale from 2 to 5 replicas.",
            "Why it is not applied:",
            "Mode DryRun: it would scale 2 -> 5, never applied.",
        ],
        {"mode": "DryRun", "paused": False},
    ),
    (
        "paused",
        policy(
            annotations={"autoscaling.surge.dev/paused": "True"},
            status=status(
                2,
                5,
                "cpu: ... -> 5",
                metrics=[metric("cpu", "Resource", "120", "50", 5)],
                conditions=[
                    *HEALTHY[:5],
                    cond("Ready", "False", "Paused", "annotation ... decisions are reported"),
                ],
            ),
        ),
        [
            "(mode Active, paused (autoscaling.surge.dev/paused=true), interval 15s)",
            "Paused (autoscaling.surge.dev/paused=true): it would scale 2 -> 5, nothing is applied.",
        ],
        {"mode": "Active", "paused": True},
    ),
    (
        "conflict with another autoscaler",
        policy(
            status=status(
                3,
                3,
                "cpu: ... -> 3",
                metrics=[metric("cpu", "Resource", "50", "50", 3)],
                conditions=[
                    *HEALTHY[:4],
                    cond(
                        "Conflict", "True", "ConflictingAutoscaler", "HorizontalPodAutoscaler web targets it"
                    ),
                    cond("Ready", "False", "ConflictingAutoscaler", "HorizontalPodAutoscaler web targets it"),
                ],
            ),
        ),
        [
            "Conflict: HorizontalPodAutoscaler web targets it "
            "(the decision below is from before the conflict).",
            "Conflict=True ConflictingAutoscaler since",
        ],
        {"whyNothing.0": "Conflict: HorizontalPodAutoscaler web targets it"},
    ),
    (
        "never evaluated",
        policy(status=None),
        [
            "Decision: Not evaluated yet.",
            "The operator has not evaluated this policy yet (no status)",
            "Last evaluation on record: none on record",
            "Next evaluation: unknown (never evaluated)",
        ],
        {"evaluated": False, "decision": None, "nextEvaluation": None, "lastEvaluation": None},
    ),
    (
        "the last tick failed: back-off",
        policy(
            status=status(
                3,
                3,
                "cpu: ... -> 3",
                metrics=[metric("cpu", "Resource", "50", "50", 3)],
                conditions=[
                    *HEALTHY[:5],
                    cond("Ready", "False", "InternalError", "the tick failed: KeyError: x"),
                ],
            )
        ),
        ["Next evaluation: the last evaluation failed: retries back off from 1s, doubling"],
        {"nextEvaluation.backingOff": True},
    ),
]


def _field(data: Any, path: str) -> Any:
    """`a.b.0.c` into nested dicts and lists; `metrics.winner` maps over a list."""
    head, _, rest = path.partition(".")
    value = data[int(head)] if isinstance(data, list) and head.isdigit() else None
    if isinstance(data, list) and not head.isdigit():
        return [_field(item, path) for item in data]
    if not isinstance(data, list):
        value = data[head]
    return _field(value, rest) if rest else value


@pytest.mark.parametrize(("case", "obj", "sentences", "fields"), CASES, ids=[c[0] for c in CASES])
def test_explanation_says_it_in_words(
    case: str, obj: dict[str, Any], sentences: list[str], fields: dict[str, Any]
) -> None:
    e = explain(obj, now=NOW)
    text = "\n".join(to_text(e))
    for sentence in sentences:
        assert sentence in text, f"{case}: {sentence!r} not in\n{text}"
    data = to_json(e)
    for path, expected in fields.items():
        value = _field(data, path)
        if isinstance(expected, str) and isinstance(value, str) and path.startswith("whyNothing"):
            assert value.startswith(expected), (case, path, value)
        else:
            assert value == expected, (case, path, value)


def test_json_carries_every_section() -> None:
    obj = policy(status=status(2, 8, "cpu -> 8", scaled=True))
    obj["status"]["recommendation"] = {
        "containerRecommendations": [
            {
                "containerName": "web",
                "target": {"cpu": "250m"},
                "lowerBound": {"cpu": "200m"},
                "upperBound": {"cpu": "1"},
            }
        ]
    }
    events = [
        {
            "type": "Normal",
            "reason": "SuccessfulRescale",
            "message": "New size: 8",
            "lastTimestamp": iso(NOW - 5),
            "count": 1,
        }
    ]
    data = to_json(explain(obj, events, now=NOW))
    assert data["replicas"] == {"current": 2, "desired": 8, "min": 1, "max": 10}
    assert data["metrics"][0] == {
        "name": "cpu",
        "type": "Resource",
        "value": "200",
        "target": "50",
        "proposedReplicas": 8,
        "error": "",
        "winner": True,
    }
    assert data["decision"]["from"] == 2
    assert data["decision"]["to"] == 8
    assert [c["type"] for c in data["conditions"]] == [
        "AbleToScale",
        "ScalingActive",
        "ScalingLimited",
        "MetricsAvailable",
        "Conflict",
        "Ready",
    ]
    assert data["conditions"][-1]["since"] == iso(NOW - 600)
    assert data["events"] == [
        {
            "time": iso(NOW - 5),
            "type": "Normal",
            "reason": "SuccessfulRescale",
            "message": "New size: 8",
            "count": 1,
        }
    ]
    assert data["recommendation"][0]["target"] == {"cpu": "250m"}
    assert data["lastEvaluation"] == {
        "time": iso(NOW - 5),
        "source": "status.lastDecision.time",
        "ageSeconds": 5.0,
    }
    # One interval after the tick 5 s ago: due in 10 s, +-5% of 15 s and 1 s of timestamp rounding.
    assert data["nextEvaluation"]["time"] == iso(NOW + 10)
    assert data["nextEvaluation"]["uncertaintySeconds"] == 1.8
    text = "\n".join(to_text(explain(obj, events, now=NOW)))
    assert "web: target cpu 250m; bounds cpu 200m .. cpu 1" in text
    assert f"{iso(NOW - 5)} Normal SuccessfulRescale: New size: 8" in text


def test_events_newest_last_and_bounded() -> None:
    events = [
        {"type": "Warning", "reason": f"R{i}", "message": "m", "lastTimestamp": iso(NOW - 100 + i)}
        for i in range(15)
    ]
    rows = to_json(explain(policy(status=None), list(reversed(events)), now=NOW))["events"]
    assert [r["reason"] for r in rows] == [f"R{i}" for i in range(5, 15)]


def test_checkpoint_is_the_freshest_anchor_when_it_is_this_policys() -> None:
    obj = policy(
        status=status(
            4, 4, "cpu -> 4", decided=NOW - 3600, metrics=[metric("cpu", "Resource", "50", "50", 4)]
        )
    )
    obj["status"]["conditions"] = [cond("Ready", "True", "Reconciled", at=NOW - 3600)]
    mine = {"spec": {"policyUID": "uid-1", "lastTick": NOW - 20.0, "savedTime": NOW - 20.0}}
    data = to_json(explain(obj, checkpoint=mine, now=NOW))
    assert data["lastEvaluation"]["source"] == "checkpoint lastTick"
    assert data["nextEvaluation"]["time"] == iso(NOW + 10)  # 2 periods after the tick 20 s ago
    assert data["nextEvaluation"]["uncertaintySeconds"] == 1.5
    other = {"spec": {"policyUID": "uid-of-a-deleted-policy", "lastTick": NOW - 20.0}}
    data = to_json(explain(obj, checkpoint=other, now=NOW))
    assert data["lastEvaluation"]["source"] == "status.lastDecision.time"
    # An hour of extrapolation: the phase is unknown, only the bound is left; a hint to check the operator.
    assert data["nextEvaluation"]["time"] is None
    assert data["nextEvaluation"]["withinSeconds"] == 15.8
    assert any("check that the operator runs" in n for n in data["notes"])


@pytest.mark.parametrize(
    ("age", "due_in", "uncertainty"),
    [
        (0.0, 15.0, 0.75),
        (14.9, 0.1, 0.75),
        (16.0, 14.0, 1.5),  # the tick after next: 2 periods of jitter
        (100.0, 5.0, 5.25),  # 7 periods
        (150.0, None, None),  # 11 periods: +-8.25 s is over half an interval, the phase is unknown
    ],
)
def test_next_evaluation_extrapolates_the_period(
    age: float, due_in: float | None, uncertainty: float | None
) -> None:
    nxt = next_evaluation(NOW - age, 0.0, 15.0, NOW)
    assert nxt is not None
    if due_in is None:
        assert nxt.time is None
        assert nxt.within == pytest.approx(15.75)
    else:
        assert nxt.time == pytest.approx(NOW + due_in)
        assert nxt.uncertainty == pytest.approx(uncertainty)
        assert nxt.within <= 15.75


def test_stale_spec_and_invalid_spec_are_noted() -> None:
    obj = policy(
        status=status(2, 2, "cpu -> 2", metrics=[metric("cpu", "Resource", "50", "50", 2)]), generation=2
    )
    notes = to_json(explain(obj, now=NOW))["notes"]
    assert any("generation 1, the spec is at 2" in n for n in notes)
    bad = policy(status=None)
    bad["spec"]["interval"] = "forever"
    data = to_json(explain(bad, now=NOW))
    assert data["intervalSeconds"] == 15.0  # the operator retries an invalid spec on its default interval
    assert any("the spec does not parse" in n and "interval" in n for n in data["notes"])


# --- the status field explain reads: lastDecision.holdUntil ------------------------------------------


def test_scale_down_window_reports_when_the_hold_ends() -> None:
    # 8 recommended at t=0 and t=30, now 5: the newest 8 leaves the 300 s window at 330.
    state = BehaviorState((Recommendation(0.0, 8), Recommendation(30.0, 8)))
    result = normalize(
        current=8, desired=5, min_replicas=1, max_replicas=10, behavior=Behavior(), state=state, now=60.0
    )
    assert (result.replicas, result.stabilized_by, result.hold_until) == (8, "ScaleDownStabilized", 330.0)
    # Partly held: 6 at t=100 is the highest still in the window at 350 -> 6 until 400.
    state = BehaviorState((Recommendation(0.0, 8), Recommendation(100.0, 6)))
    result = normalize(
        current=8, desired=2, min_replicas=1, max_replicas=10, behavior=Behavior(), state=state, now=350.0
    )
    assert (result.stabilized, result.hold_until) == (6, 400.0)
    # Nothing held: no time.
    result = normalize(
        current=8, desired=10, min_replicas=1, max_replicas=10, behavior=Behavior(), state=state, now=350.0
    )
    assert result.stabilized_by == ""
    assert result.hold_until is None


def test_hold_until_is_written_only_when_set() -> None:
    held = LastDecision("2026-01-01T00:00:00Z", 8, 8, "held", "ScaleDownStabilized", "2026-01-01T00:05:00Z")
    assert held.to_dict()["holdUntil"] == "2026-01-01T00:05:00Z"
    assert "holdUntil" not in LastDecision("2026-01-01T00:00:00Z", 2, 4, "up").to_dict()


# --- the command's own parts that need no cluster ------------------------------------------------


def test_default_namespace_is_the_contexts_else_default(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u, namespace: games}}, "
        "{name: d, context: {cluster: k, user: u}}]\n"
    )
    assert explain_cli.default_namespace(str(kubeconfig)) == "games"
    kubeconfig.write_text(kubeconfig.read_text().replace("current-context: c", "current-context: d"))
    assert explain_cli.default_namespace(str(kubeconfig)) == "default"
    assert explain_cli.default_namespace(str(tmp_path / "missing")) == "default"


def test_unreachable_server_is_one_line_and_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "config"
    # Port 1 on loopback: refused at once, no traffic leaves the machine.
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    args = argparse.Namespace(name="web", namespace="", kubeconfig=str(kubeconfig), output="text")
    assert explain_cli.run(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the API server")
    assert "Traceback" not in err
