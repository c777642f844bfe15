"""Replaying one trace against several fleets at once, each with its own start offset.

Built on the load generator's Python API (`SimPlane`, `Sample`, `summarize`); the step loop is the same as
`surge_loadgen.runner.run` with one addition: a *lead-in* before the recorded replay, during which the plane
keeps playing the trace's first demand value. Every fleet gets a common warm-up (so metrics-server,
Prometheus and the autoscalers see the baseline load before the trace starts) plus its own random offset
(so the HPA's sync and Surge's ticks meet the trace at different phases in different rounds).
Samples are recorded from the end of the lead-in; counters are re-based to zero there.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from surge_loadgen.runner import Plane, progress_line
from surge_loadgen.summary import summarize
from surge_loadgen.timeline import Sample
from surge_loadgen.trace import Trace


@dataclass(frozen=True)
class Replay:
    """One fleet's recorded replay: samples with t = seconds since the end of its lead-in."""

    samples: list[Sample]
    end: float  # run seconds when the loop stopped (the last sample holds until then)
    lead_in: float
    interrupted: bool

    def summary(self, trace: Trace) -> dict[str, Any]:
        if not self.samples:
            raise RuntimeError("the replay ended before its first step")
        out = summarize(
            self.samples, scenario=trace.name, plane="sim", time_scale=trace.time_scale, end=self.end
        )
        out["interrupted"] = self.interrupted
        return out


async def _sleep_until(deadline: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, deadline - time.monotonic()))


async def replay(
    plane: Plane,
    trace: Trace,
    *,
    lead_in: float,
    step: float = 1.0,
    stop: asyncio.Event | None = None,
    echo: Callable[[str], None] | None = None,
    progress_every: float = 30.0,
) -> Replay:
    """Plays the trace's first value for `lead_in` seconds (not recorded), then the trace (recorded).

    The plane must be started already (and is not stopped here): all fleets of a round start together, so
    their Prometheus targets are registered before the first one's lead-in ends. Bounded: at most
    (lead_in + duration) / step + 2 steps; a slow step skips ahead rather than bursting.
    """
    if step <= 0:
        raise ValueError("step must be > 0")
    stop = stop or asyncio.Event()
    first = round(trace.demand_at(0.0))
    origin = time.monotonic()
    last: Sample | None = None
    for _ in range(int(lead_in / step) + 2):
        now = time.monotonic() - origin
        if now >= lead_in or stop.is_set():
            break
        last = await plane.step(round(now - lead_in, 3), first)
        await _sleep_until(origin + min(lead_in, (math.floor(now / step) + 1) * step), stop)
    await _sleep_until(origin + lead_in, stop)
    base = last or Sample(
        t=0, demand=0, served=0, unserved=0, capacity=0, replicas_ready=0, replicas_desired=0, cpu_request_m=0
    )

    def rebased(s: Sample) -> Sample:
        return dataclasses.replace(
            s,
            rejected_total=s.rejected_total - base.rejected_total,
            dropped_total=s.dropped_total - base.dropped_total,
            api_writes_total=s.api_writes_total - base.api_writes_total,
        )

    samples: list[Sample] = []
    start = time.monotonic()
    last_progress = -math.inf
    for _ in range(int(trace.duration / step) + 2):
        t = time.monotonic() - start
        if t > trace.duration + step / 2 or stop.is_set():
            break
        sample = rebased(await plane.step(round(t, 3), round(trace.demand_at(t))))
        samples.append(sample)
        if echo is not None and sample.t - last_progress >= progress_every:
            echo(progress_line(plane.name, sample))
            last_progress = sample.t
        next_t = (math.floor((time.monotonic() - start) / step) + 1) * step
        if next_t > trace.duration + step / 2:
            break
        await _sleep_until(start + next_t, stop)
    end = time.monotonic() - start
    return Replay(samples, end, lead_in, stop.is_set())
