#!/usr/bin/env bash
# Builds the embedded test bed from pinned Go modules and caches the binaries by version.
#
# Each component lives in its own tool module under testbed/<component>/ because they pin different
# k8s.io library versions. The cache key is the component's version plus a hash of its go.mod/go.sum,
# so a second run with the same pins only checks for files and returns in well under a second.
#
# Usage: testbed/build.sh [component...]     (default: all)
# Env:   SURGE_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-~/.cache}/surge)
#        SURGE_BIN_DIR    where to link the current binaries (default: $SURGE_CACHE_DIR/bin/current)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=testbed/versions.env
source "$here/versions.env"

cache_root=${SURGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/surge}
current=${SURGE_BIN_DIR:-$cache_root/bin/current}
mkdir -p "$current"

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# cache_dir COMPONENT VERSION -> prints the versioned cache folder for that module's pins.
cache_dir() {
  local hash
  hash=$(cat "$here/$1/go.mod" "$here/$1/go.sum" | sha256sum | cut -c1-12)
  printf '%s/bin/%s-%s-%s' "$cache_root" "$1" "$2" "$hash"
}

# go_build COMPONENT VERSION LDFLAGS TAGS OUTNAME PACKAGE... -> builds into the cache unless complete.
# OUTNAME names the binary when one package is built (empty: Go's default names).
go_build() {
  local component=$1 version=$2 ldflags=$3 tags=$4 outname=$5
  shift 5
  local out
  out=$(cache_dir "$component" "$version")
  # Two builds of one component at once (two shells, a test that brings the cluster up) would share
  # $out.tmp and delete each other's output: the second waits for the first, then finds the cache.
  local lock_fd
  exec {lock_fd}>"$out.lock"
  flock "$lock_fd"
  if [[ -f "$out/.complete" ]]; then
    log "$component $version: cached in $out"
  else
    log "$component $version: building ${*##*/} (cold builds of kubernetes take 15-35 min on 2 cores)"
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    local start=$SECONDS
    # -v prints each package as it is compiled: that is the progress display for long builds.
    (cd "$here/$component" && go build -v -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$out.tmp/$outname" "$@") 2>&1 |
      awk -v c="$component" '{n++; if (n % 50 == 0) {printf "[testbed] %s: %d packages compiled (last: %s)\n", c, n, $0; fflush()}}' >&2
    [[ ${PIPESTATUS[0]} -eq 0 ]] || { log "$component: build failed"; exit 1; }
    touch "$out.tmp/.complete"
    rm -rf "$out" && mv "$out.tmp" "$out"
    log "$component $version: built in $((SECONDS - start)) s"
  fi
  local f
  for f in "$out"/*; do ln -sfn "$f" "$current/$(basename "$f")"; done
  exec {lock_fd}>&-
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION major minor ld=""
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$BUILD_DATE"
  done
  go_build kubernetes "$v" "$ld" "selinux,notest" "" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
  go_build etcd "$ETCD_VERSION" "" "" etcd go.etcd.io/etcd/server/v3
}

build_kwok() {
  local ld="-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
  ld+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBERNETES_VERSION#v}"
  go_build kwok "$KWOK_VERSION" "$ld" "" "" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
}

build_metrics_server() {
  local ld="-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
  ld+=" -X k8s.io/client-go/pkg/version.buildDate=$BUILD_DATE"
  go_build metrics-server "$METRICS_SERVER_VERSION" "$ld" "" metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server
  # kwokctl renders metrics-server's own kustomize base (APIService) instead of downloading it.
  local src
  src=$(cd "$here/metrics-server" && go list -m -f '{{.Dir}}' sigs.k8s.io/metrics-server)
  rm -rf "$current/metrics-server-manifests" && cp -r "$src/manifests/base" "$current/metrics-server-manifests"
  chmod -R u+w "$current/metrics-server-manifests"
}

# Enforces the label namespace on every PromQL query in front of Prometheus (the operator's tenancy mode).
build_prom_label_proxy() {
  go_build prom-label-proxy "$PROM_LABEL_PROXY_VERSION" "" "" prom-label-proxy \
    github.com/prometheus-community/prom-label-proxy
}

# Helm renders, lints and installs the operator's chart (charts/surge) in the integration tests.
# Its version variable is "v4.3" in the source: -X makes `helm version` print the pinned patch release.
build_helm() {
  local ld="-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v4/internal/version.metadata= -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
  go_build helm "$HELM_VERSION" "$ld" "" helm helm.sh/helm/v4/cmd/helm
}

components=("$@")
[[ ${#components[@]} -gt 0 ]] || components=(etcd kwok metrics-server prom-label-proxy helm kubernetes)
command -v go >/dev/null || { log "Go is required (go 1.26+): install it first"; exit 1; }
for c in "${components[@]}"; do
  case $c in
    kubernetes) build_kubernetes ;;
    etcd) build_etcd ;;
    kwok) build_kwok ;;
    metrics-server) build_metrics_server ;;
    prom-label-proxy) build_prom_label_proxy ;;
    helm) build_helm ;;
    *) log "unknown component: $c"; exit 2 ;;
  esac
done
log "binaries linked in $current"
