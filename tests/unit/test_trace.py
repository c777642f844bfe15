"""Scenario traces: parsing (CSV, YAML), piecewise-linear demand, time scale, the built-in scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest
from surge_loadgen import trace as tr


def test_csv_with_comments_and_header_is_piecewise_linear() -> None:
    t = tr.parse_csv("# a comment\nseconds,players\n0,100\n# later comment\n10,100\n20,300\n\n", "x")
    assert t.description == "a comment"
    assert t.points == ((0.0, 100.0), (10.0, 100.0), (20.0, 300.0))
    assert t.duration == 20
    assert t.peak == 300
    assert [t.demand_at(s) for s in (-5, 0, 5, 10, 15, 20, 99)] == [100, 100, 100, 100, 200, 300, 300]


def test_yaml_accepts_pairs_mappings_and_a_bare_list() -> None:
    pairs = tr.parse_yaml("name: n\ndescription: d\npoints: [[0, 1], [4, 9]]\n", "file")
    assert (pairs.name, pairs.description, pairs.points) == ("n", "d", ((0.0, 1.0), (4.0, 9.0)))
    maps = tr.parse_yaml("points:\n- {seconds: 0, players: 1}\n- {seconds: 4, players: 9}\n", "file")
    assert maps.name == "file"
    assert maps.points == pairs.points
    assert tr.parse_yaml("- [0, 1]\n- [4, 9]\n", "bare").points == pairs.points


def test_time_scale_compresses_seconds_and_keeps_players() -> None:
    t = tr.parse_csv("0,100\n60,100\n120,1500\n", "x").scaled(0.5)
    assert t.points == ((0.0, 100.0), (30.0, 100.0), (60.0, 1500.0))
    assert t.time_scale == 0.5
    assert t.demand_at(45) == 800
    assert t.scaled(0.5).time_scale == 0.25  # scales compose


def test_players_scale_multiplies_demand_only() -> None:
    t = tr.parse_csv("0,100\n10,300\n", "x").with_players_scale(0.1)
    assert t.points == ((0.0, 10.0), (10.0, 30.0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one"),
        ("0,10\n0,20\n", "strictly increase"),
        ("5,10\n3,20\n", "strictly increase"),
        ("0,-1\n", "negative"),
        ("0,abc\n", "expected a number"),
        ("0\n", "expected 'seconds,players'"),
    ],
)
def test_bad_csv_fails_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tr.parse_csv(text, "bad")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "'points'"),
        ("points: 3\n", "must be a list"),
        ("points: [[0, 1, 2]]\n", r"expected \[seconds, players\]"),
        ("points: [{seconds: 0}]\n", "expected keys"),
        ("points: [[0, true]]\n", "expected a number"),
    ],
)
def test_bad_yaml_fails_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tr.parse_yaml(text, "bad")


def test_bad_time_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="time scale"):
        tr.parse_csv("0,1\n", "x").scaled(0)


def test_load_file_picks_the_format_by_extension(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("0,5\n10,50\n")
    (tmp_path / "b.yml").write_text("points: [[0, 5], [10, 50]]\n")
    assert tr.load_file(tmp_path / "a.csv").points == tr.load_file(tmp_path / "b.yml").points
    assert tr.load_file(tmp_path / "a.csv").name == "a"


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="launch-spike"):
        tr.builtin("nope")


@pytest.mark.parametrize("name", tr.BUILTINS)
def test_every_builtin_loads(name: str) -> None:
    t = tr.builtin(name)
    assert t.name == name
    assert t.description
    assert t.duration > 0
    assert t.peak >= 1000


def test_launch_spike_has_the_promised_shape() -> None:
    """Steady baseline, a 10-20x surge within about a minute, a plateau, a slow decay."""
    t = tr.builtin("launch-spike")
    baseline, peak = t.demand_at(0), t.peak
    assert 10 <= peak / baseline <= 20
    rise_start = max(s for s, n in t.points if n == baseline and s < 200)
    rise_end = min(s for s, n in t.points if n == peak)
    assert rise_end - rise_start <= 75
    plateau = [s for s, n in t.points if n == peak]
    assert plateau[-1] - plateau[0] >= 120
    decay_end = min(s for s, n in t.points if s > plateau[-1] and n <= 2 * baseline)
    assert decay_end - plateau[-1] > 2 * (rise_end - rise_start)  # slower down than up


def test_double_spike_has_two_peaks() -> None:
    t = tr.builtin("double-spike")
    values = [n for _, n in t.points]
    local_maxima = [
        v for i, v in enumerate(values[1:-1], 1) if v >= values[i - 1] and v > values[i + 1] and v >= 1000
    ]
    assert len(local_maxima) == 2
