# Surge: every target does its own set-up, so a fresh clone needs nothing typed first.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# The test bed's own kubectl (same version as the server); $$KUBECONFIG wins when set.
KUBECTL = eval "$$(bash testbed/cluster.sh env)"; "$$SURGE_BIN_DIR/kubectl" --kubeconfig "$${KUBECONFIG:-$$SURGE_KUBECONFIG}"

##@ General
.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
	  /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Demo
.PHONY: demo
demo: setup testbed ## The launch-day spike on the embedded cluster with Surge scaling the fleet; prints summary + PNG.
	bash scripts/demo.sh

.PHONY: demo-vertical
demo-vertical: setup testbed ## The spike with Surge sizing the pods in place and counting them (own namespace); PNG.
	bash scripts/demo-vertical.sh

##@ Set-up
.PHONY: setup system-deps
setup: $(STAMP) system-deps ## Create the virtualenv, install Python deps and system packages.

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

system-deps: ## Install Debian packages the test bed needs (prometheus) when missing.
	@command -v prometheus >/dev/null || bash testbed/install-system-deps.sh

##@ Development
PY_SOURCES := operator gameserver loadgen bench testbed/py tests
.PHONY: fmt lint typecheck
fmt: $(STAMP) ## Format the code.
	$(VENV)/bin/ruff format $(PY_SOURCES)
	$(VENV)/bin/ruff check --fix $(PY_SOURCES)

lint: $(STAMP) ## ruff (incl. ASYNC) + import-linter layer contracts.
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)
	$(VENV)/bin/lint-imports

.PHONY: lock
lock: $(STAMP) ## Re-lock the images' Python dependencies (requirements/*.lock, hashes) with uv.
	$(VENV)/bin/pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -o requirements/operator.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra plots --universal --python-version 3.11 --generate-hashes -o requirements/loadgen.lock

typecheck: $(STAMP) ## mypy --strict.
	$(VENV)/bin/mypy

.PHONY: install uninstall run
install: testbed ## Install the CRDs (policies, checkpoints) into the cluster of KUBECONFIG (default: the embedded one).
	$(KUBECTL) apply --server-side --force-conflicts -f crds/autoscaling.surge.dev_autoscalepolicies.yaml -f crds/autoscaling.surge.dev_autoscalepolicycheckpoints.yaml

uninstall: testbed ## Remove the CRDs (and with them every policy and checkpoint; nothing waits on the operator).
	$(KUBECTL) delete --ignore-not-found --timeout=60s -f crds/autoscaling.surge.dev_autoscalepolicies.yaml -f crds/autoscaling.surge.dev_autoscalepolicycheckpoints.yaml

# deploy/undeploy: the whole install in one kustomization (DEPLOY_KUSTOMIZE: manifests/recreate for the opt-in
# template patch; manifests/namespaced after creating its namespaces). Plain `kubectl apply -k` does the same.
DEPLOY_KUSTOMIZE ?= manifests/default
.PHONY: deploy undeploy
deploy: testbed ## Apply manifests/default (both CRDs, RBAC, the operator in surge-system) to the cluster of KUBECONFIG.
	$(KUBECTL) apply --server-side --force-conflicts -k $(DEPLOY_KUSTOMIZE)

undeploy: testbed ## Delete what `make deploy` applied, CRDs included (every policy with them; nothing waits on the operator).
	$(KUBECTL) delete --ignore-not-found --timeout=120s -k $(DEPLOY_KUSTOMIZE)

run: $(STAMP) install ## Run the operator locally against the embedded cluster (all namespaces).
	eval "$$(bash testbed/cluster.sh env)"; \
	$(VENV)/bin/surge run --kubeconfig "$${KUBECONFIG:-$$SURGE_KUBECONFIG}" --prometheus-url "$$SURGE_PROMETHEUS_URL" --metrics-port 18080

##@ Tests
.PHONY: test test-unit test-integration test-faults
test-unit: $(STAMP) ## Fast unit tests (no cluster).
	$(VENV)/bin/pytest tests/unit -q $(PYTEST_ARGS)

test: setup testbed ## All tests: unit, integration + e2e on the embedded cluster, then the fault suite.
	$(VENV)/bin/pytest tests -q --ignore=tests/faults $(PYTEST_ARGS)
	$(VENV)/bin/pytest tests/faults -q $(PYTEST_ARGS)

test-faults: setup testbed ## Fault suite: components killed and restarted on a cluster of its own ("faults").
	$(VENV)/bin/pytest tests/faults -q $(PYTEST_ARGS)

test-integration: setup testbed ## Integration tests only.
	$(VENV)/bin/pytest tests/integration -q $(PYTEST_ARGS)

##@ Embedded cluster (real control plane from pinned Go modules, KWOK nodes)
.PHONY: testbed cluster-up cluster-down cluster-status
testbed: ## Build (or reuse from cache) kube-apiserver & co, etcd, kwok, metrics-server.
	bash testbed/build.sh

cluster-up: system-deps testbed ## Start the embedded cluster and Prometheus on 127.0.0.1; prints the kubeconfig.
	bash testbed/cluster.sh up

cluster-down: ## Stop the embedded cluster and Prometheus.
	bash testbed/cluster.sh down

cluster-status: ## Versions and health of every component.
	bash testbed/cluster.sh status

# The Helm chart (issue 12): the pinned helm (testbed/helm) lints and renders charts/surge in both RBAC
# modes; no cluster needed. tests/integration/test_helm_chart.py does the cluster part.
.PHONY: helm-lint
helm-lint: ## Build (or reuse) the pinned helm; lint --strict + render charts/surge (cluster and namespaced).
	bash testbed/build.sh helm
	eval "$$(bash testbed/cluster.sh env)"; helm="$$SURGE_BIN_DIR/helm"; \
	"$$helm" lint --strict charts/surge; \
	"$$helm" lint --strict charts/surge --set rbac.mode=namespaced --set 'rbac.namespaces={team-a,team-b}' --set rbac.recreate=true; \
	"$$helm" template surge charts/surge -n surge-system >/dev/null

##@ Game and load
# Added by the game/load work (issue 4): the game server and the load generator on their own. `make demo`
# wires them to the operator. Knobs: LOAD_SCENARIO, LOAD_TIME_SCALE, LOAD_OUT, LOAD_NS, LOAD_DEPLOY.
LOAD_SCENARIO ?= launch-spike
LOAD_TIME_SCALE ?= 0.2
LOAD_OUT ?= out/loadgen
LOAD_NS ?= games
LOAD_DEPLOY ?= arena
.PHONY: game-server loadgen-scenarios loadgen-local loadgen-sim lint-game
game-server: $(STAMP) ## Run one game server on 127.0.0.1:7000 (/metrics on :9100); GAME_ARGS="--cpu-request 1".
	$(PY) -m surge_game $(GAME_ARGS)

loadgen-scenarios: $(STAMP) ## List the built-in load scenarios.
	$(PY) -m surge_loadgen scenarios

loadgen-local: $(STAMP) ## Real plane: 2 local game servers + bots playing LOAD_SCENARIO (players x0.05).
	@trap 'kill $$p1 $$p2 2>/dev/null || true' EXIT; \
	$(PY) -m surge_game --port 7101 --metrics-port 9101 --cpu-request 250m 2>/dev/null & p1=$$!; \
	$(PY) -m surge_game --port 7102 --metrics-port 9102 --cpu-request 250m 2>/dev/null & p2=$$!; \
	for i in $$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/7102) 2>/dev/null && break; sleep 0.1; done; \
	$(PY) -m surge_loadgen run --plane real --servers 127.0.0.1:7101,127.0.0.1:7102 \
	  --scenario $(LOAD_SCENARIO) --time-scale $(LOAD_TIME_SCALE) --players-scale 0.05 --out $(LOAD_OUT)-real

loadgen-sim: $(STAMP) ## Sim plane on the embedded cluster: LOAD_SCENARIO against Deployment LOAD_NS/LOAD_DEPLOY.
	eval "$$(bash testbed/cluster.sh env)"; export SURGE_KUBECONFIG SURGE_PROMETHEUS_TARGETS; \
	$(PY) -m surge_loadgen run --plane sim --namespace $(LOAD_NS) --deployment $(LOAD_DEPLOY) \
	  --scenario $(LOAD_SCENARIO) --time-scale $(LOAD_TIME_SCALE) --out $(LOAD_OUT)-sim

lint-game: $(STAMP) ## ruff + mypy for the game server and the load generator.
	$(VENV)/bin/ruff check gameserver loadgen
	$(VENV)/bin/ruff format --check gameserver loadgen
	$(VENV)/bin/mypy -p surge_game -p surge_loadgen

##@ Benchmarks
# bench-scale (issue 5, part 2): 10/100/1000 policies on one operator process, on its OWN cluster
# (surge-bench, Prometheus on 19091) so the shared test cluster is left alone; the cluster is torn down at
# the end, also on failure. Results: bench/scale/results/*.json and bench/RESULTS.md ("Scale" section).
# BENCH_SCALE_ARGS e.g. "--sizes 10,100 --window 120 --variants cpu,prometheus --profile 60".
BENCH_SCALE_ENV := SURGE_CLUSTER_NAME=surge-bench SURGE_PROMETHEUS_PORT=19091 SURGE_NODES=4
BENCH_SCALE_ARGS ?=
.PHONY: bench-scale
bench-scale: setup testbed ## Scale benchmark: 10/100/1000 policies at 15 s on one operator (own cluster).
	@trap '$(BENCH_SCALE_ENV) bash testbed/cluster.sh down' EXIT; \
	$(BENCH_SCALE_ENV) bash testbed/cluster.sh up; \
	$(BENCH_SCALE_ENV) $(PY) -m bench.scale run $(BENCH_SCALE_ARGS)

# bench-spike (issue 5, part 1): the real HPA (default and tuned) and Surge (CPU, game signal, game signal +
# predictive) side by side on the same trace, all five fleets replayed concurrently on its OWN cluster
# (surge-spike, Prometheus on 19093), with one operator process for the Surge contenders; the cluster is torn
# down at the end, also on failure. Default: launch-spike in real time (time scale 1.0, ~18 min per round),
# 3 rounds. Outputs: out/bench-spike/; results: bench/spike/results/*.json + *.png and bench/RESULTS.md
# ("Spike" section). BENCH_SPIKE_ARGS e.g. "--time-scale 0.1 --runs 1" (smoke) or "--trace my.csv".
BENCH_SPIKE_ENV := SURGE_CLUSTER_NAME=surge-spike SURGE_PROMETHEUS_PORT=19093 SURGE_NODES=4
BENCH_SPIKE_ARGS ?=
.PHONY: bench-spike
bench-spike: setup testbed ## Spike benchmark: real HPA vs Surge on launch-spike, concurrently (own cluster).
	@trap '$(BENCH_SPIKE_ENV) bash testbed/cluster.sh down' EXIT; \
	$(BENCH_SPIKE_ENV) bash testbed/cluster.sh up; \
	$(BENCH_SPIKE_ENV) $(PY) -m bench.spike run --out out/bench-spike $(BENCH_SPIKE_ARGS)

# bench-simulate (issue 12, part 2): `surge simulate` offline, no cluster: the wall time of an hour-long trace,
# then the calibration table against bench/spike's real-cluster medians (bench/RESULTS.md, docs/simulate.md).
.PHONY: bench-simulate
bench-simulate: $(STAMP) ## surge simulate: speed of an hour-long trace + calibration vs the real spike bench.
	$(PY) -m bench.simulate speed
	$(PY) -m bench.simulate calibrate

##@ kind
# kind path for Docker users (issue 4, part 5): the same launch spike with real pods and real traffic. Needs
# docker, kind and kubectl (>= 1.33); nothing here uses the embedded cluster. Everything is in
# scripts/kind-demo.sh (env knobs: KIND_CLUSTER_NAME, KIND_NODE_IMAGE, LOAD_SCENARIO, LOAD_TIME_SCALE,
# LOAD_PLAYERS_SCALE, KIND_OUT); manifests in manifests/kind, docs in docs/kind.md.
.PHONY: docker-build kind-up kind-load kind-deploy kind-demo kind-down
docker-build: ## Build the images surge-operator:dev, surge-game:dev, surge-loadgen:dev with Docker.
	bash scripts/kind-demo.sh build

kind-up: ## Create the kind cluster (1 control plane + 2 workers; reused when it exists).
	bash scripts/kind-demo.sh up

kind-load: ## Load the three images into the kind cluster.
	bash scripts/kind-demo.sh load

kind-deploy: ## Apply the CRD and manifests/kind to the kind cluster and wait until everything is ready.
	bash scripts/kind-demo.sh deploy

kind-demo: ## kind: create cluster, build + load images, deploy, run the spike as a Job, print the summary.
	bash scripts/kind-demo.sh demo

kind-down: ## Delete the kind cluster.
	bash scripts/kind-demo.sh down
