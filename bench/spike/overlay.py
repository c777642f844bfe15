"""One PNG overlaying the contenders of one round: demand vs capacity, unserved players, Ready replicas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
from surge_loadgen.timeline import Sample

COLORS = {
    "hpa-default": "tab:red",
    "hpa-tuned": "tab:orange",
    "surge-cpu": "tab:purple",
    "surge-game": "tab:blue",
    "surge-predictive": "tab:green",
    "surge-cpu-sat": "tab:brown",
}


def render(
    path: Path,
    timelines: Mapping[str, tuple[str, Sequence[Sample]]],
    *,
    title: str,
    captions: Mapping[str, str] | None = None,
) -> None:
    """timelines: contender key -> (legend title, samples with t = seconds since its replay started)."""
    fig, (ax_players, ax_unserved, ax_replicas) = plt.subplots(
        3, 1, figsize=(12, 10), sharex=True, gridspec_kw={"height_ratios": [3, 1.6, 1.8]}
    )
    captions = captions or {}
    try:
        first = next(iter(timelines.values()))[1]
        ax_players.plot(
            [s.t for s in first], [s.demand for s in first], color="black", lw=2.2, label="demand (players)"
        )
        for key, (name, samples) in timelines.items():
            color = COLORS.get(key)
            t = [s.t for s in samples]
            label = f"{name}{captions.get(key, '')}"
            ax_players.step(t, [s.capacity for s in samples], where="post", color=color, lw=1.3, label=label)
            ax_unserved.plot(t, [s.unserved for s in samples], color=color, lw=1.2, label=name)
            ax_replicas.step(t, [s.replicas_ready for s in samples], where="post", color=color, lw=1.3)
        ax_players.set_ylabel("players / player slots")
        ax_players.set_title("capacity of the Ready pods per contender (slots) vs demand", fontsize=9)
        ax_unserved.set_ylabel("unserved players")
        ax_replicas.set_ylabel("Ready replicas")
        ax_replicas.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_replicas.set_xlabel(
            "run seconds since the replay started (each contender's own start offset removed)"
        )
        for ax in (ax_players, ax_unserved, ax_replicas):
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
        ax_players.legend(loc="upper right", fontsize=7.5)
        ax_unserved.legend(loc="upper right", fontsize=7.5)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
