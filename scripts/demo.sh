#!/usr/bin/env bash
# make demo: the launch-day spike on the embedded cluster, with Surge scaling the game fleet.
# Brings the cluster up if needed, installs the CRD, starts the operator, deploys the fleet and its policy,
# replays the scenario through the sim plane, prints the summary and the PNG, and leaves the cluster up.
# Env: DEMO_SCENARIO (launch-spike), DEMO_TIME_SCALE (0.2), DEMO_OUT (out/demo), DEMO_MODE (Active|DryRun)
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${DEMO_SCENARIO:-launch-spike}
time_scale=${DEMO_TIME_SCALE:-0.2}
out=${DEMO_OUT:-out/demo}
mode=${DEMO_MODE:-Active}
ns=games
py=.venv/bin/python

log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

bash testbed/cluster.sh up >/dev/null
eval "$(bash testbed/cluster.sh env)"
export SURGE_KUBECONFIG SURGE_PROMETHEUS_URL SURGE_PROMETHEUS_TARGETS
kubectl() { "$SURGE_BIN_DIR/kubectl" --kubeconfig "$SURGE_KUBECONFIG" "$@"; }

log "installing the CRD and a fresh '$ns' namespace"
kubectl apply --server-side --force-conflicts -f crds/autoscaling.surge.dev_autoscalepolicies.yaml \
  -f crds/autoscaling.surge.dev_autoscalepolicycheckpoints.yaml >/dev/null
kubectl wait --for=condition=Established crd/autoscalepolicies.autoscaling.surge.dev --timeout=60s >/dev/null
kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null
kubectl create namespace "$ns" >/dev/null
until kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1; do sleep 0.5; done

mkdir -p "$out"
log "starting the operator (log: $out/operator.log)"
.venv/bin/surge run --kubeconfig "$SURGE_KUBECONFIG" --prometheus-url "$SURGE_PROMETHEUS_URL" -n "$ns" \
  --metrics-port 18081 >"$out/operator.log" 2>&1 &
operator=$!
trap 'kill $operator 2>/dev/null || true; wait $operator 2>/dev/null || true' EXIT

log "deploying the arena fleet and its policy (mode $mode)"
sed "s/^  interval: 2s$/  interval: 2s\n  mode: $mode/" manifests/demo/arena.yaml | kubectl -n "$ns" apply -f - >/dev/null
kubectl -n "$ns" rollout status deployment/arena --timeout=60s >/dev/null

log "replaying '$scenario' at time scale $time_scale (progress every 5 s)"
$py -m surge_loadgen run --plane sim --namespace "$ns" --deployment arena --scenario "$scenario" \
  --time-scale "$time_scale" --out "$out"

log "policy status:"
kubectl -n "$ns" get asp arena
kubectl -n "$ns" get events --field-selector involvedObject.kind=AutoScalePolicy --sort-by=.lastTimestamp | tail -5
log "summary: $out/summary.json"
$py - "$out/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
keys = ["scenario", "time_scale", "duration_s", "demand_player_seconds", "unserved_player_seconds",
        "unserved_fraction", "peak_unserved", "time_to_cover_90_s", "replica_seconds", "replicas_max",
        "replicas_final", "scale_actions", "direction_reversals"]
for k in keys:
    if k in s:
        print(f"  {k:26} {s[k]}")
PY
log "timeline: $(cd "$out" && pwd)/timeline.png"
log "the cluster keeps running for inspection: export KUBECONFIG=$SURGE_KUBECONFIG; 'make cluster-down' stops it"
