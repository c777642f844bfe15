"""`surge simulate` end to end on a built-in scenario, into a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surge.cli import main

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "manifests" / "bench" / "spike" / "surge-game.yaml"


def test_simulate_writes_summary_timelines_and_prints_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "simulate",
            str(POLICY),
            "--scenario",
            "launch-spike",
            "--time-scale",
            "0.2",
            "--hpa",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "unserved player-seconds" in out
    assert "replica-seconds" in out
    assert "HPA default (CPU 70%)" in out
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert set(doc["contenders"]) == {"arena", "hpa-default"}
    assert doc["scenario"] == "launch-spike"
    assert doc["time_scale"] == 0.2
    assert doc["fleet_model"]["scrape_interval"] == 5.0
    summary = doc["contenders"]["arena"]["summary"]
    for key in (
        "unserved_player_seconds",
        "replica_seconds",
        "time_to_cover_90_s",
        "scale_events",
        "samples",
    ):
        assert key in summary
    assert summary["samples"] == 193  # 192 s at time scale 0.2, one step per second
    # The oracle depends on the trace and the fleet only (one number for every contender); a contender
    # that turns players away may use fewer replica-seconds than it, so only the ratio is checked.
    assert "replica-seconds / oracle" in out
    oracles = {c["summary"]["oracle_replica_seconds"] for c in doc["contenders"].values()}
    assert len(oracles) == 1
    assert oracles.pop() > 0
    for contender in doc["contenders"].values():
        s = contender["summary"]
        assert s["replica_seconds_vs_oracle"] == pytest.approx(
            s["replica_seconds"] / s["oracle_replica_seconds"], rel=1e-2
        )
    assert (tmp_path / "timeline-arena.csv").read_text().startswith("t,demand,served")
    assert (tmp_path / "timeline-hpa-default.csv").exists()
    png = tmp_path / "timeline-arena.png"
    assert png.exists() or "no PNG" in out


def test_json_output_and_rounds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", str(POLICY), "--scenario", "launch-spike", "--time-scale", "0.2", "--rounds", "3"]
    assert main([*argv, "-o", "json", "--out", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    arena = doc["contenders"]["arena"]
    assert arena["rounds"] == 3
    assert arena["seeds"] == [1, 2, 3]
    values = arena["per_round"]["unserved_player_seconds"]
    assert arena["medians"]["unserved_player_seconds"] == sorted(values)[1]


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: AutoScalePolicy\nspec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: a},"
        " interval: 0s}\n"
    )
    assert main(["simulate", str(bad), "--scenario", "launch-spike", "--out", str(tmp_path)]) == 2
    assert "spec.interval" in capsys.readouterr().err
    trace = tmp_path / "t.csv"
    trace.write_text("seconds,players\n0,10\n0,20\n")
    assert main(["simulate", str(POLICY), "--trace", str(trace), "--out", str(tmp_path)]) == 2
    assert "strictly increase" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", str(POLICY), "--scenario", "launch-spike", "--trace", str(trace)])
