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
demo_name=demo
source scripts/demo-lib.sh

demo_cluster
demo_namespace "$ns"
demo_operator "$ns" 18081 "$out"

log "deploying the arena fleet and its policy (mode $mode)"
sed "s/^  interval: 2s$/  interval: 2s\n  mode: $mode/" manifests/demo/arena.yaml | kubectl -n "$ns" apply -f - >/dev/null
kubectl -n "$ns" rollout status deployment/arena --timeout=60s >/dev/null

log "replaying '$scenario' at time scale $time_scale (progress every 5 s)"
$py -m surge_loadgen run --plane sim --namespace "$ns" --deployment arena --scenario "$scenario" \
  --time-scale "$time_scale" --out "$out"

log "policy status:"
kubectl -n "$ns" get asp arena
kubectl -n "$ns" get events --field-selector involvedObject.kind=AutoScalePolicy --sort-by=.lastTimestamp | tail -5
demo_summary "$out" scenario time_scale duration_s demand_player_seconds unserved_player_seconds \
  unserved_fraction peak_unserved time_to_cover_90_s replica_seconds replicas_max replicas_final scale_actions \
  direction_reversals
log "timeline: $(cd "$out" && pwd)/timeline.png"
log "the cluster keeps running for inspection: export KUBECONFIG=$SURGE_KUBECONFIG; 'make cluster-down' stops it"
