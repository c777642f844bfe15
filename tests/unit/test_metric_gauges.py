"""The per-metric series of /metrics: value and target of each policy metric, failures by reason.

Read back through the exposition text, as Prometheus sees it, not through prometheus_client internals.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from surge.api.spec import MetricType
from surge.decision.horizontal import MetricProposal
from surge.decision.plan import Decision
from surge.observability import OperatorMetrics
from surge.reconcile import PolicyObject, TickResult


def _policy(name: str = "arena", namespace: str = "games") -> PolicyObject:
    return PolicyObject(namespace, name, f"uid-{name}", 1, {}, {}, {})


def _tick(metrics: OperatorMetrics, obj: PolicyObject, *proposals: MetricProposal) -> None:
    decision = Decision(time=0.0, from_replicas=2, to_replicas=3, reason="test", proposals=proposals)
    metrics.tick_done(obj, TickResult(15.0, decision=decision, outcome="ok", scaled=True), 0.01)


def _samples(metrics: OperatorMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _key(
    metric: str, namespace: str = "games", policy: str = "arena", **extra: str
) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"namespace": namespace, "policy": policy, "metric": metric, **extra}.items()))


def test_value_and_target_are_exported_in_status_units() -> None:
    metrics = OperatorMetrics()
    _tick(
        metrics,
        _policy(),
        MetricProposal("cpu", MetricType.RESOURCE, 3, value="72", target="50"),
        MetricProposal("memory", MetricType.RESOURCE, 2, value="350Mi", target="512Mi"),
        MetricProposal("players", MetricType.PROMETHEUS, 3, value="1200m", target="1"),
        MetricProposal("slots", MetricType.BUFFER, 3, value="7", target="10%"),
    )
    values = _samples(metrics, "surge_metric_value")
    targets = _samples(metrics, "surge_metric_target")
    assert values == {
        _key("cpu"): 72.0,
        _key("memory"): 350 * 2**20,
        _key("players"): 1.2,
        _key("slots"): 7.0,
    }
    assert targets == {
        _key("cpu"): 50.0,
        _key("memory"): 512 * 2**20,
        _key("players"): 1.0,
        _key("slots"): 10.0,
    }
    assert _samples(metrics, "surge_metric_failures_total") == {}


def test_a_failed_metric_counts_by_reason_and_loses_its_value_but_keeps_its_target() -> None:
    metrics = OperatorMetrics()
    obj = _policy()
    _tick(metrics, obj, MetricProposal("players", MetricType.PROMETHEUS, 3, value="4", target="5"))
    failed = MetricProposal("players", MetricType.PROMETHEUS, None, target="5", error="parse error")
    _tick(metrics, obj, failed)
    _tick(metrics, obj, failed)
    assert _samples(metrics, "surge_metric_value") == {}  # no stale value while it fails
    assert _samples(metrics, "surge_metric_target") == {_key("players"): 5.0}
    assert _samples(metrics, "surge_metric_failures_total") == {
        _key("players", reason="FailedGetExternalMetric"): 2.0
    }
    # It recovers: the value is back, and the failure count stays (a counter must not restart at 0).
    _tick(metrics, obj, MetricProposal("players", MetricType.PROMETHEUS, 3, value="6", target="5"))
    assert _samples(metrics, "surge_metric_value") == {_key("players"): 6.0}
    assert _samples(metrics, "surge_metric_failures_total") == {
        _key("players", reason="FailedGetExternalMetric"): 2.0
    }
    _tick(metrics, obj, MetricProposal("cpu", MetricType.RESOURCE, None, target="50", error="no metrics"))
    assert _samples(metrics, "surge_metric_failures_total") == {
        _key("cpu", reason="FailedGetResourceMetric"): 1.0  # players left the spec: its series went with it
    }


def test_unreadable_texts_export_nothing_instead_of_failing_the_tick() -> None:
    metrics = OperatorMetrics()
    _tick(
        metrics,
        _policy(),
        MetricProposal("a", MetricType.PROMETHEUS, 3, value="inf", target="invalid"),
        MetricProposal("b", MetricType.PROMETHEUS, 3, value="", target="1e+300x"),
        MetricProposal("c", MetricType.PROMETHEUS, 3, value="nan", target="2"),
    )
    assert _samples(metrics, "surge_metric_value") == {}
    assert _samples(metrics, "surge_metric_target") == {_key("c"): 2.0}
    assert _samples(metrics, "surge_desired_replicas") == {(("namespace", "games"), ("policy", "arena")): 3.0}


def test_removing_a_policy_removes_its_series_and_only_its() -> None:
    metrics = OperatorMetrics()
    arena, lobby = _policy("arena"), _policy("lobby")
    for obj in (arena, lobby):
        _tick(
            metrics,
            obj,
            MetricProposal("players", MetricType.PROMETHEUS, 3, value="4", target="5"),
            MetricProposal("cpu", MetricType.RESOURCE, None, target="50", error="no metrics"),
        )
    metrics.policy_removed("games", "arena")
    for name in ("surge_metric_value", "surge_metric_target", "surge_metric_failures_total"):
        policies = {dict(labels)["policy"] for labels in _samples(metrics, name)}
        assert policies == {"lobby"}, name
    metrics.policy_removed("games", "never-evaluated")  # no error for a policy without series
