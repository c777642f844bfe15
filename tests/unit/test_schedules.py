"""horizontal.schedules: cron evaluation on a zone's clocks, the parser, and the floor in ``plan``.

Time is always injected. The reference answers come from ``datetime``/``zoneinfo`` (allowed in tests, not in
the engine): a brute-force walk over every minute, so the evaluator's clever search is checked, not trusted.
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from typing import Any

import pytest

from surge.api.schedule import (
    civil_from_days,
    days_from_civil,
    format_utc,
    latest_start,
    load_zone,
    parse_cron,
    parse_rfc3339,
)
from surge.api.spec import PolicySpec, SpecError
from surge.decision import BufferReading, MetricError, Observation, PlanState, ScalarReading, plan
from surge.decision.schedule import SCHEDULED_MINIMUM
from tests.unit.builders import spec


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()


def _brute_latest(cron_text: str, zone: str, now: float, within: float) -> float | None:
    """Every wall-clock minute back from now, mapped to an instant with fold=0, as zoneinfo does."""
    cron = parse_cron(cron_text)
    tz = zoneinfo.ZoneInfo(zone)
    best = None
    local = dt.datetime.fromtimestamp(now, tz).replace(tzinfo=None, second=0, microsecond=0)
    local += dt.timedelta(hours=3)
    stop = dt.datetime.fromtimestamp(now - within, tz).replace(tzinfo=None) - dt.timedelta(hours=3)
    while local >= stop:
        dow = (local.isoweekday()) % 7
        day_ok = local.month in cron.months and (
            (cron.any_day and cron.any_weekday)
            or (cron.any_day and dow in cron.weekdays)
            or (cron.any_weekday and local.day in cron.days)
            or (
                not cron.any_day and not cron.any_weekday and (local.day in cron.days or dow in cron.weekdays)
            )
        )
        if day_ok and local.hour in cron.hours and local.minute in cron.minutes:
            instant = local.replace(tzinfo=tz).timestamp()
            if instant <= now and (best is None or instant > best):
                best = instant
        local -= dt.timedelta(minutes=1)
    return best if best is not None and best > now - within else None


# --------------------------------------------------------------------------------------------------
# Calendar and zones.


def test_civil_dates_round_trip_and_agree_with_the_gregorian_calendar() -> None:
    epoch = dt.date(1970, 1, 1)
    for days in range(-719_162, 2_900_000, 997):  # 0001-01-01 .. 9909
        assert days_from_civil(*civil_from_days(days)) == days
        assert dt.date(*civil_from_days(days)) == epoch + dt.timedelta(days)


@pytest.mark.parametrize(
    "zone",
    [
        "America/New_York",
        "Europe/Berlin",
        "Australia/Lord_Howe",
        "Pacific/Apia",
        "America/Nuuk",
        "Asia/Kolkata",
    ],
)
def test_zone_offsets_and_wall_clock_instants_match_zoneinfo(zone: str) -> None:
    ours, ref = load_zone(zone), zoneinfo.ZoneInfo(zone)
    rnd = random.Random(zone)
    for _ in range(2000):
        t = rnd.randint(-2_000_000_000, 4_200_000_000)  # 1906..2103: explicit transitions and the rule after
        offset = dt.datetime.fromtimestamp(t, ref).utcoffset()
        assert offset is not None
        assert ours.utc_offset(t) == int(offset.total_seconds()), t
        local = rnd.randint(0, 4_100_000_000) // 60 * 60
        y, m, d = civil_from_days(local // 86400)
        rest = local % 86400
        wall = dt.datetime(y, m, d, rest // 3600, rest // 60 % 60, tzinfo=ref)  # fold=0
        assert ours.to_utc(local) == int(wall.timestamp()), (zone, y, m, d, rest)


@pytest.mark.parametrize(
    ("name", "problem"),
    [("Mars/Olympus", "unknown time zone"), ("../etc/passwd", "not an IANA"), ("", "not an IANA")],
)
def test_unknown_zones_are_refused(name: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_zone(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-08T18:00:00Z", _utc(2026, 12, 8, 18)),
        ("2026-12-08T19:00:00+01:00", _utc(2026, 12, 8, 18)),
        ("2026-12-08T12:30:00.5-05:30", _utc(2026, 12, 8, 18) + 0.5),
        ("2028-02-29T00:00:00Z", _utc(2028, 2, 29)),
    ],
)
def test_rfc3339_times(text: str, expected: float) -> None:
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize(
    "text", ["2026-12-08 18:00:00Z", "2026-12-08T18:00:00", "2027-02-29T00:00:00Z", "2026-04-31T00:00:00Z"]
)
def test_bad_rfc3339_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|calendar"):
        parse_rfc3339(text)


# --------------------------------------------------------------------------------------------------
# Cron.


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0 18 * *", "5 fields"),
        ("60 * * * *", "out of range 0-59"),
        ("* 24 * * *", "out of range 0-23"),
        ("* * 0 * *", "out of range 1-31"),
        ("* * * 13 *", "out of range 1-12"),
        ("* * * * 8", "out of range 0-7"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "step"),
        ("* * * FOO *", "not a value"),
        ("0 0 30 FEB *", "never fires"),
        ("1,,2 * * * *", "must be"),
    ],
)
def test_cron_errors_name_the_field(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_cron(text)


def test_cron_fields_ranges_lists_steps_and_names() -> None:
    cron = parse_cron("*/20 9-17/4 1,15 jan-MAR sun,6")
    assert sorted(cron.minutes) == [0, 20, 40]
    assert sorted(cron.hours) == [9, 13, 17]
    assert cron.days == {1, 15}
    assert cron.months == {1, 2, 3}
    assert cron.weekdays == {0, 6}
    assert parse_cron("5/15 * * * 7").minutes == (50, 35, 20, 5)  # 'a/n' runs to the end; 7 is Sunday
    assert parse_cron("0 0 * * 7").weekdays == {0}


NY = "America/New_York"


@pytest.mark.parametrize(
    ("cron", "zone", "now", "within", "expected"),
    [
        # Plain UTC: the 18:00 window of today, then none before it opened.
        ("0 18 * * *", "UTC", _utc(2026, 12, 8, 18, 30), 3600, _utc(2026, 12, 8, 18)),
        ("0 18 * * *", "UTC", _utc(2026, 12, 8, 17, 59), 3600, None),
        ("0 18 * * *", "UTC", _utc(2026, 12, 8, 19, 0), 3600, None),  # the end is exclusive
        # Spring forward in New York (2026-03-08 02:00 -> 03:00): 02:30 does not exist, the window opens
        # at 03:30 EDT (07:30Z), as Python's fold=0 reads it.
        ("30 2 * * *", NY, _utc(2026, 3, 8, 7, 45), 3600, _utc(2026, 3, 8, 7, 30)),
        ("30 2 * * *", NY, _utc(2026, 3, 8, 7, 29), 3600, None),
        # Fall back (2026-11-01 02:00 EDT -> 01:00 EST): 01:30 happens twice; the first one counts.
        ("30 1 * * *", NY, _utc(2026, 11, 1, 5, 40), 1800, _utc(2026, 11, 1, 5, 30)),
        ("30 1 * * *", NY, _utc(2026, 11, 1, 6, 40), 1800, None),
        # The same wall-clock time is a different UTC hour in winter and summer.
        ("0 9 * * MON-FRI", NY, _utc(2026, 7, 1, 13, 10), 3600, _utc(2026, 7, 1, 13)),
        ("0 9 * * MON-FRI", NY, _utc(2026, 12, 2, 14, 10), 3600, _utc(2026, 12, 2, 14)),
        ("0 9 * * MON-FRI", NY, _utc(2026, 12, 5, 14, 10), 3600, None),  # a Saturday
        # Month edges: the 31st skips 30-day months, Feb 29 fires only in leap years.
        ("0 0 31 * *", "UTC", _utc(2026, 5, 1, 0, 30), 86400 * 40, _utc(2026, 3, 31)),
        ("0 0 29 2 *", "UTC", _utc(2028, 2, 29, 1), 7200, _utc(2028, 2, 29)),
        ("0 0 29 2 *", "UTC", _utc(2027, 3, 1, 1), 7 * 86400, None),
        # Both day fields restricted: either one fires (the 13th, or any Friday).
        ("0 12 13 * FRI", "UTC", _utc(2026, 12, 11, 12, 5), 600, _utc(2026, 12, 11, 12)),
        ("0 12 13 * FRI", "UTC", _utc(2026, 12, 13, 12, 5), 600, _utc(2026, 12, 13, 12)),
        # A window longer than the period: the latest start decides.
        # The repeated hour (2026-10-25, 02:00-03:00 twice in Berlin) fires on its first pass only.
        ("*/10 * * * *", "Europe/Berlin", _utc(2026, 10, 25, 1, 5), 3600, _utc(2026, 10, 25, 0, 50)),
    ],
)
def test_latest_start(cron: str, zone: str, now: float, within: float, expected: float | None) -> None:
    assert latest_start(parse_cron(cron), load_zone(zone), now, within) == expected
    assert _brute_latest(cron, zone, now, within) == expected  # the table itself is right


def test_latest_start_agrees_with_a_minute_by_minute_walk_around_dst_changes() -> None:
    rnd = random.Random(12)
    crons = ("30 2 * * *", "0,30 1-3 * * *", "*/7 * * * *", "0 0 * * SUN", "45 23 31 * *")
    for zone in ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe"):
        for _ in range(25):
            base = rnd.choice(
                [_utc(2026, 3, 8, 7), _utc(2026, 3, 29, 1), _utc(2026, 10, 25, 1), _utc(2026, 4, 5)]
            )
            now = base + rnd.randint(-4 * 3600, 4 * 3600)
            within = rnd.choice([60, 1800, 3600, 5400])
            cron = rnd.choice(crons)
            ours = latest_start(parse_cron(cron), load_zone(zone), now, within)
            assert ours == _brute_latest(cron, zone, now, within), (zone, cron, format_utc(now), within)


# --------------------------------------------------------------------------------------------------
# The parser.

METRIC = {
    "type": "Prometheus",
    "prometheus": {"query": "sum(players)", "target": {"type": "AverageValue", "averageValue": "10"}},
}


def _spec(*schedules: dict[str, Any], **horizontal: Any) -> PolicySpec:
    return spec(
        {
            "minReplicas": 1,
            "maxReplicas": 20,
            "metrics": [METRIC],
            "schedules": list(schedules),
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
            **horizontal,
        }
    )


RELEASE = {"name": "release", "start": "2026-12-08T18:00:00Z", "duration": "1h", "minReplicas": 8}


def test_schedules_parse() -> None:
    parsed = _spec(
        RELEASE,
        {
            "name": "evenings",
            "cron": "0 18 * * MON-FRI",
            "timeZone": "Europe/Berlin",
            "duration": "3h",
            "minReplicas": 4,
        },
        {
            "name": "later",
            "start": "2026-12-08T19:00:00Z",
            "end": "2026-12-08T21:30:00+01:00",
            "minReplicas": 2,
        },
    )
    assert parsed.horizontal is not None
    release, evenings, later = parsed.horizontal.schedules
    assert (release.start, release.length, release.min_replicas) == (_utc(2026, 12, 8, 18), 3600.0, 8)
    assert evenings.cron is not None
    assert evenings.time_zone is not None
    assert evenings.time_zone.name == "Europe/Berlin"
    assert evenings.length == 3 * 3600
    assert later.length == 5400.0  # 19:00Z to 21:30+01:00


@pytest.mark.parametrize(
    ("schedule", "path", "problem"),
    [
        ({**RELEASE, "cron": "0 18 * * *"}, "schedules[0]", "exactly one of start"),
        ({"name": "x", "duration": "1h", "minReplicas": 2}, "schedules[0]", "exactly one of start"),
        (
            {"name": "x", "cron": "0 18 * *", "duration": "1h", "minReplicas": 2},
            "schedules[0].cron",
            "5 fields",
        ),
        (
            {"name": "x", "cron": "0 18 * * *", "minReplicas": 2},
            "schedules[0].duration",
            "required with cron",
        ),
        ({**RELEASE, "end": "2026-12-08T19:00:00Z"}, "schedules[0]", "exactly one of end / duration"),
        ({**RELEASE, "timeZone": "UTC"}, "schedules[0].timeZone", "cron only"),
        ({**RELEASE, "start": "2026-12-08T18:00:00"}, "schedules[0].start", "UTC offset"),
        ({**RELEASE, "duration": "169h"}, "schedules[0].duration", "between"),
        ({**RELEASE, "minReplicas": 21}, "schedules[0].minReplicas", "maxReplicas"),
        ({**RELEASE, "minReplicas": 0}, "schedules[0].minReplicas", "must be in"),
        (
            {"name": "x", "cron": "0 18 * * *", "timeZone": "Mars/Base", "duration": "1h", "minReplicas": 2},
            "schedules[0].timeZone",
            "unknown time zone",
        ),
        (
            {"name": "x", "start": "2026-12-08T18:00:00Z", "end": "2026-12-08T17:00:00Z", "minReplicas": 2},
            "schedules[0].end",
            "after start",
        ),
        ({**RELEASE, "name": "Release_1"}, "schedules[0].name", "DNS label"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(
    schedule: dict[str, Any], path: str, problem: str
) -> None:
    with pytest.raises(SpecError, match=problem) as err:
        _spec(schedule)
    assert err.value.path == f"spec.horizontal.{path}"


@pytest.mark.parametrize(
    ("other", "path", "problem"),
    [
        ({**RELEASE, "minReplicas": 2}, "schedules[1].name", "duplicate"),
        (
            {"name": "b", "start": "2026-12-08T19:30:00+01:00", "duration": "1h", "minReplicas": 2},
            "schedules[1]",
            "overlaps the window of schedule 'release'",
        ),
    ],
)
def test_overlapping_and_duplicate_schedules_are_refused(
    other: dict[str, Any], path: str, problem: str
) -> None:
    with pytest.raises(SpecError, match=problem) as err:
        _spec(RELEASE, other)
    assert err.value.path == f"spec.horizontal.{path}"


def test_adjacent_windows_and_different_crons_are_fine_but_the_same_cron_twice_is_not() -> None:
    _spec(RELEASE, {"name": "after", "start": "2026-12-08T19:00:00Z", "duration": "1h", "minReplicas": 2})
    a = {"name": "a", "cron": "0 18 * * *", "duration": "1h", "minReplicas": 2}
    _spec(a, {**a, "name": "b", "timeZone": "Europe/Berlin"})  # other clocks: not statically overlapping
    with pytest.raises(SpecError, match="same as schedule 'a'"):
        _spec(a, {**a, "name": "b", "timeZone": "UTC"})


# --------------------------------------------------------------------------------------------------
# The floor in plan: a temporary minReplicas, combined as max, not rate-limited, no cliff at the end.

START = _utc(2026, 12, 8, 18)


def _tick(policy: PolicySpec, current: int, value: float, state: PlanState, now: float) -> Any:
    obs = Observation(current_replicas=current, readings={"prometheus-0": ScalarReading(value)})
    return plan(policy, obs, state, now)


@pytest.mark.parametrize(
    ("now", "demand", "current", "to", "limited_by"),
    [
        (START - 1, 20, 2, 2, ""),  # before the window: the metric alone (20 / 10 -> 2)
        (START, 20, 2, 8, SCHEDULED_MINIMUM),  # opens: straight to the floor, not at the scale-up rate
        (START + 1800, 20, 8, 8, SCHEDULED_MINIMUM),  # held although the metric asks for 2
        (START + 1800, 150, 8, 9, "ScaleUpLimit"),  # the metric asks for more: it wins, at its usual rate
        (START + 1800, 150, 20, 15, ""),  # above both: scales down to the metric's 15, not to 8
    ],
)
def test_floor_in_plan(now: float, demand: float, current: int, to: int, limited_by: str) -> None:
    policy = _spec(
        RELEASE,
        behavior={
            "scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
            "scaleDown": {"stabilizationWindowSeconds": 0},
        },
    )
    d = _tick(policy, current, demand, PlanState(), now)
    assert (d.to_replicas, d.limited_by) == (to, limited_by), d.reason
    in_window = START <= now < START + 3600
    assert (d.active_schedule is not None) == in_window
    if limited_by == SCHEDULED_MINIMUM:
        assert d.reason.startswith("schedule release: at least 8 replicas until 2026-12-08T19:00:00Z"), (
            d.reason
        )
        assert any(c.reason == SCHEDULED_MINIMUM and c.status for c in d.conditions())


def test_the_window_end_is_a_normal_scale_down_not_a_cliff() -> None:
    policy = _spec(RELEASE)  # scale-down stabilization 60s
    state = PlanState()
    current = 2
    seen = []
    for now in range(int(START) - 30, int(START) + 3600 + 120, 15):
        d = _tick(policy, current, 20, state, float(now))
        state, current = d.state, d.to_replicas
        seen.append((now - START, current))
    during = [c for t, c in seen if 0 <= t < 3600]
    assert set(during) == {8}
    after = [(t, c) for t, c in seen if t >= 3600]
    # The last floor recommendation (t=3585) stays in the 60s window through t=3630.
    assert all(c == 8 for t, c in after if t <= 3630), after
    assert all(c == 2 for t, c in after if t > 3630), after


def test_cron_floor_on_local_clocks() -> None:
    evenings = {
        "name": "evenings",
        "cron": "0 18 * * *",
        "timeZone": "Europe/Berlin",
        "duration": "2h",
        "minReplicas": 6,
    }
    policy = _spec(evenings)
    winter, summer = _utc(2026, 12, 8, 17, 30), _utc(2026, 7, 8, 16, 30)  # 18:30 in Berlin, CET and CEST
    for now in (winter, summer):
        assert _tick(policy, 2, 20, PlanState(), now).to_replicas == 6
    assert _tick(policy, 2, 20, PlanState(), _utc(2026, 12, 8, 16, 59)).to_replicas == 2  # 17:59 in Berlin


def test_floor_is_bounded_by_max_and_absent_schedules_change_nothing() -> None:
    policy = _spec()
    assert policy.horizontal is not None
    assert policy.horizontal.schedules == ()
    d = _tick(policy, 2, 20, PlanState(), START)
    assert (d.to_replicas, d.limited_by) == (2, "")


def test_a_floor_applies_when_every_metric_failed() -> None:

    policy = _spec(RELEASE)
    broken = Observation(current_replicas=2, readings={"prometheus-0": MetricError("prometheus down")})
    during = plan(policy, broken, PlanState(), START + 60)
    assert during.to_replicas == 8
    assert plan(policy, broken, PlanState(), START - 60).to_replicas == 2  # before it: hold, as always


# --------------------------------------------------------------------------------------------------
# minFreeCapacity: a floor of the Buffer metrics' free capacity, applied inside the Buffer calculation.

BUFFER: dict[str, Any] = {
    "type": "Buffer",
    "buffer": {"usedQuery": "sum(players)", "capacityPerReplica": 10, "size": 50},
}
FAST_UP = {
    "scaleUp": {"policies": [{"type": "Percent", "value": 1000, "periodSeconds": 15}]},
    "scaleDown": {"stabilizationWindowSeconds": 0},
}


def _buffer_spec(*schedules: dict[str, Any], size: Any = 50) -> PolicySpec:
    metric = {**BUFFER, "buffer": {**BUFFER["buffer"], "size": size}}
    return _spec(*schedules, metrics=[metric], maxReplicas=100, behavior=FAST_UP)


def _buffer_tick(policy: PolicySpec, used: float | None, now: float, current: int = 45) -> Any:
    reading = BufferReading(used) if used is not None else MetricError("prometheus down")
    return plan(
        policy, Observation(current_replicas=current, readings={"buffer-0": reading}), PlanState(), now
    )


FREE = {"name": "release", "start": "2026-12-08T18:00:00Z", "duration": "1h"}


@pytest.mark.parametrize(
    ("case", "schedule", "now", "proposal", "to", "raised", "status"),
    [
        # used 300 + buffer 50 at 10 per replica -> 35
        ("no window", {**FREE, "minFreeCapacity": 500}, START - 1, 35, 35, False, None),
        (
            "free floor below the buffer: no change",
            {**FREE, "minFreeCapacity": 20},
            START,
            35,
            35,
            False,
            {"name": "release", "until": "2026-12-08T19:00:00Z", "minFreeCapacity": 20},
        ),
        (
            "free floor above the buffer: 300 + 500 -> 80",
            {**FREE, "minFreeCapacity": 500},
            START + 1800,
            80,
            80,
            True,
            {"name": "release", "until": "2026-12-08T19:00:00Z", "minFreeCapacity": 500},
        ),
        (
            "both floors, the replica floor higher",
            {**FREE, "minFreeCapacity": 500, "minReplicas": 90},
            START,
            80,
            90,
            True,
            {"name": "release", "until": "2026-12-08T19:00:00Z", "minReplicas": 90, "minFreeCapacity": 500},
        ),
        (
            "both floors, the free floor higher",
            {**FREE, "minFreeCapacity": 500, "minReplicas": 40},
            START,
            80,
            80,
            True,
            {"name": "release", "until": "2026-12-08T19:00:00Z", "minReplicas": 40, "minFreeCapacity": 500},
        ),
    ],
)
def test_free_capacity_floor_in_plan(
    case: str,
    schedule: dict[str, Any],
    now: float,
    proposal: int,
    to: int,
    raised: bool,
    status: dict[str, Any] | None,
) -> None:
    d = _buffer_tick(_buffer_spec(schedule), 300, now)
    (buffer,) = d.proposals
    assert (buffer.replicas, d.to_replicas) == (proposal, to), (case, d.reason)
    assert ("raised from 50 by schedule release" in buffer.detail) == raised, buffer.detail
    assert (d.active_schedule.to_status() if d.active_schedule else None) == status
    if to == 90:
        assert d.limited_by == SCHEDULED_MINIMUM
    if raised and to == proposal:  # the reason is the Buffer metric's detail: it names the schedule
        assert "buffer 500 (raised from 50 by schedule release)" in d.reason, d.reason


def test_free_floor_raises_a_percent_buffer_and_never_lowers_one() -> None:
    schedule = {**FREE, "minFreeCapacity": 500}
    # 25% of 400 = 100 free -> raised to 500: (400 + 500) / 10 = 90
    assert _buffer_tick(_buffer_spec(schedule, size="25%"), 400, START).proposals[0].replicas == 90
    # 1000% of 400 = 4000 free, above the floor: (400 + 4000) / 10 = 440, capped later by maxReplicas
    high = _buffer_tick(_buffer_spec(schedule, size="1000%"), 400, START).proposals[0]
    assert high.replicas == 440
    assert "raised" not in high.detail


def test_the_highest_open_free_floor_wins_and_only_buffer_metrics_take_it() -> None:
    evenings = {"name": "evenings", "cron": "0 18 * * *", "duration": "2h", "minFreeCapacity": 900}
    policy = _spec(
        {**FREE, "minFreeCapacity": 500},
        evenings,
        metrics=[METRIC, BUFFER],
        maxReplicas=200,
        behavior=FAST_UP,
    )
    readings = {"prometheus-0": ScalarReading(20), "buffer-1": BufferReading(300)}
    d = plan(policy, Observation(current_replicas=30, readings=readings), PlanState(), START)
    prom, buffer = d.proposals
    assert prom.replicas == 2  # 20 / 10: the Prometheus metric knows nothing of free capacity
    assert buffer.replicas == 120  # (300 + 900) / 10: the cron floor is higher than the release's 500
    assert "by schedule evenings" in buffer.detail
    assert d.active_schedule is not None
    assert d.active_schedule.to_status() == {
        "name": "evenings",
        "until": "2026-12-08T20:00:00Z",
        "minFreeCapacity": 900,
    }


def test_a_replica_floor_and_a_free_floor_of_different_schedules_are_both_shown() -> None:
    evenings = {"name": "evenings", "cron": "0 18 * * *", "duration": "2h", "minFreeCapacity": 500}
    d = _buffer_tick(_buffer_spec({**FREE, "minReplicas": 90}, evenings), 300, START)
    assert d.to_replicas == 90
    assert d.active_schedule is not None
    assert d.active_schedule.to_status() == {
        "name": "release",
        "minReplicas": 90,
        "until": "2026-12-08T19:00:00Z",
        "minFreeCapacity": 500,
        "freeCapacitySchedule": "evenings",
    }


def test_a_failed_buffer_metric_takes_no_free_floor_but_the_replica_floor_holds() -> None:
    free_only = _buffer_tick(_buffer_spec({**FREE, "minFreeCapacity": 500}), None, START)
    assert not free_only.proposals[0].ok
    assert free_only.to_replicas == 45  # all metrics failed: hold; no used count to add free slots to
    both = _buffer_tick(_buffer_spec({**FREE, "minFreeCapacity": 500, "minReplicas": 50}), None, START)
    assert both.to_replicas == 50
    assert both.active_schedule is not None
    assert both.active_schedule.to_status()["minReplicas"] == 50


@pytest.mark.parametrize(
    ("schedule", "metrics", "path", "problem"),
    [
        ({**FREE, "minFreeCapacity": 500}, [METRIC], "schedules[0].minFreeCapacity", "needs a Buffer metric"),
        (FREE, [BUFFER], "schedules[0]", "needs minReplicas .* minFreeCapacity"),
        ({**FREE, "minFreeCapacity": -1}, [BUFFER], "schedules[0].minFreeCapacity", "must be in"),
        ({**FREE, "minFreeCapacity": 10_000_000}, [BUFFER], "schedules[0].minFreeCapacity", "must be in"),
        ({**FREE, "minFreeCapacity": 1.5}, [BUFFER], "schedules[0].minFreeCapacity", "integer"),
    ],
)
def test_bad_free_floors_are_refused_naming_the_field(
    schedule: dict[str, Any], metrics: list[Any], path: str, problem: str
) -> None:
    with pytest.raises(SpecError, match=problem) as err:
        _spec(schedule, metrics=metrics)
    assert err.value.path == f"spec.horizontal.{path}"


def test_free_floors_parse() -> None:
    parsed = _spec({**FREE, "minFreeCapacity": 0}, metrics=[METRIC, BUFFER])
    assert parsed.horizontal is not None
    (release,) = parsed.horizontal.schedules
    assert (release.min_replicas, release.min_free_capacity) == (None, 0.0)
