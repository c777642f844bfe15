"""Rounds: every contender's fleet replays the same trace at the same time on one cluster.

One round = fresh namespaces (one per contender: the fleet + its HPA or AutoScalePolicy), one Surge
operator process for all Surge contenders of the round, one load-generator process (this one) driving every
fleet concurrently, each after a common warm-up plus its own random offset. Rounds run one after another;
nothing carries over (new namespaces, new HPA objects, a new operator process).
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.spike import contenders as cs
from bench.spike.cluster import Admin, LoadSampler, Operator
from bench.spike.replay import Replay, replay
from surge_loadgen.model import PatchBatcher
from surge_loadgen.runner import RunResult, write_outputs
from surge_loadgen.sim import SimPlane, make_api_client
from surge_loadgen.trace import Trace

from surge_testbed.env import TestbedEnv
from surge_testbed.wait import wait_until

log = logging.getLogger("bench.spike")
DEPLOYMENT = "arena"
POLICY = "arena"


@dataclass(frozen=True)
class Settings:
    trace: Trace  # already time-scaled
    contenders: tuple[cs.Contender, ...]
    runs: int
    jitter: float
    warmup: float
    step: float
    seed: int
    out: Path
    metrics_port: int
    keep_namespaces: bool = False
    setup_timeout: float = 180.0


def _lean(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "scale_events"}


def _ready(admin: Admin, namespace: str) -> bool:
    return admin.ready_replicas(namespace, DEPLOYMENT) >= 2


def _setup_round(settings: Settings, admin: Admin, namespaces: dict[str, str], operator: Operator) -> None:
    admin.create_namespaces(list(namespaces.values()))
    for c in settings.contenders:
        admin.apply(cs.documents(c, namespaces[c.key]))
    for c in settings.contenders:
        ns = namespaces[c.key]
        wait_until(
            partial(_ready, admin, ns),
            timeout=settings.setup_timeout,
            what=f"2 Ready replicas of {ns}/{DEPLOYMENT}",
            interval=1.0,
        )
    for c in settings.contenders:
        if c.autoscaler != "surge":
            continue
        ns = namespaces[c.key]

        def has_status(ns: str = ns) -> bool:
            operator.check()
            return "observedGeneration" in admin.policy_status(ns, POLICY)

        wait_until(
            has_status,
            timeout=settings.setup_timeout,
            what=f"the operator's first status on {ns}/{POLICY}",
            interval=1.0,
        )


async def _play_round(
    settings: Settings,
    testbed: TestbedEnv,
    namespaces: dict[str, str],
    offsets: dict[str, float],
    echo: Callable[[str], None],
) -> tuple[dict[str, Replay], bool]:
    loop = asyncio.get_running_loop()
    # Five planes doing blocking API calls in threads, plus headroom: more than asyncio's default of 6.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=16, thread_name_prefix="plane"))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    planes = {
        c.key: SimPlane(
            make_api_client(str(testbed.kubeconfig)),
            namespaces[c.key],
            DEPLOYMENT,
            batcher=PatchBatcher(),
            targets_dir=testbed.targets_dir,
        )
        for c in settings.contenders
    }
    started: list[SimPlane] = []
    try:
        for plane in planes.values():
            await plane.start()
            started.append(plane)

        async def one(key: str) -> Replay:
            return await replay(
                planes[key],
                settings.trace,
                lead_in=settings.warmup + offsets[key],
                step=settings.step,
                stop=stop,
                echo=partial(_prefixed, echo, key),
            )

        keys = list(planes)
        results = await asyncio.gather(*(one(k) for k in keys))
        return dict(zip(keys, results, strict=True)), stop.is_set()
    finally:
        for plane in started:
            await plane.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _prefixed(echo: Callable[[str], None], key: str, line: str) -> None:
    echo(f"{key:>16} {line}")


def run_rounds(
    settings: Settings, testbed: TestbedEnv, admin: Admin, echo: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every round; returns the results document (meta is added by the caller)."""
    rng = random.Random(settings.seed)
    run_id = uuid.UUID(int=rng.getrandbits(128)).hex[:5]
    admin.install_crds()
    rounds: list[dict[str, Any]] = []
    interrupted = False
    for r in range(1, settings.runs + 1):
        namespaces = {c.key: cs.namespace_for(run_id, r, c) for c in settings.contenders}
        offsets = {c.key: round(rng.uniform(0.0, settings.jitter), 2) for c in settings.contenders}
        round_dir = settings.out / f"round-{r}"
        surge_ns = [namespaces[c.key] for c in settings.contenders if c.autoscaler == "surge"]
        operator = Operator(testbed, surge_ns, settings.metrics_port, round_dir / "operator.log")
        load = LoadSampler()
        log.info("round %d/%d: namespaces %s, start offsets %s", r, settings.runs, namespaces, offsets)
        try:
            if surge_ns:
                operator.start()
            _setup_round(settings, admin, namespaces, operator)
            load.start()
            began = time.time()
            replays, interrupted = asyncio.run(_play_round(settings, testbed, namespaces, offsets, echo))
            loadavg = load.stop()
            operator.check()
            summaries: dict[str, dict[str, Any]] = {}
            for key, rep in replays.items():
                summary = rep.summary(settings.trace)
                summary["start_offset_s"] = offsets[key]
                summary["lead_in_s"] = round(rep.lead_in, 2)
                summary["namespace"] = namespaces[key]
                (round_dir / key).mkdir(parents=True, exist_ok=True)
                write_outputs(RunResult(summary, rep.samples, round_dir / key))
                summaries[key] = _lean(summary)
            for key, ns in namespaces.items():
                admin.dump(ns, round_dir / key)
            rounds.append(
                {
                    "round": r,
                    "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(began)),
                    "loadavg_1m": loadavg,
                    "offsets": offsets,
                    "namespaces": namespaces,
                    "summaries": summaries,
                    "interrupted": interrupted,
                }
            )
            _echo_round(echo, r, summaries)
        finally:
            load.stop()
            operator.stop()
            if not settings.keep_namespaces:
                admin.delete_namespaces(list(namespaces.values()))
        if interrupted:
            log.warning("interrupted: skipping the remaining rounds")
            break
    return {"run_id": run_id, "rounds": rounds, "interrupted": interrupted}


def _echo_round(echo: Callable[[str], None], r: int, summaries: dict[str, dict[str, Any]]) -> None:
    echo(f"round {r}:")
    for key, s in summaries.items():
        echo(
            f"  {key:>16}: unserved {s['unserved_player_seconds']:>9} player-s "
            f"({s['unserved_fraction']:.2%}), "
            f"peak {s['peak_unserved']:>4}, cover-90% {s['time_to_cover_90_s']} s, "
            f"replica-s {s['replica_seconds']}, max {s['replicas_max']}, actions {s['scale_actions']}, "
            f"reversals {s['direction_reversals']}"
        )
