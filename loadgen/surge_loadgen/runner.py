"""The step loop shared by both data planes, and the run's output files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from surge_loadgen import plot
from surge_loadgen.summary import summarize
from surge_loadgen.timeline import Sample, write_csv
from surge_loadgen.trace import Trace

log = logging.getLogger(__name__)


class Plane(Protocol):
    name: str

    async def start(self) -> None: ...

    async def step(self, t: float, demand: int) -> Sample: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class RunResult:
    summary: dict[str, Any]
    samples: list[Sample]
    out_dir: Path

    @property
    def summary_path(self) -> Path:
        return self.out_dir / "summary.json"

    @property
    def png_path(self) -> Path:
        return self.out_dir / "timeline.png"

    @property
    def timeline_path(self) -> Path:
        return self.out_dir / "timeline.csv"


def progress_line(plane: str, s: Sample) -> str:
    writes = (
        f" api-writes={s.api_writes_total} ({s.api_writes_total / s.t:.1f}/s)"
        if s.api_writes_total and s.t
        else ""
    )
    return (
        f"[{plane} t={s.t:6.1f}s] demand={s.demand:5d} served={s.served:5d} unserved={s.unserved:5d} "
        f"capacity={s.capacity:5d} replicas={s.replicas_ready}/{s.replicas_desired} "
        f"cpu/pod={s.cpu_request_m}m{writes}"
    )


async def run(
    plane: Plane,
    trace: Trace,
    out_dir: Path,
    *,
    step: float = 1.0,
    progress_every: float = 5.0,
    stop: asyncio.Event | None = None,
    echo: Callable[[str], None] = print,
) -> RunResult:
    """Plays `trace` (already time-scaled) once against `plane`, one step every `step` seconds.

    The loop is bounded: at most duration/step + 1 steps, and it ends at the trace's end (or when `stop` is
    set). A slow step makes the loop skip ahead instead of bursting. Outputs go to `out_dir`.
    """
    if step <= 0:
        raise ValueError("step must be > 0")
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    stop = stop or asyncio.Event()
    samples: list[Sample] = []
    await plane.start()
    start = time.monotonic()
    last_progress = -math.inf
    try:
        for _ in range(int(trace.duration / step) + 2):
            t = time.monotonic() - start
            if t > trace.duration + step / 2 or stop.is_set():
                break
            sample = await plane.step(round(t, 3), round(trace.demand_at(t)))
            samples.append(sample)
            if sample.t - last_progress >= progress_every:
                echo(progress_line(plane.name, sample))
                last_progress = sample.t
            next_t = (math.floor((time.monotonic() - start) / step) + 1) * step
            if next_t > trace.duration + step / 2:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, start + next_t - time.monotonic()))
    finally:
        end = time.monotonic() - start
        await plane.stop()
    if not samples:
        raise RuntimeError("the run ended before its first step")
    summary = summarize(samples, scenario=trace.name, plane=plane.name, time_scale=trace.time_scale, end=end)
    summary["interrupted"] = stop.is_set()
    result = RunResult(summary, samples, out_dir)
    await asyncio.to_thread(write_outputs, result)
    return result


def write_outputs(result: RunResult) -> None:
    """timeline.csv, summary.json and timeline.png into the run's folder."""
    write_csv(result.timeline_path, result.samples)
    result.summary_path.write_text(json.dumps(result.summary, indent=2) + "\n")
    plot.render(result.png_path, result.samples, result.summary)
