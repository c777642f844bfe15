"""The six contenders: one autoscaler each, on an identical game fleet in its own namespace.

The objects live as YAML in manifests/bench/spike/ (fleet.yaml for the Deployment, one file per contender for
its HorizontalPodAutoscaler or AutoScalePolicy); this module only names them and puts them in a namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests" / "bench" / "spike"
PLACEHOLDER_NAMESPACE = 'namespace="games"'  # in the PromQL of the game-signal policies


@dataclass(frozen=True)
class Contender:
    key: str
    title: str
    autoscaler: str  # "hpa" | "surge"
    summary: str
    file: str = ""  # manifest file name in MANIFESTS when it is not f"{key}.yaml"

    @property
    def manifest(self) -> Path:
        return MANIFESTS / (self.file or f"{self.key}.yaml")


CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "hpa-default",
        "HPA default",
        "hpa",
        "real HPA (kube-controller-manager, 15 s sync), default behavior, CPU utilization 70%",
    ),
    Contender(
        "hpa-tuned",
        "HPA tuned",
        "hpa",
        "real HPA, CPU 70%, scale-up: no stabilization, +200% or +10 pods per 15 s",
    ),
    Contender(
        "surge-cpu",
        "Surge CPU",
        "surge",
        "Surge, CPU 70% (metrics.k8s.io), interval 15 s, HPA-default tolerance and behavior",
    ),
    Contender(
        "surge-game",
        "Surge game",
        "surge",
        "Surge, Buffer 20% on players online + join rejections/s, interval 5 s, "
        "scale-down after 60 s stabilization",
    ),
    Contender(
        "surge-predictive",
        "Surge game+pred",
        "surge",
        "surge-game + predictive {lookahead: 30s, history: 2m}",
    ),
    Contender(
        "surge-cpu-sat",
        "Surge CPU+sat",
        "surge",
        "surge-cpu + saturation {utilization: 100, scaleUpFactor: 2}: while the ready pods average >= 100% "
        "of their CPU request (a full pod reads 102%), propose at least 2x their count",
        file="surge-cpu-saturation.yaml",
    ),
)
BY_KEY = {c.key: c for c in CONTENDERS}


def select(keys: str) -> tuple[Contender, ...]:
    """Contenders by comma-separated keys ("all" = every one), in the canonical order."""
    if keys.strip() == "all":
        return CONTENDERS
    wanted = [k.strip() for k in keys.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in BY_KEY]
    if unknown or not wanted:
        raise ValueError(f"unknown contender(s) {unknown or keys!r}; known: {', '.join(BY_KEY)}")
    return tuple(c for c in CONTENDERS if c.key in wanted)


def namespace_for(run_id: str, round_no: int, contender: Contender) -> str:
    """A fresh namespace per round, so neither the HPA controller nor Surge carries state across rounds."""
    return f"spike-{run_id}-r{round_no}-{contender.key}"


def _load(path: Path, namespace: str) -> list[dict[str, Any]]:
    text = path.read_text().replace(PLACEHOLDER_NAMESPACE, f'namespace="{namespace}"')
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        doc.setdefault("metadata", {})["namespace"] = namespace
    return docs


def documents(contender: Contender, namespace: str) -> list[dict[str, Any]]:
    """The fleet and the contender's autoscaler, placed in `namespace` (PromQL rewritten to match)."""
    return _load(MANIFESTS / "fleet.yaml", namespace) + _load(contender.manifest, namespace)
