# Surge: every target does its own set-up, so a fresh clone needs nothing typed first.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

##@ General
.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
	  /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

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
.PHONY: fmt lint typecheck
fmt: $(STAMP) ## Format the code.
	$(VENV)/bin/ruff format operator tests
	$(VENV)/bin/ruff check --fix operator tests

lint: $(STAMP) ## ruff (incl. ASYNC) + import-linter layer contracts.
	$(VENV)/bin/ruff check operator tests
	$(VENV)/bin/ruff format --check operator tests
	$(VENV)/bin/lint-imports

typecheck: $(STAMP) ## mypy --strict.
	$(VENV)/bin/mypy

##@ Tests
.PHONY: test test-unit test-integration
test-unit: $(STAMP) ## Fast unit tests (no cluster).
	$(VENV)/bin/pytest tests/unit -q $(PYTEST_ARGS)

test: setup testbed ## All tests: unit, then integration + e2e on the embedded cluster (started if needed).
	$(VENV)/bin/pytest tests -q $(PYTEST_ARGS)

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
