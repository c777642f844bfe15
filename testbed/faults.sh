#!/usr/bin/env bash
# Faults for the fault suite (tests/faults/): stop, kill and restart one component of a NAMED embedded cluster,
# each command returning only once the component is really down / really serving again (polled, with a
# deadline). Never touches the shared cluster "surge" (other people's tests run there).
#
# Usage: testbed/faults.sh stop|kill|start|restart|status COMPONENT
#   COMPONENT: kube-apiserver | etcd | metrics-server | prometheus | kube-controller-manager | kube-scheduler
#              | kwok-controller
#   stop     SIGTERM, then SIGKILL after the deadline; returns when the component is down
#   kill     SIGKILL at once (what a crash or an OOM kill does); returns when the component is down
#   start    starts it again with the same command line; returns when it serves
#   restart  kill, then start
#   status   prints "up" or "down" (exit 0 / 1)
# Env: SURGE_CLUSTER_NAME (required, not "surge"), SURGE_PROMETHEUS_PORT, SURGE_CACHE_DIR, SURGE_BIN_DIR,
#      FAULTS_TIMEOUT (deadline in seconds for down/up, default 90)
#
# kwokctl's binary runtime keeps each component's pid in <cluster>/pids/<name>.pid and starts only the
# components that are not running on `kwokctl start cluster`, with the command lines it recorded at creation:
# that is how a killed component comes back exactly as it was. Prometheus is ours (testbed/cluster.sh): its
# command line is read from /proc before it is stopped and reused to start it.
set -euo pipefail

name=${SURGE_CLUSTER_NAME:-}
if [[ -z "$name" || "$name" == surge ]]; then
  echo "faults.sh: set SURGE_CLUSTER_NAME to a cluster of your own (never the shared 'surge')" >&2
  exit 2
fi
cache_root=${SURGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/surge}
bin=${SURGE_BIN_DIR:-$cache_root/bin/current}
prom_port=${SURGE_PROMETHEUS_PORT:-19090}
timeout=${FAULTS_TIMEOUT:-90}
cluster_dir=$cache_root/kwok/clusters/$name
state=$cache_root/state/$name
kubeconfig=$state/kubeconfig
prom_dir=$state/prometheus

export KWOK_WORKDIR=$cache_root/kwok
export KWOK_RUNTIME=binary
export PATH=$bin:$PATH
export KUBECONFIG=$cache_root/state/kwokctl-contexts.kubeconfig # kwokctl edits this file, never the user's

log() { printf '[faults %s %s] %s\n' "$name" "$(date +%H:%M:%S.%N | cut -c1-12)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
kc() { "$bin/kubectl" --kubeconfig "$kubeconfig" --request-timeout=3s "$@"; }

# wait_until WHAT COMMAND... -> polls COMMAND every 0.2 s until it succeeds or the deadline passes.
wait_until() {
  local what=$1 deadline=$((SECONDS + timeout))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
    sleep 0.2
  done
}
negate() { ! "$@"; }

pid_file() {
  case $1 in
    prometheus) echo "$prom_dir/pid" ;;
    *) echo "$cluster_dir/pids/$1.pid" ;;
  esac
}

# A killed process nobody reaps stays a zombie: kill -0 still succeeds, so look at its state too.
pid_alive() {
  local pid=$1 st
  [[ -r /proc/$pid/stat ]] || return 1
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ "$st" != Z && "$st" != X ]]
}

process_alive() {
  local f
  f=$(pid_file "$1")
  [[ -f "$f" ]] && pid_alive "$(cat "$f")"
}

# serving COMPONENT -> succeeds when the component does its job, seen from outside.
serving() {
  case $1 in
    kube-apiserver) kc get --raw /readyz ;;
    etcd) kc get --raw /readyz/etcd ;;
    metrics-server)
      [[ $(kc get apiservice v1beta1.metrics.k8s.io \
        -o jsonpath='{.status.conditions[?(@.type=="Available")].status}') == True ]] &&
        kc get --raw /apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods ;;
    prometheus) curl -fsS --max-time 2 "http://127.0.0.1:$prom_port/-/ready" ;;
    kube-controller-manager | kube-scheduler | kwok-controller) process_alive "$1" ;;
    *) die "unknown component $1" ;;
  esac
}

# down_seen COMPONENT -> succeeds once the loss is visible from outside (not just the process gone).
down_seen() {
  case $1 in
    kube-apiserver) ! kc get --raw /livez ;;
    etcd) ! kc get --raw /readyz/etcd ;;
    metrics-server) ! kc get --raw /apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods ;;
    prometheus) ! curl -fsS --max-time 2 "http://127.0.0.1:$prom_port/-/ready" ;;
    *) ! process_alive "$1" ;;
  esac
}

down() {
  local c=$1 signal=$2 f pid start=$SECONDS
  f=$(pid_file "$c")
  [[ -f "$f" ]] || die "$c has no pid file ($f): is cluster $name up?"
  pid=$(cat "$f")
  if [[ $c == prometheus && -r /proc/$pid/cmdline ]]; then
    cp "/proc/$pid/cmdline" "$prom_dir/cmdline" # NUL-separated: replayed exactly by start
  fi
  log "$c: SIG$signal to pid $pid"
  kill -s "$signal" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "$c: still alive after ${timeout}s: SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
    fi
    sleep 0.1
  done
  # kwokctl skips a component whose pid answers kill -0 (a zombie does): forget the pid so start restarts it.
  rm -f "$f"
  wait_until "$c to be seen down" down_seen "$c"
  log "$c: down after $((SECONDS - start)) s"
}

start_prometheus() {
  local -a cmd
  if [[ -s "$prom_dir/cmdline" ]]; then
    mapfile -d '' -t cmd <"$prom_dir/cmdline"
  else # the command line of testbed/cluster.sh
    cmd=(prometheus --config.file="$prom_dir/prometheus.yml" --storage.tsdb.path="$prom_dir/data"
      --web.listen-address="127.0.0.1:$prom_port" --storage.tsdb.retention.time=1d --web.enable-lifecycle)
  fi
  setsid "${cmd[@]}" >>"$prom_dir/prometheus.log" 2>&1 </dev/null &
  echo $! >"$prom_dir/pid"
}

up() {
  local c=$1 start=$SECONDS
  if process_alive "$c"; then
    log "$c: already running"
  elif [[ $c == prometheus ]]; then
    start_prometheus
  else
    # Starts only the components that are not running, with the command lines kwokctl recorded.
    "$bin/kwokctl" start cluster --name "$name" >&2 || die "kwokctl start cluster failed"
  fi
  wait_until "$c to serve again" serving "$c"
  log "$c: serving after $((SECONDS - start)) s"
}

[[ $# -eq 2 ]] || { sed -n '5,15p' "$0" >&2; exit 2; }
action=$1 component=$2
case $component in
  kube-apiserver | etcd | metrics-server | prometheus | kube-controller-manager | kube-scheduler | kwok-controller) ;;
  *) die "unknown component '$component'" ;;
esac
[[ -d "$cluster_dir" ]] || die "cluster $name does not exist ($cluster_dir)"

case $action in
  stop) down "$component" TERM ;;
  kill) down "$component" KILL ;;
  start) up "$component" ;;
  restart) down "$component" KILL && up "$component" ;;
  status) if process_alive "$component" && serving "$component" >/dev/null 2>&1; then echo up; else echo down; exit 1; fi ;;
  *) die "unknown action '$action'" ;;
esac
