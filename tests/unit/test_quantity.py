from __future__ import annotations

from decimal import Decimal

import pytest

from surge.api.quantity import (
    format_cpu,
    format_duration,
    format_memory,
    format_quantity,
    parse_duration,
    parse_quantity,
    quantity_to_float,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Decimal(0)),
        ("2", Decimal(2)),
        ("250m", Decimal("0.25")),
        ("1.5", Decimal("1.5")),
        ("100n", Decimal("1e-7")),
        ("5u", Decimal("5e-6")),
        ("3k", Decimal(3000)),
        ("2M", Decimal(2_000_000)),
        ("1G", Decimal(10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        ("1E", Decimal(10**18)),
        ("1Ki", Decimal(1024)),
        ("128Mi", Decimal(128 * 2**20)),
        ("4Gi", Decimal(4 * 2**30)),
        ("1Ti", Decimal(2**40)),
        ("1Pi", Decimal(2**50)),
        ("1Ei", Decimal(2**60)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("12e-3", Decimal("0.012")),
        ("1.5e+2", Decimal(150)),
        ("-1", Decimal(-1)),
        ("+.5", Decimal("0.5")),
        (3, Decimal(3)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parse_quantity(text: str | int | float, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "m",
        "1e",
        "1.2.3",
        "1Mb",
        "1KI",
        "abc",
        "1 m",
        "--1",
        " 2 ",  # apimachinery does not trim
        "2\n",
        "1e99999999999",  # beyond Decimal's exponent range: a ValueError, not an ArithmeticError
        True,
        None,
        float("inf"),
    ],
)
def test_parse_quantity_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)  # type: ignore[arg-type]


def test_quantity_to_float() -> None:
    assert quantity_to_float("500m") == 0.5
    assert quantity_to_float("1Gi") == 2**30


@pytest.mark.parametrize(
    ("cores", "text"),
    [(0.25, "250m"), (2, "2"), (1.0, "1"), (0.0011, "2m"), (1.5, "1500m"), (0, "0"), (0.1 + 0.2, "300m")],
)
def test_format_cpu(cores: float, text: str) -> None:
    assert format_cpu(cores) == text


@pytest.mark.parametrize(
    ("num", "text"),
    [
        (256 * 2**20, "256Mi"),
        (2**30, "1Gi"),
        (1536 * 2**20, "1536Mi"),
        (1000, "1000"),
        (2048, "2Ki"),
        (0, "0"),
        (10.2, "11"),
    ],
)
def test_format_memory(num: float, text: str) -> None:
    assert format_memory(num) == text


@pytest.mark.parametrize(
    ("value", "text"), [(72, "72"), (0.35, "350m"), (1200.0, "1200"), (1.23456789, "1.23457")]
)
def test_format_quantity(value: float, text: str) -> None:
    assert format_quantity(value) == text


@pytest.mark.parametrize("cores", [0.001, 0.25, 1, 3.5, 12.345])
def test_cpu_round_trip(cores: float) -> None:
    assert quantity_to_float(format_cpu(cores)) == pytest.approx(cores)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15), ("1m30s", 90), ("500ms", 0.5), ("24h", 86400), ("1h1m1s1ms", 3661.001), ("0s", 0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "15", "s", "1d", "1m 30s", "-5s", "1.5s", "15S", 15])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "1m30s"), (0.5, "500ms"), (3600, "1h"), (0, "0s"), (61.25, "1m1s250ms")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
