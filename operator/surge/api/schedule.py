"""The calendar of ``horizontal.schedules``: 5-field cron expressions, IANA time zones, civil dates.

Pure integer arithmetic on epoch seconds, without ``datetime``/``time``: ``surge.decision`` evaluates
schedules at the ``now`` it is given, and the decision layer may not import either, not even indirectly.
The one impure step is ``load_zone``: it reads a zone's compiled TZif file (RFC 8536) once per name (cached)
when a spec is parsed, so the engine only ever sees a ``Zone`` made of plain numbers.
"""

from __future__ import annotations

import bisect
import functools
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "UTC",
    "Cron",
    "Zone",
    "civil_from_days",
    "days_from_civil",
    "format_utc",
    "latest_start",
    "load_zone",
    "parse_cron",
    "parse_rfc3339",
    "weekday",
]

DAY = 86400

# --------------------------------------------------------------------------------------------------
# Civil dates (proleptic Gregorian) <-> days since 1970-01-01.


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a Gregorian date (eras of 400 years, March-based years)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """The (year, month, day) of a day number from ``days_from_civil``."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def weekday(days: int) -> int:
    """0 = Sunday ... 6 = Saturday (1970-01-01 was a Thursday)."""
    return (days + 4) % 7


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if _leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def format_utc(epoch: float) -> str:
    """RFC 3339 in UTC, whole seconds: ``2026-12-08T18:00:00Z``."""
    seconds = int(epoch // 1)
    y, m, d = civil_from_days(seconds // DAY)
    rest = seconds % DAY
    return f"{y:04d}-{m:02d}-{d:02d}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}Z"


_RFC3339_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def parse_rfc3339(text: str) -> float:
    """Epoch seconds of an RFC 3339 time with its UTC offset (``2026-12-08T18:00:00Z``, ``...+01:00``)."""
    match = _RFC3339_RE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"must be an RFC 3339 time with a UTC offset, like 2026-12-08T18:00:00Z or "
            f"2026-12-08T19:00:00+01:00, got {text[:40]!r}"
        )
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not 1 <= month <= 12 or not 1 <= day <= days_in_month(year, month):
        raise ValueError(f"{text!r} is not a date of the calendar")
    if hour > 23 or minute > 59 or second > 59:  # RFC 3339's leap second 60 is refused, as Go does
        raise ValueError(f"{text!r} is not a time of day")
    zone = match.group(8)
    offset = 0
    if zone != "Z":
        oh, om = int(zone[1:3]), int(zone[4:6])
        if oh > 23 or om > 59:
            raise ValueError(f"{text!r} has an impossible UTC offset")
        offset = (oh * 3600 + om * 60) * (1 if zone[0] == "+" else -1)
    fraction = float(match.group(7)) if match.group(7) else 0.0
    return days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60 + second - offset + fraction


# --------------------------------------------------------------------------------------------------
# Cron: minute hour day-of-month month day-of-week.

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (field name, lowest, highest, names for lowest..)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),  # 7 is Sunday too
)
_ITEM_RE = re.compile(r"(\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/([0-9]+))?")


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed cron expression; the sets hold the values each field allows."""

    text: str
    minutes: tuple[int, ...]  # descending, for the backwards search
    hours: tuple[int, ...]  # descending
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is '*'
    any_weekday: bool  # day of week is '*'

    def matches_day(self, year: int, month: int, day: int) -> bool:
        """Vixie cron's rule: when both day fields are restricted, a day matching either one fires."""
        if month not in self.months:
            return False
        by_day = day in self.days
        by_weekday = weekday(days_from_civil(year, month, day)) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return by_weekday
        if self.any_weekday:
            return by_day
        return by_day or by_weekday


def _value(token: str, name: str, lo: int, hi: int, names: tuple[str, ...]) -> int:
    if token.isdigit():
        number = int(token)
    elif token.upper() in names:
        number = names.index(token.upper()) + lo
    else:
        allowed = f"{lo}-{hi}" + (f" or {names[0]}-{names[-1]}" if names else "")
        raise ValueError(f"{name} field: {token!r} is not a value ({allowed})")
    if not lo <= number <= hi:
        raise ValueError(f"{name} field: {number} is out of range {lo}-{hi}")
    return number


def _field(text: str, name: str, lo: int, hi: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM_RE.fullmatch(item)
        if match is None:
            raise ValueError(
                f"{name} field: {item!r} must be '*', a value, a range a-b, with an optional step /n"
            )
        span, step_text = match.groups()
        step = 1
        if step_text is not None:
            step = int(step_text)
            if not 1 <= step <= hi:
                raise ValueError(f"{name} field: step /{step_text} must be between 1 and {hi}")
        if span == "*":
            first, last = lo, hi
        elif "-" in span:
            a, b = span.split("-")
            first, last = _value(a, name, lo, hi, names), _value(b, name, lo, hi, names)
            if first > last:
                raise ValueError(f"{name} field: range {span} runs backwards (write {b}-{a}, or a list)")
        else:
            first = _value(span, name, lo, hi, names)
            last = hi if step_text is not None else first  # 'a/n': from a to the end, every n
        values.update(range(first, last + 1, step))
    return frozenset(values)


def parse_cron(text: str) -> Cron:
    """Parse ``m h dom mon dow``: '*', values, ranges a-b, lists a,b, steps /n, names JAN/SUN."""
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            f"must have 5 fields (minute hour day-of-month month day-of-week), got {len(parts)} in {text!r}"
        )
    sets = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    minutes, hours, days, months, weekdays = sets
    weekdays = frozenset(d % 7 for d in weekdays)
    if (
        not parts[2].startswith("*")
        and parts[4].startswith("*")
        and not any(d <= max(days_in_month(2000, m) for m in months) for d in days)
    ):
        raise ValueError(f"{text!r} never fires: no month of the expression has such a day")
    return Cron(
        text=text,
        minutes=tuple(sorted(minutes, reverse=True)),
        hours=tuple(sorted(hours, reverse=True)),
        days=days,
        months=months,
        weekdays=weekdays,
        any_day=parts[2].startswith("*"),
        any_weekday=parts[4].startswith("*"),
    )


# --------------------------------------------------------------------------------------------------
# Time zones: the transitions of a TZif file, then its POSIX TZ rule for the years after them.


@dataclass(frozen=True, slots=True)
class _RuleDate:
    kind: str  # "M" (month.week.weekday), "J" (1..365, no Feb 29), "n" (0..365)
    a: int
    b: int = 0
    c: int = 0
    time: int = 7200  # seconds after local midnight (may be negative or past 24h)

    def day(self, year: int) -> int:
        """Day number (days_from_civil) of this rule's date in ``year``."""
        if self.kind == "J":
            extra = 1 if _leap(year) and self.a >= 60 else 0
            return days_from_civil(year, 1, 1) + self.a - 1 + extra
        if self.kind == "n":
            return days_from_civil(year, 1, 1) + self.a
        month, week, wday = self.a, self.b, self.c
        first = days_from_civil(year, month, 1)
        day = first + (wday - weekday(first)) % 7 + 7 * (week - 1)
        while day >= first + days_in_month(year, month):  # week 5 = the last such weekday
            day -= 7
        return day


@dataclass(frozen=True, slots=True)
class _PosixRule:
    std: int  # UTC offset in seconds (east positive)
    dst: int | None = None
    start: _RuleDate | None = None
    end: _RuleDate | None = None

    def offset(self, t: float) -> int:
        if self.dst is None or self.start is None or self.end is None:
            return self.std
        year = civil_from_days(int((t + self.std) // DAY))[0]
        on = self.start.day(year) * DAY + self.start.time - self.std  # in standard time
        off = self.end.day(year) * DAY + self.end.time - self.dst  # in daylight time
        if on < off:
            return self.dst if on <= t < off else self.std
        return self.std if off <= t < on else self.dst  # southern hemisphere


_POSIX_RE = re.compile(
    r"(?P<std><[^>]+>|[A-Za-z]{3,})(?P<so>[+-]?\d{1,2}(?::\d{2}){0,2})"
    r"(?:(?P<dst><[^>]+>|[A-Za-z]{3,})(?P<do>[+-]?\d{1,2}(?::\d{2}){0,2})?"
    r"(?:,(?P<r1>[^,]+),(?P<r2>[^,]+))?)?"
)


def _hms(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    parts += [0] * (3 - len(parts))
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def _rule_date(text: str) -> _RuleDate:
    date, _, time = text.partition("/")
    seconds = _hms(time) if time else 7200
    if date.startswith("M"):
        month, week, wday = (int(x) for x in date[1:].split("."))
        return _RuleDate("M", month, week, wday, seconds)
    if date.startswith("J"):
        return _RuleDate("J", int(date[1:]), time=seconds)
    return _RuleDate("n", int(date), time=seconds)


def _parse_posix(text: str) -> _PosixRule:
    match = _POSIX_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"unsupported TZ rule {text!r}")
    std = -_hms(match["so"])  # POSIX offsets count west of Greenwich
    if match["dst"] is None:
        return _PosixRule(std)
    dst = -_hms(match["do"]) if match["do"] else std + 3600
    if match["r1"] is None:  # no rule given: POSIX's default is US rules, tzdata never writes that
        raise ValueError(f"unsupported TZ rule {text!r}")
    return _PosixRule(std, dst, _rule_date(match["r1"]), _rule_date(match["r2"]))


@dataclass(frozen=True, slots=True)
class Zone:
    """UTC offsets of one IANA zone: explicit transitions, then the zone's rule for later instants."""

    name: str
    transitions: tuple[int, ...] = ()  # epoch seconds, ascending
    offsets: tuple[int, ...] = ()  # the UTC offset from each transition on
    initial: int = 0  # before the first transition
    rule: _PosixRule | None = None

    def utc_offset(self, t: float) -> int:
        """Seconds east of UTC at instant ``t``."""
        if self.transitions and t < self.transitions[0]:
            return self.initial
        if self.rule is not None and (not self.transitions or t >= self.transitions[-1]):
            return self.rule.offset(t)
        if not self.transitions:
            return self.initial
        return self.offsets[bisect.bisect_right(self.transitions, t) - 1]

    def to_utc(self, local: int) -> int:
        """The instant of a wall-clock time (seconds as if UTC), like Python's ``fold=0``: a time that
        occurs twice (clocks back) means its first occurrence; a time skipped (clocks forward) is read
        with the offset before the change, so it lands just after the gap (02:30 -> 03:30)."""
        before = self.utc_offset(local - DAY)
        after = self.utc_offset(local + DAY)
        valid = [local - o for o in {before, after} if self.utc_offset(local - o) == o]
        return min(valid) if valid else local - before


UTC = Zone("UTC")
_ZONE_NAME_RE = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+){0,3}")
_TZPATH = ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo", "/etc/zoneinfo")


def _parse_tzif(name: str, data: bytes) -> Zone:
    if data[:4] != b"TZif":
        raise ValueError(f"time zone {name!r}: not a compiled zone file")
    version = data[4:5]
    width, offset = 4, 0
    counts = struct.unpack(">6l", data[20:44])
    if version >= b"2":  # skip the 32-bit block: the 64-bit one follows its own header
        isut, isstd, leap, timecnt, typecnt, charcnt = counts
        offset = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut
        width = 8
        counts = struct.unpack(">6l", data[offset + 20 : offset + 44])
    isut, isstd, leap, timecnt, typecnt, charcnt = counts
    pos = offset + 44
    times = struct.unpack(f">{timecnt}{'q' if width == 8 else 'l'}", data[pos : pos + timecnt * width])
    pos += timecnt * width
    indexes = data[pos : pos + timecnt]
    pos += timecnt
    types = [struct.unpack(">lBB", data[pos + 6 * i : pos + 6 * i + 6])[0] for i in range(typecnt)]
    pos += typecnt * 6 + charcnt + leap * (width + 4) + isstd + isut
    rule = None
    if width == 8:
        footer = data[pos:].strip(b"\n").decode("ascii")
        rule = _parse_posix(footer) if footer else None
    return Zone(
        name=name,
        transitions=tuple(times),
        offsets=tuple(types[i] for i in indexes),
        initial=types[0] if types else 0,
        rule=rule,
    )


def _zone_bytes(name: str) -> bytes | None:
    for root in _TZPATH:
        path = Path(root, name)
        if path.is_file():
            return path.read_bytes()
    try:  # the tzdata package, where the system has no zone files (slim images)
        package = "tzdata.zoneinfo." + ".".join(name.split("/")[:-1])
        return resources.files(package.rstrip(".")).joinpath(name.split("/")[-1]).read_bytes()
    except (ImportError, OSError, ValueError):
        return None


@functools.lru_cache(maxsize=256)
def load_zone(name: str) -> Zone:
    """The zone named ``name`` (IANA, e.g. Europe/Berlin). Raises ValueError for an unknown name."""
    if name in ("UTC", "Etc/UTC"):
        return UTC
    if not _ZONE_NAME_RE.fullmatch(name) or ".." in name:
        raise ValueError(f"{name[:40]!r} is not an IANA time zone name (like Europe/Berlin or UTC)")
    data = _zone_bytes(name)
    if data is None:
        raise ValueError(f"unknown time zone {name!r} (an IANA name, like Europe/Berlin or UTC)")
    try:
        return _parse_tzif(name, data)
    except (struct.error, ValueError, UnicodeDecodeError, IndexError) as exc:
        raise ValueError(f"time zone {name!r}: cannot read its rules ({exc})") from None


# --------------------------------------------------------------------------------------------------
# Cron windows.

_SLACK = 3 * 3600  # more than any DST gap in use: candidates this far past "now" may map before it


def _local_minutes(cron: Cron, hi: int, lo: int) -> Iterator[int]:
    """Wall-clock minutes (seconds as if UTC) matching ``cron`` in [lo, hi], latest first."""
    for day in range(hi // DAY, lo // DAY - 1, -1):
        if not cron.matches_day(*civil_from_days(day)):
            continue
        base = day * DAY
        for hour in cron.hours:
            for minute in cron.minutes:
                local = base + hour * 3600 + minute * 60
                if local > hi:
                    continue
                if local < lo:
                    return
                yield local


def latest_start(cron: Cron, zone: Zone, now: float, within: float) -> int | None:
    """The latest instant in (now - within, now] at which ``cron`` fires on the clocks of ``zone``.

    Wall-clock times map to instants with ``Zone.to_utc``, so near a DST change a later wall-clock time can
    be an earlier instant: the search runs ``_SLACK`` past both ends and stops once no earlier wall-clock
    time can beat the best instant found.
    """
    hi = int(now + zone.utc_offset(now)) + _SLACK
    lo = int(now - within + zone.utc_offset(now - within)) - _SLACK
    best: int | None = None
    for local in _local_minutes(cron, hi, lo):
        instant = zone.to_utc(local)
        if instant <= now and (best is None or instant > best):
            best = instant
        if best is not None and local < best + zone.utc_offset(best) - _SLACK:
            break
    return best if best is not None and best > now - within else None
