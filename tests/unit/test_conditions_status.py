from __future__ import annotations

from typing import Any

import pytest

from surge.api.conditions import get_condition, is_condition_true, set_condition
from surge.api.status import (
    ContainerRecommendationStatus,
    LastDecision,
    MetricStatus,
    build_status,
    merge_patch,
    status_patch,
)

T0, T1, T2 = "2026-11-27T22:00:00Z", "2026-11-27T22:01:00Z", "2026-11-27T22:02:00Z"


def test_new_condition_is_appended_with_transition_time() -> None:
    conds = set_condition([], "AbleToScale", True, "ReadyForNewScale", "ok", T0, 3)
    assert conds == [
        {
            "type": "AbleToScale",
            "status": "True",
            "reason": "ReadyForNewScale",
            "message": "ok",
            "lastTransitionTime": T0,
            "observedGeneration": 3,
        }
    ]


def test_transition_time_changes_only_when_status_flips() -> None:
    c0 = set_condition(None, "ScalingActive", "True", "ValidMetricFound", "a", T0, 1)
    c1 = set_condition(c0, "ScalingActive", "True", "ValidMetricFound", "b", T1, 2)
    assert c1[0]["lastTransitionTime"] == T0
    assert (c1[0]["message"], c1[0]["observedGeneration"]) == ("b", 2)
    c2 = set_condition(c1, "ScalingActive", False, "FailedGetResourceMetric", "boom", T2, 2)
    assert c2[0]["lastTransitionTime"] == T2
    assert c2[0]["status"] == "False"


def test_set_condition_keeps_order_does_not_mutate_and_dedups() -> None:
    original: list[dict[str, Any]] = [
        {"type": "A", "status": "True", "reason": "R", "message": "", "lastTransitionTime": T0},
        {"type": "B", "status": "True", "reason": "R", "message": "", "lastTransitionTime": T0},
        {"type": "A", "status": "False", "reason": "R", "message": "", "lastTransitionTime": T0},
    ]
    snapshot = [dict(c) for c in original]
    out = set_condition(original, "A", True, "R2", "m", T1)
    assert original == snapshot
    assert [c["type"] for c in out] == ["A", "B"]
    assert out[0]["lastTransitionTime"] == T0
    assert out[0]["reason"] == "R2"
    assert "observedGeneration" not in out[0]


@pytest.mark.parametrize(
    ("status", "reason"), [("Maybe", "Ok"), (True, "not camel"), (True, ""), (True, "9Lives")]
)
def test_set_condition_validates(status: Any, reason: str) -> None:
    with pytest.raises(ValueError, match="condition"):
        set_condition([], "A", status, reason, "", T0)


def test_get_and_is_true() -> None:
    conds = set_condition([], "Ready", "Unknown", "Starting", "", T0)
    assert get_condition(conds, "Ready") == conds[0]
    assert get_condition(conds, "Other") is None
    assert not is_condition_true(conds, "Ready")
    assert is_condition_true(set_condition(conds, "Ready", True, "Ok", "", T1), "Ready")


def test_message_is_bounded() -> None:
    out = set_condition([], "A", True, "R", "x" * 40000, T0)
    assert len(out[0]["message"]) == 32768


def _status(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "observed_generation": 3,
        "current_replicas": 4,
        "desired_replicas": 6,
        "last_scale_time": T0,
        "current_metrics": [MetricStatus("cpu", "Resource", "72", "60", 6)],
        "recommendations": [
            ContainerRecommendationStatus(
                "arena", {"cpu": "500m", "memory": "256Mi"}, {"cpu": "250m"}, {"cpu": "1"}, {"cpu": "500m"}
            )
        ],
        "last_decision": LastDecision(T0, 4, 6, "cpu high", "ScaleUpLimit"),
        "consecutive_failures": 0,
        "conditions": set_condition([], "AbleToScale", True, "ReadyForNewScale", "", T0),
    }
    kwargs.update(overrides)
    return build_status(**kwargs)


def test_build_status_shape_matches_api_doc() -> None:
    status = _status()
    assert status["observedGeneration"] == 3
    assert status["currentMetrics"] == [
        {"name": "cpu", "type": "Resource", "value": "72", "target": "60", "proposedReplicas": 6, "error": ""}
    ]
    rec = status["recommendation"]["containerRecommendations"][0]
    assert rec["containerName"] == "arena"
    assert rec["target"] == {"cpu": "500m", "memory": "256Mi"}
    assert set(rec) == {"containerName", "target", "lowerBound", "upperBound", "uncappedTarget"}
    assert status["lastDecision"] == {
        "time": T0,
        "from": 4,
        "to": 6,
        "reason": "cpu high",
        "limitedBy": "ScaleUpLimit",
    }
    assert status["consecutiveFailures"] == 0
    assert status["conditions"][0]["type"] == "AbleToScale"


def test_build_status_leaves_out_unknowns() -> None:
    status = build_status(observed_generation=None, extra={"checkpoint": {"a": 1}})
    assert status == {
        "currentMetrics": [],
        "consecutiveFailures": 0,
        "conditions": [],
        "checkpoint": {"a": 1},
    }


def test_status_patch_none_when_unchanged() -> None:
    assert status_patch(_status(), _status()) is None


def test_status_patch_is_minimal_and_replaces_lists() -> None:
    old = _status()
    new = _status(desired_replicas=8, current_metrics=[MetricStatus("cpu", "Resource", "90", "60", 8)])
    patch = status_patch(old, new)
    assert patch == {
        "desiredReplicas": 8,
        "currentMetrics": [
            {
                "name": "cpu",
                "type": "Resource",
                "value": "90",
                "target": "60",
                "proposedReplicas": 8,
                "error": "",
            }
        ],
    }


def test_status_patch_from_nothing_and_deletions() -> None:
    new = _status()
    assert status_patch(None, new) == new
    assert status_patch({}, new) == new
    old = _status()
    trimmed = dict(old)
    trimmed.pop("lastScaleTime")
    trimmed["lastDecision"] = {k: v for k, v in old["lastDecision"].items() if k != "limitedBy"}
    assert status_patch(old, trimmed) == {"lastScaleTime": None, "lastDecision": {"limitedBy": None}}


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({"a": 1}, {"a": 1}, {}),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}, {"a": {"c": 3}}),
        ({"a": [1, 2]}, {"a": [1]}, {"a": [1]}),
        ({"a": 1}, {"a": {"b": 1}}, {"a": {"b": 1}}),
        ({"a": {"b": 1}}, {}, {"a": None}),
    ],
)
def test_merge_patch(old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any]) -> None:
    assert merge_patch(old, new) == patch


def test_status_always_fits_the_crd_limits() -> None:
    """A status outside the CRD's limits is refused whole (422): proposals beyond int32, huge values."""
    import yaml

    from surge.api.status import INT32_MAX, ContainerRecommendationStatus, LastDecision, MetricStatus

    huge = "1" + "0" * 306
    status = build_status(
        observed_generation=3,
        current_replicas=2**40,
        desired_replicas=-5,
        current_metrics=[
            MetricStatus("m" * 300, "Prometheus" * 5, huge, huge, proposed_replicas=2**63, error="e" * 5000)
        ]
        * 20,
        recommendations=[ContainerRecommendationStatus("c" * 100, target={"cpu": huge})],
        last_decision=LastDecision("2026-01-01T00:00:00Z", 2**33, 2**33, "r" * 2000, "L" * 200),
        consecutive_failures=2**35,
    )
    assert status["currentReplicas"] == INT32_MAX
    assert status["desiredReplicas"] == 0
    assert status["consecutiveFailures"] == INT32_MAX
    assert status["lastDecision"]["to"] == INT32_MAX

    from pathlib import Path

    crd_file = Path(__file__).resolve().parents[2] / "crds" / "autoscaling.surge.dev_autoscalepolicies.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]

    def check(value: Any, sch: dict[str, Any], path: str) -> None:
        if isinstance(value, str):
            assert len(value) <= sch.get("maxLength", 10**9), path
        elif isinstance(value, int):
            if sch.get("format") == "int32":
                assert 0 <= value <= INT32_MAX, path
        elif isinstance(value, list):
            assert len(value) <= sch.get("maxItems", 10**9), path
            for i, item in enumerate(value):
                check(item, sch["items"], f"{path}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                check(item, sch.get("properties", {}).get(key, {}), f"{path}.{key}")

    check(status, schema, "status")
    assert status["currentMetrics"][0]["value"] == "1e306"
