"""timeline.png: demand vs served vs capacity, replicas, CPU request per pod; scale events marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to files only

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from surge_loadgen.summary import scale_events
from surge_loadgen.timeline import Sample


def render(path: Path, samples: Sequence[Sample], summary: Mapping[str, Any]) -> None:
    """Writes a three-panel PNG sharing the time axis."""
    t = [s.t for s in samples]
    fig, (ax_players, ax_replicas, ax_cpu) = plt.subplots(
        3, 1, figsize=(11, 8.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.4, 1.2]}
    )
    try:
        ax_players.plot(t, [s.demand for s in samples], color="black", lw=1.8, label="demand")
        ax_players.step(
            t,
            [s.capacity for s in samples],
            where="post",
            color="tab:blue",
            lw=1.4,
            label="capacity (Ready pods)",
        )
        ax_players.plot(t, [s.served for s in samples], color="tab:green", lw=1.2, label="served")
        ax_players.fill_between(
            t,
            [s.served for s in samples],
            [s.demand for s in samples],
            step=None,
            color="tab:red",
            alpha=0.25,
            label="unserved",
        )
        ax_players.set_ylabel("players")
        ax_players.set_ylim(bottom=0)
        ax_players.legend(loc="upper right", fontsize=8)
        ax_players.grid(alpha=0.3)

        ax_replicas.step(
            t,
            [s.replicas_desired for s in samples],
            where="post",
            color="tab:purple",
            lw=1.4,
            label="desired (spec.replicas)",
        )
        ax_replicas.step(
            t,
            [s.replicas_ready for s in samples],
            where="post",
            color="tab:orange",
            lw=1.0,
            ls="--",
            label="ready",
        )
        ax_replicas.set_ylabel("replicas")
        ax_replicas.set_ylim(bottom=0)
        ax_replicas.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_replicas.legend(loc="upper right", fontsize=8)
        ax_replicas.grid(alpha=0.3)

        ax_cpu.step(
            t,
            [s.cpu_request_m for s in samples],
            where="post",
            color="tab:brown",
            lw=1.4,
            label="CPU request per pod (most pods)",
        )
        ax_cpu.set_ylabel("CPU request/pod (m)")
        # Head room above the highest request for the legend (a flat line would run right through it).
        ax_cpu.set_ylim(0, max((s.cpu_request_m for s in samples), default=0) * 1.45 or None)
        # The load each pod is asked to carry, on its own axis: a vertically scaled fleet's request follows
        # it; a horizontally scaled one keeps it level by changing the count instead.
        ax_load = ax_cpu.twinx()
        ax_load.plot(
            t,
            [s.demand / s.replicas_ready if s.replicas_ready else 0.0 for s in samples],
            color="gray",
            lw=1.0,
            ls="--",
            label="demand per Ready pod (right)",
        )
        ax_load.set_ylabel("players/pod")
        ax_load.set_ylim(bottom=0)
        lines = ax_cpu.get_legend_handles_labels()
        more = ax_load.get_legend_handles_labels()
        ax_cpu.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right", fontsize=8)
        ax_cpu.set_xlabel("run time (s)")
        ax_cpu.grid(alpha=0.3)

        for event in scale_events(samples):
            color = "tab:green" if event.direction > 0 else "tab:red"
            axes = (ax_players, ax_replicas) if event.kind == "horizontal" else (ax_players, ax_cpu)
            for ax in axes:
                ax.axvline(
                    event.t, color=color, lw=0.8, alpha=0.5, ls=":" if event.kind == "vertical" else "-"
                )
        onset = summary.get("surge_onset_s")
        if onset is not None:
            ax_players.axvline(float(onset), color="gray", lw=1, ls="--")
            ax_players.annotate(
                "surge onset",
                (float(onset), 0),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=7,
                color="gray",
            )

        t90 = summary.get("time_to_cover_90_s")
        cover = "never" if t90 is None else f"{t90}s"
        fig.suptitle(
            f"{summary.get('scenario')} ({summary.get('plane')} plane,"
            f" time scale {summary.get('time_scale')}):"
            f" unserved {summary.get('unserved_player_seconds')} player-s,"
            f" peak {summary.get('peak_unserved')}, cover-90% {cover},"
            f" {summary.get('scale_actions')} scale actions (green: up, red: down)",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
