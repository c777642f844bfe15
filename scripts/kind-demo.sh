#!/usr/bin/env bash
# The launch-day spike on kind, with real pods and real traffic (Docker users; `make kind-demo`).
#
#   scripts/kind-demo.sh demo     check tools -> kind cluster -> build + load images -> deploy -> load Job ->
#                                 summary; the cluster is left running (`make kind-down` removes it)
#   scripts/kind-demo.sh up|build|load|deploy|run|down     one step (make kind-up, docker-build, kind-load, ...)
#
# Env: KIND_CLUSTER_NAME (surge)  KIND_NODE_IMAGE (kind's default; Kubernetes >= 1.33 is required)
#      LOAD_SCENARIO (launch-spike)  LOAD_TIME_SCALE (0.2)  LOAD_PLAYERS_SCALE (0.2)  KIND_OUT (out/kind)
#      DOCKER, KIND, KUBECTL (the commands to use: docker, kind, kubectl)
# Nothing here touches the embedded test cluster; kubectl always runs with --context kind-$KIND_CLUSTER_NAME.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

cluster=${KIND_CLUSTER_NAME:-surge}
node_image=${KIND_NODE_IMAGE:-}
docker_bin=${DOCKER:-docker}
kind_bin=${KIND:-kind}
kubectl_bin=${KUBECTL:-kubectl}
out_dir=${KIND_OUT:-out/kind}
scenario=${LOAD_SCENARIO:-launch-spike}
time_scale=${LOAD_TIME_SCALE:-0.2}
players_scale=${LOAD_PLAYERS_SCALE:-0.2}
context=kind-$cluster
min_minor=33 # pods/resize (in-place vertical scaling) exists from Kubernetes 1.33

# image tag -> Dockerfile (build context: the repository root, filtered by .dockerignore)
images=(surge-operator:dev surge-game:dev surge-loadgen:dev)
dockerfiles=(Dockerfile gameserver/Dockerfile loadgen/Dockerfile)

log() { printf '[kind-demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
kc() { "$kubectl_bin" --context "$context" "$@"; }

# wait_for DESCRIPTION SECONDS COMMAND... -> polls COMMAND until it succeeds or the deadline passes.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  log "waiting for $what"
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 2
  done
}

# --- tools ---------------------------------------------------------------------------------------------------
need_docker() {
  command -v "$docker_bin" >/dev/null 2>&1 ||
    die "'$docker_bin' not found. The kind demo needs Docker: https://docs.docker.com/get-docker/
       (no Docker? 'make demo' runs the same scenario on the embedded cluster without it)"
  "$docker_bin" info >/dev/null 2>&1 ||
    die "the Docker engine is not reachable ('$docker_bin info' failed): start Docker, or check DOCKER_HOST
       and that your user may use the Docker socket"
}
need_kind() {
  command -v "$kind_bin" >/dev/null 2>&1 ||
    die "'$kind_bin' not found. Install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation
       (for example: go install sigs.k8s.io/kind@latest)"
}
need_kubectl() {
  command -v "$kubectl_bin" >/dev/null 2>&1 ||
    die "'$kubectl_bin' not found. Install kubectl (1.${min_minor} or newer): https://kubernetes.io/docs/tasks/tools/"
}
cluster_exists() { "$kind_bin" get clusters 2>/dev/null | grep -qx "$cluster"; }
need_cluster() {
  need_kind
  cluster_exists || die "no kind cluster '$cluster': run 'make kind-up' (or 'make kind-demo') first"
  kc get --raw /readyz >/dev/null 2>&1 || die "the API server of '$context' does not answer (is the kind node running?)"
}

check_server_version() {
  local version major minor
  version=$(kc get --raw /version | tr -d ' \n')
  major=$(sed -n 's/.*"major":"\([0-9]*\).*/\1/p' <<<"$version")
  minor=$(sed -n 's/.*"minor":"\([0-9]*\).*/\1/p' <<<"$version")
  [[ -n $major && -n $minor ]] || die "could not read the server version from: $version"
  if ((major == 1 && minor < min_minor)); then
    die "the kind cluster runs Kubernetes $major.$minor; Surge resizes pods in place (pods/resize), which needs
       1.$min_minor or newer. Recreate it with a newer node image: make kind-down && \\
       KIND_NODE_IMAGE=kindest/node:v1.35.0 make kind-demo   (or use a newer kind release)"
  fi
  log "Kubernetes $major.$minor on '$context'"
}

# --- steps ---------------------------------------------------------------------------------------------------
cmd_up() {
  need_docker
  need_kind
  need_kubectl
  if cluster_exists; then
    log "kind cluster '$cluster' exists: reusing it"
  else
    local args=(create cluster --name "$cluster" --config manifests/kind/kind-cluster.yaml --wait 180s)
    [[ -z $node_image ]] || args+=(--image "$node_image")
    log "creating kind cluster '$cluster'${node_image:+ ($node_image)}"
    "$kind_bin" "${args[@]}"
  fi
  check_server_version
}

cmd_build() {
  need_docker
  local i
  for i in "${!images[@]}"; do
    log "building ${images[i]} from ${dockerfiles[i]}"
    "$docker_bin" build -f "${dockerfiles[i]}" -t "${images[i]}" . ||
      die "building ${images[i]} failed (see the output above)"
  done
}

cmd_load() {
  need_docker
  need_cluster
  local image
  for image in "${images[@]}"; do
    "$docker_bin" image inspect "$image" >/dev/null 2>&1 || die "image $image not found: run 'make docker-build'"
  done
  log "loading ${images[*]} into kind cluster '$cluster'"
  "$kind_bin" load docker-image --name "$cluster" "${images[@]}"
}

prometheus_sees_game_servers() {
  # Through the API server's service proxy: no port-forward needed.
  kc get --raw "/api/v1/namespaces/monitoring/services/prometheus:web/proxy/api/v1/query?query=count%28surge_game_capacity_players%29" |
    grep -q '"result":\[{'
}

cmd_deploy() {
  need_kubectl
  need_cluster
  check_server_version
  local restart=0
  # Re-deploying onto a running demo: restart the pods so they pick up freshly loaded :dev images.
  if kc -n games get deployment arena >/dev/null 2>&1; then restart=1; fi

  log "installing the AutoScalePolicy CRD"
  kc apply --server-side --force-conflicts -k manifests/crd >/dev/null
  kc wait --for=condition=Established crd/autoscalepolicies.autoscaling.surge.dev --timeout=60s >/dev/null
  log "deploying manifests/kind (operator, metrics-server, Prometheus, game servers, policy)"
  kc apply --server-side --force-conflicts -k manifests/kind
  if ((restart)); then
    kc -n surge-system rollout restart deployment/surge-controller-manager
    kc -n games rollout restart deployment/arena
  fi

  local ns_deploy
  for ns_deploy in kube-system/metrics-server monitoring/prometheus surge-system/surge-controller-manager games/arena; do
    log "waiting for deployment $ns_deploy"
    kc -n "${ns_deploy%/*}" rollout status "deployment/${ns_deploy#*/}" --timeout=300s ||
      die "deployment $ns_deploy is not ready; look at: kubectl --context $context -n ${ns_deploy%/*} describe pods"
  done
  kc wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=180s >/dev/null ||
    die "metrics.k8s.io is not available; look at: kubectl --context $context -n kube-system logs deploy/metrics-server"
  wait_for "Prometheus to scrape the game servers" 180 prometheus_sees_game_servers
  if ! kc -n games wait --for=condition=Ready autoscalepolicy/arena --timeout=120s >/dev/null 2>&1; then
    log "WARNING: policy games/arena is not Ready yet; see: kubectl --context $context -n games describe asp arena"
  fi
  kc -n games get autoscalepolicy arena
}

# set_env NAME VALUE: in a rendered manifest, the value of the env entry NAME (the line after '- name: NAME').
set_env() { sed -e "/- name: $1\$/{" -e n -e "s|value: .*|value: \"$2\"|" -e '}'; }

job_state() { kc -n games get job surge-loadgen -o jsonpath='{.status.succeeded}/{.status.failed}' 2>/dev/null; }

cmd_run() {
  need_kubectl
  need_cluster
  [[ $scenario =~ ^[A-Za-z0-9._-]+$ ]] || die "LOAD_SCENARIO must be a scenario name, got '$scenario'"
  [[ $time_scale =~ ^[0-9]+([.][0-9]+)?$ ]] || die "LOAD_TIME_SCALE must be a number, got '$time_scale'"
  [[ $players_scale =~ ^[0-9]+([.][0-9]+)?$ ]] || die "LOAD_PLAYERS_SCALE must be a number, got '$players_scale'"

  local manifest
  manifest=$("$kubectl_bin" kustomize manifests/kind/load |
    set_env LOAD_SCENARIO "$scenario" | set_env LOAD_TIME_SCALE "$time_scale" | set_env LOAD_PLAYERS_SCALE "$players_scale")
  grep -q "value: \"$scenario\"" <<<"$manifest" || die "could not set LOAD_SCENARIO in manifests/kind/load"

  # Foreground: the old run's pod is gone before the new one starts (both carry job-name=surge-loadgen).
  kc -n games delete job surge-loadgen --ignore-not-found --cascade=foreground --wait=true >/dev/null
  log "starting the load Job: $scenario, time scale $time_scale, players x$players_scale"
  kc apply --server-side --force-conflicts -f - <<<"$manifest"

  local deadline=$((SECONDS + 180)) phase=""
  until [[ $phase == Running || $phase == Succeeded || $phase == Failed ]]; do
    if ((SECONDS >= deadline)); then
      kc -n games describe pods -l job-name=surge-loadgen | tail -n 20 >&2 || true
      die "the load generator pod did not start (image not loaded? try 'make kind-load')"
    fi
    sleep 2
    phase=$(kc -n games get pods -l job-name=surge-loadgen -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
  done

  # Progress lines as they come (the base64 block of the output files is not for humans).
  kc -n games logs -f job/surge-loadgen | sed '/outputs (tar.gz, base64) begin/,/outputs end/d' ||
    log "the log stream ended early; waiting for the Job to finish"

  local state
  deadline=$((SECONDS + 3700))
  until state=$(job_state) && [[ $state == 1/* || $state == */[1-9]* ]]; do
    ((SECONDS < deadline)) || die "the load Job did not finish"
    sleep 2
  done

  mkdir -p "$out_dir"
  kc -n games logs job/surge-loadgen >"$out_dir/loadgen.log"
  rm -f "$out_dir/summary.json" "$out_dir/timeline.png" "$out_dir/timeline.csv"
  sed -n '/outputs (tar.gz, base64) begin/,/outputs end/p' "$out_dir/loadgen.log" | sed '1d;$d' |
    base64 --decode | tar -xzf - -C "$out_dir" 2>/dev/null ||
    log "WARNING: could not unpack the output files from the log ($out_dir/loadgen.log)"

  echo
  if [[ -s $out_dir/summary.json ]]; then
    log "summary ($out_dir/summary.json):"
    cat "$out_dir/summary.json"
  else
    log "summary (from the log):"
    sed -n '/^{$/,/^}$/p' "$out_dir/loadgen.log"
  fi
  [[ -s $out_dir/timeline.png ]] && log "timeline: $out_dir/timeline.png"
  log "log: $out_dir/loadgen.log"
  [[ $state == 1/* ]] || die "the load Job failed; see $out_dir/loadgen.log"
}

cmd_down() {
  need_kind
  if cluster_exists; then
    "$kind_bin" delete cluster --name "$cluster"
  else
    log "no kind cluster '$cluster'"
  fi
}

cmd_demo() {
  local started=$SECONDS
  need_docker
  need_kind
  need_kubectl
  cmd_up
  cmd_build
  cmd_load
  cmd_deploy
  cmd_run
  log "done in $(((SECONDS - started) / 60)) min. The cluster keeps running; look around with:"
  log "  kubectl --context $context -n games get asp,deploy,pods    (describe asp arena: conditions, events)"
  log "  make kind-down    # delete the cluster"
}

case ${1:-demo} in
up) cmd_up ;;
build) cmd_build ;;
load) cmd_load ;;
deploy) cmd_deploy ;;
run) cmd_run ;;
down) cmd_down ;;
demo) cmd_demo ;;
*) die "usage: $0 [demo|up|build|load|deploy|run|down]" ;;
esac
