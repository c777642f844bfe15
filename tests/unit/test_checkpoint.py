"""The checkpoint codec: round trip, the CRD's schema as the contract, bounds, and every refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from surge.api.spec import PolicySpec, ResourceAmounts
from surge.decision import Observation, PlanState, plan
from surge.decision.behavior import BehaviorState, Recommendation, ScaleEvent, stabilize
from surge.decision.checkpoint import (
    MAX_PEAKS,
    MAX_RECOMMENDATIONS,
    MAX_SEEN_PODS,
    SCHEMA_VERSION,
    CheckpointError,
    compact_recommendations,
    decode,
    encode,
    max_age,
)
from surge.decision.model import ContainerResources, OOMEvent, PodUsage
from surge.decision.predictive import PredictiveState
from surge.decision.vertical import MemoryPeak, VerticalState
from tests.unit.builders import MI, NOW, cpu_metric, pods, spec

CRD = Path(__file__).resolve().parents[2] / "crds" / "autoscaling.surge.dev_autoscalepolicycheckpoints.yaml"
UID = "0d7f7a3c-1111-4222-8333-944455556666"
ETCD_LIMIT = 1_500_000  # bytes: etcd's default request size limit


def checkpoint_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def violations(value: Any, schema: dict[str, Any], path: str = "spec") -> list[str]:
    """What the API server would refuse or silently prune (a small structural-schema checker)."""
    kind = schema.get("type")
    ok = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
    }[kind]
    if not ok:
        return [f"{path}: {value!r} is not {kind}"]
    out: list[str] = []
    if isinstance(value, dict):
        out += [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
        if len(value) > schema.get("maxProperties", len(value)):
            out.append(f"{path}: more than {schema['maxProperties']} properties")
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key, schema.get("additionalProperties"))
            if sub is None:
                out.append(f"{path}.{key}: not in the schema (the API server would prune it)")
            else:
                out += violations(item, sub, f"{path}.{key}")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            out.append(f"{path}: {len(value)} items outside the schema's bounds")
        for i, item in enumerate(value):
            out += violations(item, schema["items"], f"{path}[{i}]")
    if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
        out.append(f"{path}: below {schema['minimum']}")
    return out


def full_spec() -> PolicySpec:
    return spec(
        horizontal={
            "maxReplicas": 30,
            "metrics": [cpu_metric(50)],
            "predictive": {"lookahead": "60s", "history": "10m"},
            "fallback": {"failureThreshold": 3, "replicas": 4},
        },
        vertical={"updateMode": "InPlace", "halfLife": "1h"},
    )


def realistic_state(ticks: int = 240, replicas: int = 10) -> PlanState:
    """One hour of 15 s ticks of a CPU policy with predictive and vertical, 10 pods, a varying load."""
    ps = full_spec()
    state = PlanState()
    containers = [ContainerResources("app", ResourceAmounts(1.0, 512 * MI))]
    for i in range(ticks):
        now = NOW + 15.0 * i
        load = 0.3 + 0.5 * ((i // 20) % 3) + 0.01 * (i % 7)
        metrics = {
            f"p{k}": PodUsage(now - 1, {"app": ResourceAmounts(load + 0.02 * k, (300 + 3 * k + i % 11) * MI)})
            for k in range(replicas)
        }
        ooms = [OOMEvent("app", now - 2, 512 * MI)] if i == 100 else []
        obs = Observation(replicas, pods(replicas), metrics, containers=containers, ooms=ooms)
        state = plan(ps, obs, state, now).state
    return state


def through_json(data: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


def test_round_trip_through_json_restores_the_same_state() -> None:
    state = realistic_state()
    now = NOW + 3600
    data = through_json(encode(state, now - 15, now, policy_uid=UID, generation=3))
    restored, last_tick = decode(data, full_spec(), policy_uid=UID, now=now + 5)
    assert last_tick == now - 15
    assert restored.vertical == state.vertical
    assert restored.predictive == state.predictive
    assert restored.consecutive_failures == state.consecutive_failures
    assert restored.behavior.events == state.behavior.events
    assert restored.behavior.recommendations == compact_recommendations(state.behavior.recommendations)
    assert encode(restored, now - 15, now, policy_uid=UID, generation=3) == data


def test_a_realistic_checkpoint_matches_the_crd_schema_and_is_small() -> None:
    state = realistic_state()
    data = encode(state, NOW, NOW + 3600, policy_uid=UID, generation=1)
    data["savedAt"] = "2026-01-01T00:00:00Z"  # added by the store
    assert violations(data, checkpoint_schema()) == []
    assert state.vertical.containers["app"].oom_time is not None  # every part is populated
    assert state.predictive.points
    size = len(json.dumps(data, separators=(",", ":")))
    assert size < 16_000, size  # measured: see docs/design.md, "Checkpoints"


def test_the_largest_checkpoint_the_bounds_allow_fits_in_etcd() -> None:
    long_name = "x" * 63
    hist = realistic_state(ticks=20).vertical.containers["app"]
    full = {b: 1.0 + b / 7 for b in range(176)}
    hist = type(hist)(
        cpu=type(hist.cpu)(hist.cpu.options, hist.cpu.half_life, NOW, full),
        memory=type(hist.memory)(hist.memory.options, hist.memory.half_life, NOW, full),
        first_sample_time=NOW,
        last_sample_time=NOW,
        cpu_samples=10**9,
        oom_floor=1e12,
        oom_time=NOW,
    )
    vertical = VerticalState(
        containers={f"{long_name[:60]}{i:03}": hist for i in range(40)},
        peaks={f"{long_name}-{i:05}/{long_name}": MemoryPeak(NOW + i, 1e12 + i) for i in range(5000)},
        seen={f"{long_name}-{i:05}": NOW + i * 0.001 for i in range(5000)},
        last_oom_time=NOW,
    )
    # Falling recommendations cannot be compacted: each one is the maximum of some later window.
    recs = tuple(Recommendation(NOW + i * 0.1, 100_000 - i) for i in range(9000))
    events = tuple(ScaleEvent(NOW + i * 0.1, (-1) ** i * 1000) for i in range(9000))
    state = PlanState(
        BehaviorState(recs, events),
        10**6,
        PredictiveState(tuple((NOW + i, 1e6 + i) for i in range(2000))),
        vertical,
    )
    data = encode(state, NOW, NOW + 1000, policy_uid=UID, generation=10**9)
    assert violations(data, checkpoint_schema()) == []
    assert len(data["state"]["behavior"]["recommendations"]) == MAX_RECOMMENDATIONS
    assert len(data["state"]["vertical"]["seen"]) == MAX_SEEN_PODS
    assert len(data["state"]["vertical"]["peaks"]) == MAX_PEAKS
    # The newest entries are kept.
    assert f"{long_name}-04999" in data["state"]["vertical"]["seen"]
    assert len(json.dumps(data, separators=(",", ":"))) < ETCD_LIMIT


def test_compaction_keeps_every_window_decision() -> None:
    recs = tuple(Recommendation(NOW + i, r) for i, r in enumerate([5, 9, 9, 7, 9, 3, 3, 3, 6, 4, 4]))
    compact = compact_recommendations(recs)
    assert len(compact) < len(recs)
    assert compact_recommendations(compact) == compact
    hor = spec(horizontal={"maxReplicas": 30, "metrics": [cpu_metric()]}).horizontal
    assert hor is not None
    for window in range(12):
        behavior = type(hor.behavior)(
            scale_up=type(hor.behavior.scale_up)(window, hor.behavior.scale_up.select_policy, ()),
            scale_down=type(hor.behavior.scale_down)(window, hor.behavior.scale_down.select_policy, ()),
        )
        for desired in (1, 5, 12):
            for now in (NOW + 10, NOW + 14):
                for current in (2, 6, 10):
                    assert stabilize(current, desired, behavior, compact, now) == stabilize(
                        current, desired, behavior, recs, now
                    )
    steady = tuple(Recommendation(NOW + i, 8) for i in range(300))
    assert compact_recommendations(steady) == (steady[-1],)


def good() -> dict[str, Any]:
    return through_json(encode(realistic_state(ticks=30), NOW + 400, NOW + 450, policy_uid=UID, generation=1))


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        (
            lambda d: d.update(schemaVersion=SCHEMA_VERSION + 1),
            "UnsupportedCheckpointVersion",
            "schemaVersion 2",
        ),
        (lambda d: d.pop("schemaVersion"), "UnsupportedCheckpointVersion", "None"),
        (lambda d: d.update(policyUID="other"), "CheckpointOfAnotherPolicy", "other"),
        (lambda d: d.update(savedTime="yesterday"), "MalformedCheckpoint", "savedTime"),
        (lambda d: d.update(savedTime=NOW + 450 + 3600), "CheckpointFromTheFuture", "future"),
        (lambda d: d.update(savedTime=NOW - 10 * 3600 - 10), "CheckpointTooOld", "older than"),
        (lambda d: d.update(state=[1, 2]), "MalformedCheckpoint", "no state"),
        (
            lambda d: d["state"].update(behavior={"recommendations": [[1, "x"]]}),
            "MalformedCheckpoint",
            "behavior",
        ),
        (lambda d: d["state"].update(consecutiveFailures="many"), "MalformedCheckpoint", "unreadable"),
        (
            lambda d: d["state"]["vertical"]["containers"]["app"]["cpu"].update(buckets={"999": 1.0}),
            "MalformedCheckpoint",
            "bucket out of range",
        ),
        (lambda d: d["state"]["vertical"].update(peaks={"p/app": 5}), "MalformedCheckpoint", "vertical"),
        (lambda d: d["state"].update(predictive={"points": 7}), "MalformedCheckpoint", "predictive"),
    ],
)
def test_unusable_checkpoints_are_refused_with_a_reason(change: Any, reason: str, words: str) -> None:
    data = good()
    change(data)
    with pytest.raises(CheckpointError) as info:
        decode(data, full_spec(), policy_uid=UID, now=NOW + 460)
    assert info.value.reason == reason
    assert words in info.value.message


def test_not_an_object_is_refused() -> None:
    with pytest.raises(CheckpointError, match="not an object"):
        decode([], full_spec(), policy_uid=UID, now=NOW)  # type: ignore[arg-type]


def test_max_age_is_the_longest_thing_the_checkpoint_holds() -> None:
    # 10 half-lives of 1h dominate 300s windows and 10m of predictive history.
    assert max_age(full_spec()) == 36_000
    horizontal = spec(horizontal={"maxReplicas": 5, "metrics": [cpu_metric()]})
    assert max_age(horizontal) == 300  # HPA's default scale-down window
    window = spec(
        horizontal={
            "maxReplicas": 5,
            "metrics": [cpu_metric()],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 900}},
        }
    )
    assert max_age(window) == 900
    # Just inside the limit: restored.
    data = through_json(encode(PlanState(), None, NOW, policy_uid=UID, generation=1))
    restored, last_tick = decode(data, window, policy_uid=UID, now=NOW + 899)
    assert restored == PlanState()
    assert last_tick is None
    with pytest.raises(CheckpointError, match="older than"):
        decode(data, window, policy_uid=UID, now=NOW + 901)
