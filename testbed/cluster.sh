#!/usr/bin/env bash
# The embedded cluster: real kube-apiserver/controller-manager/scheduler/etcd started by kwokctl's binary
# runtime, KWOK nodes, metrics-server and a Prometheus of our own, everything bound to 127.0.0.1.
#
# Usage: testbed/cluster.sh up|down|status|kubeconfig|env
# Env:   SURGE_CACHE_DIR        cache and state root (default: ${XDG_CACHE_HOME:-~/.cache}/surge)
#        SURGE_CLUSTER_NAME     kwokctl cluster name (default: surge)
#        SURGE_NODES            number of KWOK nodes (default: 4; each holds 500 pods, 64 CPU, 256Gi)
#        SURGE_PROMETHEUS_PORT  Prometheus port on 127.0.0.1 (default: 19090)
#        SURGE_PROMETHEUS_TENANT_PORT  prom-label-proxy port on 127.0.0.1 (default: Prometheus port + 1000)
#        SURGE_HPA_SYNC_PERIOD  kube-controller-manager --horizontal-pod-autoscaler-sync-period (default 15s)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"

cache_root=${SURGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/surge}
bin=${SURGE_BIN_DIR:-$cache_root/bin/current}
name=${SURGE_CLUSTER_NAME:-surge}
nodes=${SURGE_NODES:-4}
prom_port=${SURGE_PROMETHEUS_PORT:-19090}
# +1000 rather than +1: side-by-side clusters use neighbouring Prometheus ports (19090, 19091, 19093, 19190).
tenant_port=${SURGE_PROMETHEUS_TENANT_PORT:-$((prom_port + 1000))}
state=$cache_root/state/$name
kubeconfig=$state/kubeconfig
prom_dir=$state/prometheus
tenant_dir=$state/prom-label-proxy

export KWOK_WORKDIR=$cache_root/kwok
export KWOK_RUNTIME=binary # auto-detection would try the docker client, which has no engine here
export PATH=$bin:$PATH     # kwokctl renders the metrics-server kustomization with kubectl
# kwokctl adds its context to $KUBECONFIG (default ~/.kube/config) and switches the current context:
# keep the user's file and current context untouched.
mkdir -p "$cache_root/state"
export KUBECONFIG=$cache_root/state/kwokctl-contexts.kubeconfig

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  local f
  for f in "$KWOK_WORKDIR/clusters/$name"/logs/*.log "$prom_dir/prometheus.log" "$tenant_dir/prom-label-proxy.log"; do
    [[ -s "$f" ]] && { echo "--- last lines of $f" >&2; tail -n 5 "$f" >&2; }
  done
  exit 1
}

kc() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

# quietly DESCRIPTION COMMAND... -> runs COMMAND with its output (kwokctl's JSON log lines) appended to
# $state/kwokctl.log and prints one progress line instead; on failure the log's last lines.
quietly() {
  local what=$1 t=$SECONDS logf=$state/kwokctl.log
  shift
  mkdir -p "$state"
  printf '[cluster %s] %s... ' "$(date +%H:%M:%S)" "$what" >&2
  if "$@" >>"$logf" 2>&1 </dev/null; then
    printf 'ok (%d s)\n' $((SECONDS - t)) >&2
    return 0
  fi
  printf 'FAILED (%d s)\n--- last lines of %s\n' $((SECONDS - t)) "$logf" >&2
  tail -n 20 "$logf" >&2
  return 1
}

# wait_for DESCRIPTION SECONDS COMMAND... -> polls COMMAND until it succeeds or the deadline passes.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 1
  done
}

need_binaries() {
  local missing=() b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl metrics-server prom-label-proxy; do
    [[ -x "$bin/$b" ]] || missing+=("$b")
  done
  if ((${#missing[@]})); then
    log "test-bed binaries missing (${missing[*]}): building them now with testbed/build.sh"
    "$here/build.sh" || die "test-bed build failed; see the output above (Go 1.26 and the module proxy are needed)"
  fi
  command -v prometheus >/dev/null ||
    die "prometheus not found: install Debian's package (apt-get install prometheus) or run 'make setup'"
}

write_kwokctl_config() {
  mkdir -p "$state"
  cat >"$state/kwokctl.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeVersion: ${KUBERNETES_VERSION#v}
  etcdVersion: ${ETCD_VERSION#v}
  kwokVersion: ${KWOK_VERSION#v}
  metricsServerVersion: ${METRICS_SERVER_VERSION#v}
  kubeBinaryPrefix: $bin
  etcdBinary: $bin/etcd
  kwokControllerBinary: $bin/kwok
  metricsServerBinary: $bin/metrics-server
  metricsServerManifests:
  - $bin/metrics-server-manifests
  enableMetricsServer: true
componentsPatches:
# Trap: KWOK node addresses. Our nodes carry no addresses (KWOK reports Hostname=localhost), and
# metrics-server is told to use Hostname only, so it can never dial an invented node IP.
- name: metrics-server
  extraArgs:
  - key: kubelet-preferred-address-types
    value: Hostname
    override: true
  - key: metric-resolution
    value: 10s # metrics-server refuses less than 10s
    override: true
  - key: kubelet-request-timeout
    value: 5s # must stay below the resolution
- name: kube-controller-manager
  extraArgs:
  - key: horizontal-pod-autoscaler-sync-period
    value: ${SURGE_HPA_SYNC_PERIOD:-15s} # not among kwokctl's own flags: appended, not overridden
EOF
  # Our own KWOK stages (resize-capable pods, nodes without IP addresses) replace kwokctl's defaults.
  local f
  for f in "$here"/stages/*.yaml; do
    printf -- '---\n' >>"$state/kwokctl.yaml"
    cat "$f" >>"$state/kwokctl.yaml"
  done
}

# nodes_manifest N -> KWOK nodes without addresses, sized for ~500 small game-server pods each.
nodes_manifest() {
  local i
  for ((i = 0; i < $1; i++)); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    # KWOK serves each node's kubelet resource metrics under its own path on one loopback port.
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/kwok-node-$i/metrics/resource
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "500"}
  capacity: {cpu: "64", memory: 256Gi, pods: "500"}
EOF
  done
}

write_prometheus_config() {
  mkdir -p "$prom_dir/data" "$prom_dir/targets"
  # Later parts of the project drop file_sd JSON files into targets/; Prometheus rereads them by itself.
  cat >"$prom_dir/prometheus.yml" <<EOF
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
- job_name: prometheus
  static_configs: [{targets: ["127.0.0.1:$prom_port"]}]
- job_name: surge-targets
  file_sd_configs:
  - files: ["$prom_dir/targets/*.json", "$prom_dir/targets/*.yaml"]
    refresh_interval: 5s
EOF
}

prometheus_up() {
  if curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1; then
    log "Prometheus already answering on 127.0.0.1:$prom_port"
    return
  fi
  write_prometheus_config
  log "starting Prometheus on 127.0.0.1:$prom_port (data in $prom_dir/data)"
  setsid prometheus --config.file="$prom_dir/prometheus.yml" --storage.tsdb.path="$prom_dir/data" \
    --web.listen-address="127.0.0.1:$prom_port" --storage.tsdb.retention.time=1d \
    --web.enable-lifecycle >"$prom_dir/prometheus.log" 2>&1 </dev/null &
  echo $! >"$prom_dir/pid"
  wait_for "Prometheus /-/ready" 60 curl -fsS "http://127.0.0.1:$prom_port/-/ready"
}

prometheus_down() {
  if [[ -f "$prom_dir/pid" ]]; then
    local pid
    pid=$(cat "$prom_dir/pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$prom_dir/pid"
  fi
}

# prom-label-proxy in front of Prometheus: every query must carry ?namespace=<ns>, and only series with that
# namespace label are visible (a query naming another namespace's value is refused: -error-on-replace).
tenant_proxy_up() {
  if curl -fsS "http://127.0.0.1:$tenant_port/healthz" >/dev/null 2>&1; then
    log "prom-label-proxy already answering on 127.0.0.1:$tenant_port"
    return
  fi
  mkdir -p "$tenant_dir"
  log "starting prom-label-proxy on 127.0.0.1:$tenant_port (label namespace, upstream 127.0.0.1:$prom_port)"
  setsid "$bin/prom-label-proxy" -insecure-listen-address "127.0.0.1:$tenant_port" \
    -upstream "http://127.0.0.1:$prom_port" -label namespace -query-param namespace -error-on-replace \
    >"$tenant_dir/prom-label-proxy.log" 2>&1 </dev/null &
  echo $! >"$tenant_dir/pid"
  wait_for "prom-label-proxy /healthz" 30 curl -fsS "http://127.0.0.1:$tenant_port/healthz"
}

tenant_proxy_down() {
  if [[ -f "$tenant_dir/pid" ]]; then
    local pid
    pid=$(cat "$tenant_dir/pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$tenant_dir/pid"
  fi
}

component_alive() {
  local pidf=$KWOK_WORKDIR/clusters/$name/pids/$1.pid
  [[ -f "$pidf" ]] && kill -0 "$(cat "$pidf")" 2>/dev/null
}

# On a busy machine metrics-server can start before kube-apiserver answers; it then exits for good (kwokctl
# does not restart components). Restart the cluster's processes (etcd data is kept) and wait again.
wait_metrics_api() {
  local attempt deadline
  for attempt in 1 2 3; do
    deadline=$((SECONDS + 180))
    while ((SECONDS < deadline)) && component_alive metrics-server; do
      kc wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=5s >/dev/null 2>&1 && return 0
      sleep 1
    done
    ((attempt < 3)) || break
    log "metrics-server is not serving (attempt $attempt): restarting the cluster's processes"
    quietly "stopping the cluster's processes" "$bin/kwokctl" stop cluster --name "$name" || true
    quietly "starting them again" "$bin/kwokctl" start cluster --name "$name" --wait 5m || true
  done
  die "APIService v1beta1.metrics.k8s.io did not become Available"
}

cluster_exists() { "$bin/kwokctl" get clusters 2>/dev/null | grep -qx "$name"; }

up() {
  need_binaries
  local start=$SECONDS
  if cluster_exists && "$bin/kwokctl" get kubeconfig --name "$name" >"$kubeconfig.tmp" 2>/dev/null &&
    mv "$kubeconfig.tmp" "$kubeconfig" && kc get --raw /readyz >/dev/null 2>&1; then
    log "cluster $name already running"
  else
    cluster_exists && { log "cluster $name exists but does not answer: recreating"; quietly "deleting it" "$bin/kwokctl" delete cluster --name "$name" || true; }
    write_kwokctl_config
    log "creating cluster $name (kube $KUBERNETES_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, metrics-server $METRICS_SERVER_VERSION)"
    quietly "starting the control plane (log: $state/kwokctl.log)" \
      "$bin/kwokctl" create cluster --name "$name" --config "$state/kwokctl.yaml" --wait 5m ||
      die "kwokctl create cluster failed; logs: $KWOK_WORKDIR/clusters/$name/logs/"
    "$bin/kwokctl" get kubeconfig --name "$name" >"$kubeconfig"
  fi
  nodes_manifest "$nodes" | kc apply -f - >/dev/null
  wait_for "$nodes Ready KWOK nodes" 120 bash -c \
    "[[ \$('$bin/kubectl' --kubeconfig '$kubeconfig' get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}' | grep -c True) -ge $nodes ]]"
  wait_metrics_api
  prometheus_up
  tenant_proxy_up
  log "cluster $name ready in $((SECONDS - start)) s"
  echo "kubeconfig: $kubeconfig"
  echo "prometheus: http://127.0.0.1:$prom_port"
  echo "prometheus (namespace-enforcing proxy): http://127.0.0.1:$tenant_port"
}

down() {
  tenant_proxy_down
  prometheus_down
  if [[ -x "$bin/kwokctl" ]] && cluster_exists; then
    "$bin/kwokctl" delete cluster --name "$name" >&2
  fi
  rm -f "$kubeconfig"
  log "cluster $name stopped"
}

status() {
  local ok=0
  [[ -x "$bin/kwokctl" ]] || die "test-bed binaries not built (run: make testbed)"
  if ! cluster_exists; then echo "cluster $name: not created"; return 1; fi
  printf '%-18s %s\n' "kubeconfig" "$kubeconfig"
  local server
  server=$(kc version -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])' 2>/dev/null) || server=""
  printf '%-18s %s\n' "kube-apiserver" "${server:-DOWN} $(kc get --raw /readyz 2>/dev/null || echo not-ready)"
  local c
  for c in etcd kube-controller-manager kube-scheduler kwok-controller metrics-server; do
    local pidf=$KWOK_WORKDIR/clusters/$name/pids/$c.pid
    if [[ -f "$pidf" ]] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
      printf '%-18s running (pid %s)\n' "$c" "$(cat "$pidf")"
    else
      printf '%-18s DOWN\n' "$c"; ok=1
    fi
  done
  printf '%-18s %s\n' "versions" "kube $KUBERNETES_VERSION, etcd $("$bin/etcd" --version 2>/dev/null | awk '/etcd Version/{print $3}'), kwok $("$bin/kwok" --version 2>/dev/null | awk '{print $2}'), metrics-server $METRICS_SERVER_VERSION"
  printf '%-18s %s\n' "nodes Ready" "$(kc get nodes --no-headers 2>/dev/null | grep -cw Ready || true)"
  printf '%-18s %s\n' "metrics API" "$(kc get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null || echo DOWN)"
  if curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1; then
    printf '%-18s ready on 127.0.0.1:%s (%s)\n' "prometheus" "$prom_port" "$(prometheus --version 2>&1 | awk 'NR==1{print $3}')"
  else
    printf '%-18s DOWN\n' "prometheus"; ok=1
  fi
  if curl -fsS "http://127.0.0.1:$tenant_port/healthz" >/dev/null 2>&1; then
    printf '%-18s ready on 127.0.0.1:%s (%s, label namespace, upstream :%s)\n' "prom-label-proxy" "$tenant_port" "$PROM_LABEL_PROXY_VERSION" "$prom_port"
  else
    printf '%-18s DOWN\n' "prom-label-proxy"; ok=1
  fi
  return $ok
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  kubeconfig) echo "$kubeconfig" ;;
  # Shell lines other tools source to find the running test bed.
  env) printf 'SURGE_KUBECONFIG=%s\nSURGE_PROMETHEUS_URL=http://127.0.0.1:%s\nSURGE_PROMETHEUS_TARGETS=%s\nSURGE_BIN_DIR=%s\nSURGE_PROMETHEUS_TENANT_URL=http://127.0.0.1:%s\n' \
    "$kubeconfig" "$prom_port" "$prom_dir/targets" "$bin" "$tenant_port" ;;
  *) echo "usage: $0 up|down|status|kubeconfig|env" >&2; exit 2 ;;
esac
