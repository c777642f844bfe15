#!/usr/bin/env bash
# make demo-vertical: the launch spike with Surge sizing the game pods (vertical, in place) and counting them
# (horizontal) with one policy (manifests/demo/arena-vertical.yaml); the PNG's CPU-request panel follows
# the load up and down. Same steps as scripts/demo.sh (shared in scripts/demo-lib.sh), in namespace
# games-vertical with the operator's metrics on 18082, so both demos can run side by side.
# The default trace is launch-spike with its phases shortened to about six minutes of wall time: the
# recommender learns from one metrics-server sample per pod every 10 s, which no time scale speeds up.
# Env: DEMO_SCENARIO (a built-in instead of that trace), DEMO_TIME_SCALE (1.0), DEMO_OUT (out/demo-vertical),
#      DEMO_MODE (Active|DryRun)
set -euo pipefail
cd "$(dirname "$0")/.."

time_scale=${DEMO_TIME_SCALE:-1.0}
out=${DEMO_OUT:-out/demo-vertical}
mode=${DEMO_MODE:-Active}
ns=games-vertical
demo_name=demo-vertical
source scripts/demo-lib.sh

demo_cluster
demo_namespace "$ns"
demo_operator "$ns" 18082 "$out"

if [[ -n ${DEMO_SCENARIO:-} ]]; then
  source_args=(--scenario "$DEMO_SCENARIO")
  what="'$DEMO_SCENARIO'"
else
  # 40 s baseline, 15x in 30 s, 70 s plateau, down to 150 in 60 s, 160 s tail (seconds at time scale 1).
  cat >"$out/trace.yaml" <<'YAML'
name: launch-spike-vertical
description: >-
  launch-spike at the vertical recommender's pace: 100 players for 40 s, 1500 within 30 s, a 70 s
  plateau, down to 150 in 60 s, and 160 s at 150 for the requests to come down.
points:
  - [0, 100]
  - [40, 100]
  - [70, 1500]
  - [140, 1500]
  - [200, 150]
  - [360, 150]
YAML
  source_args=(--trace "$out/trace.yaml")
  what="launch-spike-vertical ($out/trace.yaml)"
fi

log "deploying the arena fleet and its sizing + counting policy (mode $mode)"
sed "s/^  interval: 2s$/  interval: 2s\n  mode: $mode/" manifests/demo/arena-vertical.yaml | kubectl -n "$ns" apply -f - >/dev/null
kubectl -n "$ns" rollout status deployment/arena --timeout=60s >/dev/null

log "replaying $what at time scale $time_scale (progress every 5 s)"
$py -m surge_loadgen run --plane sim --namespace "$ns" --deployment arena "${source_args[@]}" \
  --time-scale "$time_scale" --out "$out"

log "policy status:"
kubectl -n "$ns" get asp arena
kubectl -n "$ns" get asp arena -o jsonpath='{range .status.recommendation.containerRecommendations[*]}  recommendation {.containerName}: target {.target.cpu}, bounds [{.lowerBound.cpu}, {.upperBound.cpu}]{"\n"}{end}'
kubectl -n "$ns" get events --field-selector involvedObject.kind=AutoScalePolicy --sort-by=.lastTimestamp | tail -5
demo_summary "$out" scenario time_scale duration_s demand_player_seconds unserved_player_seconds \
  unserved_fraction peak_unserved replicas_min replicas_max replicas_final cpu_request_m_min cpu_request_m_max \
  horizontal_scale_actions vertical_scale_actions direction_reversals
# The story in four numbers: the request per pod before the spike, at its highest, and at the end.
$py - "$out/timeline.csv" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if int(r["cpu_request_m"])]
cpu = [int(r["cpu_request_m"]) for r in rows]
peak = max(range(len(cpu)), key=cpu.__getitem__)
print(f"  CPU request per pod (m): start {cpu[0]}, highest {cpu[peak]} (t={float(rows[peak]['t']):.0f} s,"
      f" demand {rows[peak]['demand']}), end {cpu[-1]} (demand {rows[-1]['demand']})")
PY
log "timeline: $(cd "$out" && pwd)/timeline.png"
log "the cluster keeps running for inspection: export KUBECONFIG=$SURGE_KUBECONFIG; 'make cluster-down' stops it"
