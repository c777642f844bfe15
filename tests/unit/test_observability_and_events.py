"""Events about policies: repeat suppression that never hides a new scale action, and the Event body."""

from __future__ import annotations

from surge.events import RepeatFilter


def test_identical_events_are_suppressed_until_the_repeat_window_passes() -> None:
    now = [1000.0]
    repeats = RepeatFilter(300.0, clock=lambda: now[0])
    key = ("uid-1", "FailedGetScale", "missing")
    assert repeats.due(key)
    assert not repeats.due(key)
    assert repeats.due(("uid-1", "FailedGetScale", "another message"))
    now[0] += 301
    assert repeats.due(key)


def test_a_scale_action_different_from_the_last_one_is_never_suppressed() -> None:
    now = [1000.0]
    repeats = RepeatFilter(300.0, clock=lambda: now[0])
    message = "New size: 2; reason: load dropped"
    key = ("uid-1", "SuccessfulRescale", message)
    assert repeats.due(key, scale=(12, 2))
    now[0] += 30
    assert repeats.due(("uid-1", "SuccessfulRescale", "New size: 12"), scale=(2, 12))
    now[0] += 30
    assert repeats.due(key, scale=(12, 2))  # same text as 60 s ago, but a new action since the last
    assert not repeats.due(key, scale=(12, 2))  # the very same action reported twice in a row
    assert repeats.due(("uid-2", "SuccessfulRescale", message), scale=(12, 2))  # another policy


def test_event_body_is_a_core_v1_event_about_the_policy() -> None:
    from datetime import UTC, datetime

    from surge.events import ObjectRef, event_body

    ref = ObjectRef("autoscaling.surge.dev/v1alpha1", "AutoScalePolicy", "games", "arena", "u1")
    body = event_body(ref, "Warning", "FailedRescale", "x" * 5000, datetime(2026, 1, 2, tzinfo=UTC))
    assert body["involvedObject"] == {
        "apiVersion": "autoscaling.surge.dev/v1alpha1",
        "kind": "AutoScalePolicy",
        "name": "arena",
        "namespace": "games",
        "uid": "u1",
    }
    assert body["reason"] == "FailedRescale"
    assert len(str(body["message"])) == 1024
    assert body["lastTimestamp"] == "2026-01-02T00:00:00Z"
