#!/usr/bin/env bash
# The steps `make demo` (scripts/demo.sh) and `make demo-vertical` (scripts/demo-vertical.sh) share; sourced
# from the repository root, not run. The caller sets `demo_name` (the log prefix) before sourcing.
#   demo_cluster                 bring the embedded cluster up (reused when running), export its env, kubectl
#   demo_namespace NS            install the CRDs, recreate namespace NS and wait for its service account
#   demo_operator NS PORT OUT    start the operator for NS (metrics on PORT, log OUT/operator.log); stopped on exit
#   demo_summary OUT KEY...      print KEY: value lines from OUT/summary.json

py=.venv/bin/python

log() { printf '[%s %s] %s\n' "${demo_name:-demo}" "$(date +%H:%M:%S)" "$*"; }

kubectl() { "$SURGE_BIN_DIR/kubectl" --kubeconfig "$SURGE_KUBECONFIG" "$@"; }

demo_cluster() {
  bash testbed/cluster.sh up >/dev/null
  eval "$(bash testbed/cluster.sh env)"
  export SURGE_KUBECONFIG SURGE_PROMETHEUS_URL SURGE_PROMETHEUS_TARGETS
}

demo_namespace() {
  local ns=$1
  log "installing the CRD and a fresh '$ns' namespace"
  kubectl apply --server-side --force-conflicts -f crds/autoscaling.surge.dev_autoscalepolicies.yaml \
    -f crds/autoscaling.surge.dev_autoscalepolicycheckpoints.yaml >/dev/null
  kubectl wait --for=condition=Established crd/autoscalepolicies.autoscaling.surge.dev --timeout=60s >/dev/null
  kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null
  kubectl create namespace "$ns" >/dev/null
  until kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1; do sleep 0.5; done
}

demo_operator_pid=""
demo_stop_operator() {
  [[ -n $demo_operator_pid ]] || return 0
  kill "$demo_operator_pid" 2>/dev/null || true
  wait "$demo_operator_pid" 2>/dev/null || true
}

demo_operator() {
  local ns=$1 port=$2 out=$3
  mkdir -p "$out"
  log "starting the operator (log: $out/operator.log)"
  .venv/bin/surge run --kubeconfig "$SURGE_KUBECONFIG" --prometheus-url "$SURGE_PROMETHEUS_URL" -n "$ns" \
    --metrics-port "$port" >"$out/operator.log" 2>&1 &
  demo_operator_pid=$!
  trap demo_stop_operator EXIT
}

demo_summary() {
  local out=$1
  shift
  log "summary: $out/summary.json"
  $py - "$out/summary.json" "$@" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    if k in s:
        print(f"  {k:26} {s[k]}")
PY
}
