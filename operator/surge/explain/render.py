"""A policy's last decision in words: (policy object, its Events, its checkpoint, now) -> Explanation.

Pure: the caller reads the objects and passes the time in, so every situation is a table row in the unit
tests. Everything said here comes from what the operator wrote (status, conditions, Events, checkpoint);
nothing is recomputed, because the words must match what the operator actually decided.

The status is written only when it changes (a steady state writes nothing), so it holds no per-tick
timestamp. The last evaluation on record is the newest of the checkpoint's ``lastTick`` (saved about once
a minute while the decision state moves) and the tick times the status carries (lastDecision.time, the
conditions' lastTransitionTime, lastScaleTime); the next one is extrapolated from it with the interval and
its +-5% jitter, and the uncertainty grows with every interval extrapolated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from surge.api import reasons
from surge.api.spec import PolicySpec, ScalingRules, SpecError, parse_policy_spec
from surge.reconcile import DEFAULT_INTERVAL, ERROR_BACKOFF, JITTER, PAUSE_ANNOTATION

__all__ = [
    "Explanation",
    "MetricLine",
    "NextEvaluation",
    "explain",
    "next_evaluation",
    "to_json",
    "to_text",
]

MAX_EVENTS = 10
# Failures after which the loop retries on a short back-off instead of the interval (reconcile._failed,
# and the "error" outcome of a failed write).
_BACKOFF_REASONS = {
    reasons.INTERNAL_ERROR,
    reasons.FAILED_RESCALE,
    reasons.FAILED_RESIZE,
    reasons.FAILED_UPDATE_TEMPLATE,
}


@dataclass(frozen=True, slots=True)
class MetricLine:
    name: str
    type: str
    value: str
    target: str
    proposed_replicas: int | None
    error: str
    winner: bool  # the highest working proposal: the one the count follows
    percent: bool  # value and target are percent of requests (a Utilization target)

    def sentence(self) -> str:
        if self.error:
            return f"{self.name} ({self.type}): FAILED: {self.error}"
        unit = "%" if self.percent else ""
        text = f"{self.name} ({self.type}): value {self.value}{unit}, target {self.target}{unit}"
        if self.proposed_replicas is not None:
            text += f" -> proposes {self.proposed_replicas} replica(s)"
        return text + (" [highest: this one decides]" if self.winner else "")


@dataclass(frozen=True, slots=True)
class NextEvaluation:
    interval: float  # seconds, nominal
    time: float | None  # epoch seconds; None: the phase is unknown, only "within `within`" is
    uncertainty: float  # +- seconds around `time`
    within: float  # at the latest this many seconds from now (if the operator runs and leads)
    backing_off: bool = False


@dataclass(frozen=True)
class Explanation:
    namespace: str
    name: str
    now: float
    target: str
    mode: str  # Active | DryRun
    paused: bool
    interval: float
    evaluated: bool
    generation: int
    observed_generation: int | None
    current_replicas: int | None
    desired_replicas: int | None
    min_replicas: int | None
    max_replicas: int | None
    metrics: tuple[MetricLine, ...]
    decision: Mapping[str, Any] | None
    summary: str
    limits: tuple[str, ...]
    why_nothing: tuple[str, ...]
    recommendation: tuple[Mapping[str, Any], ...]
    conditions: tuple[Mapping[str, Any], ...]
    events: tuple[Mapping[str, Any], ...]
    last_evaluation: tuple[float, str] | None  # (epoch, where it is recorded)
    next: NextEvaluation | None
    notes: tuple[str, ...] = field(default=())


# --- time ------------------------------------------------------------------------------------------


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _when(epoch: float, now: float) -> str:
    """ "2026-12-08T03:00:00Z (in 25s)" / "(20s ago)"."""
    delta = epoch - now
    rel = f"in {_span(delta)}" if delta >= 0 else f"{_span(delta)} ago"
    return f"{_iso(epoch)} ({rel})"


def next_evaluation(
    anchor: float | None, precision: float, interval: float, now: float, *, backing_off: bool = False
) -> NextEvaluation | None:
    """Extrapolates the loop's period from one known tick start (``anchor``, known to +-``precision`` s).

    Ticks are ``interval`` apart start to start, each jittered by up to +-JITTER: after n periods the
    phase is known to +-n x interval x JITTER. Once that reaches half an interval the phase is unknown
    and only the bound "within one jittered interval" is left.
    """
    if anchor is None:
        return None
    within = interval * (1 + JITTER)
    if backing_off:  # retries start ERROR_BACKOFF after a failure and double up to the interval
        return NextEvaluation(interval, None, 0.0, within, backing_off=True)
    periods = math.floor(max(now - anchor, 0.0) / interval) + 1
    due = anchor + periods * interval
    uncertainty = periods * interval * JITTER + precision
    if uncertainty >= interval / 2:
        return NextEvaluation(interval, None, 0.0, within)
    return NextEvaluation(interval, due, uncertainty, min(within, max(due + uncertainty - now, 0.0)))


# --- reading the object ----------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rules_text(rules: ScalingRules) -> str:
    parts = [
        f"{p.value}{'%' if p.type.value == 'Percent' else ' pod(s)'} per {p.period_seconds}s"
        for p in rules.policies
    ]
    return f"{' or '.join(parts)} (selectPolicy {rules.select_policy.value})"


def _metric_lines(status: Mapping[str, Any], raw_spec: Mapping[str, Any]) -> tuple[MetricLine, ...]:
    entries = [m for m in status.get("currentMetrics") or () if isinstance(m, Mapping)]
    spec_metrics = (raw_spec.get("horizontal") or {}).get("metrics") or []
    working = [
        (i, _int(m.get("proposedReplicas")))
        for i, m in enumerate(entries)
        if not m.get("error") and _int(m.get("proposedReplicas")) is not None
    ]
    top = max((r for _, r in working if r is not None), default=None)
    winner = next((i for i, r in working if r == top), None)
    lines = []
    for i, m in enumerate(entries):
        raw = spec_metrics[i] if i < len(spec_metrics) and isinstance(spec_metrics[i], Mapping) else {}
        target = ((raw.get("resource") or {}).get("target") or {}) if raw.get("type") == "Resource" else {}
        lines.append(
            MetricLine(
                name=str(m.get("name", f"metric-{i}")),
                type=str(m.get("type", "")),
                value=str(m.get("value", "")),
                target=str(m.get("target", "")),
                proposed_replicas=_int(m.get("proposedReplicas")),
                error=str(m.get("error") or ""),
                winner=i == winner,
                percent=target.get("type") == "Utilization",
            )
        )
    return tuple(lines)


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        str(c.get("type")): c
        for c in status.get("conditions") or ()
        if isinstance(c, Mapping) and c.get("type")
    }


def _limit_sentences(
    decision: Mapping[str, Any], spec: PolicySpec | None, top: int | None, now: float
) -> list[str]:
    """What capped the count, from lastDecision.limitedBy and the spec's rules."""
    limited = str(decision.get("limitedBy") or "")
    to = _int(decision.get("to"))
    hor = spec.horizontal if spec is not None else None
    asked = f"the metrics asked for {top}" if top is not None else "the planner asked for more"
    out: list[str] = []
    if limited == "ScaleUpLimit":
        rule = f" (behavior.scaleUp: {_rules_text(hor.behavior.scale_up)})" if hor else ""
        out.append(f"Limited by the scale-up rate policy{rule}: {asked}, it allows {to} now.")
    elif limited == "ScaleDownLimit":
        rule = f" (behavior.scaleDown: {_rules_text(hor.behavior.scale_down)})" if hor else ""
        asked = f"the metrics asked for {top}" if top is not None else "the planner asked for fewer"
        out.append(f"Limited by the scale-down rate policy{rule}: {asked}, it allows {to} now.")
    elif limited in ("ScaleDownStabilized", "ScaleUpStabilized"):
        down = limited == "ScaleDownStabilized"
        window = (
            (hor.behavior.scale_down if down else hor.behavior.scale_up).stabilization_window_seconds
            if hor
            else None
        )
        win = f" ({window}s)" if window is not None else ""
        side = "highest" if down else "lowest"
        text = (
            f"Held by the scale-{'down' if down else 'up'} stabilization window{win}: the {side} "
            f"recommendation of the window keeps the count at {to}"
        )
        hold = _epoch(decision.get("holdUntil"))
        if hold is not None:
            text += f" until {_when(hold, now)}"
        out.append(text + ".")
    elif limited == "TooManyReplicas":
        bound = hor.max_replicas if hor else to
        out.append(f"Capped at maxReplicas ({bound}): {asked}.")
    elif limited == "TooFewReplicas":
        bound = hor.min_replicas if hor else to
        out.append(f"Raised to minReplicas ({bound}).")
    elif limited:
        out.append(f"Limited by {limited}.")
    reason = str(decision.get("reason") or "")
    if "fallback to" in reason:
        out.append("The fallback applies: every metric failed failureThreshold times in a row.")
    if "blocked because a metric failed" in reason:
        out.append("A failed metric blocks the scale-down: missing data never scales a workload down.")
    return out


def _why_nothing(
    *,
    evaluated: bool,
    mode: str,
    paused: bool,
    conds: Mapping[str, Mapping[str, Any]],
    decision: Mapping[str, Any] | None,
    metrics: Sequence[MetricLine],
    current: int | None,
    spec: PolicySpec | None,
) -> list[str]:
    """Reasons the target's count does not change now (empty when it does)."""
    out: list[str] = []
    ready = conds.get("Ready") or {}
    conflict = conds.get("Conflict") or {}
    if not evaluated:
        return [
            "The operator has not evaluated this policy yet (no status): "
            "is it running, and watching this namespace?"
        ]
    if ready.get("reason") == reasons.INVALID_SPEC:
        out.append(f"The spec is invalid, nothing is decided: {ready.get('message', '')}")
    if conflict.get("status") == "True" and conflict.get("reason") == reasons.CONFLICTING_AUTOSCALER:
        out.append(
            f"Conflict: {conflict.get('message', '')} (the decision below is from before the conflict)."
        )
    able = conds.get("AbleToScale") or {}
    if able.get("status") == "False":
        out.append(f"The target cannot be scaled ({able.get('reason')}): {able.get('message', '')}")
    if decision is None:
        return out
    frm, to = _int(decision.get("from")), _int(decision.get("to"))
    if frm is not None and to is not None and frm != to:
        if paused:
            out.append(f"Paused ({PAUSE_ANNOTATION}=true): it would scale {frm} -> {to}, nothing is applied.")
        elif mode == "DryRun":
            out.append(f"Mode DryRun: it would scale {frm} -> {to}, never applied.")
        return out
    if paused:
        out.append(f"Paused ({PAUSE_ANNOTATION}=true): decisions are reported, not applied.")
    elif mode == "DryRun":
        out.append("Mode DryRun: decisions are reported, never applied.")
    reason = str(decision.get("reason") or "")
    limited = str(decision.get("limitedBy") or "")
    failed = [m for m in metrics if m.error]
    if failed and len(failed) == len(metrics):
        out.append(f"Every metric failed, so the count is kept ({failed[0].name}: {failed[0].error}).")
    elif failed and "blocked because a metric failed" in reason:
        out.append(f"A scale-down is blocked because a metric failed ({failed[0].name}).")
    elif "autoscaling is disabled" in reason:
        out.append(
            "The target was scaled to 0 by hand and minReplicas > 0: "
            "autoscaling is off until it is scaled up."
        )
    elif not limited:
        top = max((m.proposed_replicas or 0 for m in metrics if not m.error), default=None)
        if top is not None and current is not None and top == current:
            tol = spec.horizontal.tolerance if spec is not None and spec.horizontal else None
            band = f" (tolerance scaleUp {tol.scale_up:g}, scaleDown {tol.scale_down:g})" if tol else ""
            out.append(
                f"The highest proposal equals the current count ({current}): the metrics are at their "
                f"targets within tolerance{band}."
            )
    return out


def _summary(
    evaluated: bool, decision: Mapping[str, Any] | None, mode: str, paused: bool, status: Mapping[str, Any]
) -> str:
    if not evaluated:
        return "Not evaluated yet."
    if decision is None:
        return "No decision yet (see the conditions)."
    frm, to = _int(decision.get("from")), _int(decision.get("to"))
    when = str(decision.get("time") or "?")
    if frm == to:
        return f"Decided at {when} to keep {to} replica(s)."
    verb = "would scale" if paused or mode == "DryRun" else "scaled"
    if verb == "scaled" and status.get("lastScaleTime") != decision.get("time"):
        verb = "decided to scale"
    return f"At {when} it {verb} from {frm} to {to} replicas."


def _events(events: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    rows = []
    for e in events:
        stamp = e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or ""
        rows.append(
            {
                "time": str(stamp),
                "type": str(e.get("type", "")),
                "reason": str(e.get("reason", "")),
                "message": str(e.get("message", "")),
                "count": _int(e.get("count")) or 1,
            }
        )
    rows.sort(key=lambda r: _epoch(r["time"]) or 0.0)
    return tuple(rows[-MAX_EVENTS:])


def _anchor(
    status: Mapping[str, Any], checkpoint: Mapping[str, Any] | None, uid: str
) -> tuple[float, float, str] | None:
    """The newest known tick start: (epoch, precision in s, where it was found)."""
    found: list[tuple[float, float, str]] = []
    spec = (checkpoint or {}).get("spec") or {}
    tick = spec.get("lastTick")
    if isinstance(tick, int | float) and not isinstance(tick, bool) and spec.get("policyUID") in (uid, None):
        found.append((float(tick), 0.0, "checkpoint lastTick"))
    last = status.get("lastDecision") or {}
    for value, source in (
        (last.get("time"), "status.lastDecision.time"),
        (status.get("lastScaleTime"), "status.lastScaleTime"),
        *(
            (c.get("lastTransitionTime"), f"condition {c.get('type')}")
            for c in status.get("conditions") or ()
        ),
    ):
        t = _epoch(value)
        if t is not None:
            found.append((t, 1.0, source))  # RFC 3339 in whole seconds
    return max(found, default=None, key=lambda f: f[0])


def explain(
    policy: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]] = (),
    checkpoint: Mapping[str, Any] | None = None,
    *,
    now: float,
) -> Explanation:
    meta = policy.get("metadata") or {}
    raw_spec = policy.get("spec") or {}
    status = policy.get("status") or {}
    annotations = meta.get("annotations") or {}
    notes: list[str] = []
    spec: PolicySpec | None
    try:
        spec = parse_policy_spec(raw_spec)
    except SpecError as exc:
        spec = None
        notes.append(f"the spec does not parse: {exc}")
    ref = raw_spec.get("scaleTargetRef") or {}
    mode = spec.mode.value if spec is not None else str(raw_spec.get("mode") or "Active")
    paused = str(annotations.get(PAUSE_ANNOTATION, "")).lower() == "true"
    interval = spec.interval if spec is not None else DEFAULT_INTERVAL
    generation = _int(meta.get("generation")) or 0
    observed = _int(status.get("observedGeneration"))
    evaluated = observed is not None or bool(status.get("conditions"))
    if observed is not None and observed < generation:
        notes.append(
            f"the status reflects generation {observed}, the spec is at {generation}: "
            "the next evaluation applies the new spec"
        )
    metrics = _metric_lines(status, raw_spec)
    conds = _conditions(status)
    decision = status.get("lastDecision") if isinstance(status.get("lastDecision"), Mapping) else None
    current = _int(status.get("currentReplicas"))
    top = max((m.proposed_replicas or 0 for m in metrics if not m.error), default=None)
    now_limits = _limit_sentences(decision, spec, top, now) if decision is not None else []
    ready = conds.get("Ready") or {}
    backing_off = ready.get("status") == "False" and ready.get("reason") in _BACKOFF_REASONS
    anchor = _anchor(status, checkpoint, str(meta.get("uid") or ""))
    nxt = next_evaluation(
        anchor[0] if anchor else None, anchor[1] if anchor else 0.0, interval, now, backing_off=backing_off
    )
    if anchor is not None and now - anchor[0] > 3 * max(interval, 60.0):
        notes.append(
            f"the newest record of an evaluation is {_span(now - anchor[0])} old (status and checkpoint are "
            "written only when something changes): if it keeps growing, check that the operator runs"
        )
    hor = spec.horizontal if spec is not None else None
    recs = (status.get("recommendation") or {}).get("containerRecommendations") or ()
    return Explanation(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        now=now,
        target=f"{ref.get('kind', '?')}/{ref.get('name', '?')}",
        mode=mode,
        paused=paused,
        interval=interval,
        evaluated=evaluated,
        generation=generation,
        observed_generation=observed,
        current_replicas=current,
        desired_replicas=_int(status.get("desiredReplicas")),
        min_replicas=hor.min_replicas if hor else None,
        max_replicas=hor.max_replicas if hor else None,
        metrics=metrics,
        decision=decision,
        summary=_summary(evaluated, decision, mode, paused, status),
        limits=tuple(now_limits),
        why_nothing=tuple(
            _why_nothing(
                evaluated=evaluated,
                mode=mode,
                paused=paused,
                conds=conds,
                decision=decision,
                metrics=metrics,
                current=current,
                spec=spec,
            )
            # A limit that kept the count where it was is the answer to "why nothing happened" too.
            + (now_limits if decision is not None and decision.get("from") == decision.get("to") else [])
        ),
        recommendation=tuple(r for r in recs if isinstance(r, Mapping)),
        conditions=tuple(conds.values()),
        events=_events(events),
        last_evaluation=(anchor[0], anchor[2]) if anchor else None,
        next=nxt,
        notes=tuple(notes),
    )


# --- output ----------------------------------------------------------------------------------------


def _next_text(nxt: NextEvaluation | None, now: float) -> str:
    if nxt is None:
        return "unknown (never evaluated)"
    every = f"every {nxt.interval:g}s +-{JITTER:.0%}"
    if nxt.backing_off:
        return (
            f"the last evaluation failed: retries back off from {ERROR_BACKOFF:g}s, doubling, "
            f"at most the interval: within {nxt.within:.0f}s ({every})"
        )
    if nxt.time is None:
        return f"within {nxt.within:.0f}s ({every}; the exact phase is not on record)"
    return f"about {_when(nxt.time, now)} +-{nxt.uncertainty:.0f}s ({every})"


def _amounts(values: Any) -> str:
    if not isinstance(values, Mapping) or not values:
        return "-"
    return ", ".join(f"{k} {v}" for k, v in values.items())


def to_text(e: Explanation) -> list[str]:
    mode = e.mode + (f", paused ({PAUSE_ANNOTATION}=true)" if e.paused else "")
    lines = [f"AutoScalePolicy {e.namespace}/{e.name} -> {e.target}  (mode {mode}, interval {e.interval:g}s)"]
    bounds = f" (min {e.min_replicas}, max {e.max_replicas})" if e.max_replicas is not None else ""
    if e.evaluated:
        lines.append(f"Replicas: current {e.current_replicas}, desired {e.desired_replicas}{bounds}")
    lines.append(f"Decision: {e.summary}")
    if e.decision is not None and e.decision.get("reason"):
        lines.append(f"  reason: {e.decision['reason']}")
    if e.metrics:
        lines.append("Metrics:")
        lines.extend(f"  {m.sentence()}" for m in e.metrics)
    if e.limits and not _unchanged(e):  # otherwise they are the answer to "why nothing happened"
        lines.append("What limited it:")
        lines.extend(f"  {s}" for s in e.limits)
    if e.why_nothing:
        lines.append("Why nothing happened:" if _unchanged(e) else "Why it is not applied:")
        lines.extend(f"  {s}" for s in e.why_nothing)
    if e.recommendation:
        lines.append("Vertical recommendation:")
        for r in e.recommendation:
            lines.append(
                f"  {r.get('containerName')}: target {_amounts(r.get('target'))}; "
                f"bounds {_amounts(r.get('lowerBound'))} .. {_amounts(r.get('upperBound'))}"
            )
    if e.conditions:
        lines.append("Conditions:")
        for c in e.conditions:
            since = _epoch(c.get("lastTransitionTime"))
            at = f" since {_when(since, e.now)}" if since is not None else ""
            lines.append(f"  {c.get('type')}={c.get('status')} {c.get('reason')}{at}: {c.get('message', '')}")
    if e.events:
        lines.append("Events (newest last):")
        for ev in e.events:
            count = f" (x{ev['count']})" if ev["count"] > 1 else ""
            lines.append(f"  {ev['time']} {ev['type']} {ev['reason']}{count}: {ev['message']}")
    last = (
        f"{_when(e.last_evaluation[0], e.now)}, from {e.last_evaluation[1]}"
        if e.last_evaluation
        else "none on record"
    )
    lines.append(f"Last evaluation on record: {last}")
    lines.append(f"Next evaluation: {_next_text(e.next, e.now)}")
    lines.extend(f"Note: {n}" for n in e.notes)
    return lines


def _unchanged(e: Explanation) -> bool:
    d = e.decision
    return d is None or d.get("from") == d.get("to")


def to_json(e: Explanation) -> dict[str, Any]:
    nxt = e.next
    return {
        "policy": {
            "namespace": e.namespace,
            "name": e.name,
            "generation": e.generation,
            "observedGeneration": e.observed_generation,
        },
        "target": e.target,
        "mode": e.mode,
        "paused": e.paused,
        "intervalSeconds": e.interval,
        "evaluated": e.evaluated,
        "replicas": {
            "current": e.current_replicas,
            "desired": e.desired_replicas,
            "min": e.min_replicas,
            "max": e.max_replicas,
        },
        "metrics": [
            {
                "name": m.name,
                "type": m.type,
                "value": m.value,
                "target": m.target,
                "proposedReplicas": m.proposed_replicas,
                "error": m.error,
                "winner": m.winner,
            }
            for m in e.metrics
        ],
        "decision": dict(e.decision) if e.decision is not None else None,
        "summary": e.summary,
        "limitedBy": list(e.limits),
        "whyNothing": list(e.why_nothing),
        "recommendation": [dict(r) for r in e.recommendation],
        "conditions": [
            {
                "type": c.get("type"),
                "status": c.get("status"),
                "reason": c.get("reason"),
                "message": c.get("message", ""),
                "since": c.get("lastTransitionTime"),
            }
            for c in e.conditions
        ],
        "events": [dict(ev) for ev in e.events],
        "lastEvaluation": (
            {
                "time": _iso(e.last_evaluation[0]),
                "source": e.last_evaluation[1],
                "ageSeconds": round(e.now - e.last_evaluation[0], 1),
            }
            if e.last_evaluation
            else None
        ),
        "nextEvaluation": (
            {
                "time": _iso(nxt.time) if nxt.time is not None else None,
                "uncertaintySeconds": round(nxt.uncertainty, 1),
                "withinSeconds": round(nxt.within, 1),
                "intervalSeconds": nxt.interval,
                "backingOff": nxt.backing_off,
            }
            if nxt is not None
            else None
        ),
        "notes": list(e.notes),
    }
