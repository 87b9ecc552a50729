# rabbitsync — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HARNESS := PYTHONPATH=hack $(PY) -m harness
STATE_DIR ?= $(or $(RABBITSYNC_STATE_DIR),$(CURDIR)/.dev)
export RABBITSYNC_STATE_DIR := $(STATE_DIR)

.DEFAULT_GOAL := help

##@ General
.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,postgres,services]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the Python environment (.venv) with the package and dev tools

# A second environment for the Django library alone: `rabbitsync[django]` on Django 4.2 LTS, without
# the operator's extras (kopf, kubernetes), so its tests prove both the oldest Django and the split.
VENV_DJANGO42 := .venv-django42
$(VENV_DJANGO42)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_DJANGO42)
	$(VENV_DJANGO42)/bin/python -m pip install -q --upgrade pip
	$(VENV_DJANGO42)/bin/python -m pip install -q -e '.[django,postgres,test]' 'Django>=4.2,<5.0'
	touch $@

##@ Development environment (two local clusters + one RabbitMQ, no Docker)
.PHONY: controlplane
controlplane: venv ## Build etcd/kube-apiserver/kube-controller-manager from Go modules (cached)
	$(HARNESS) build

.PHONY: nodes-build
nodes-build: venv ## Build kubelet/kube-scheduler/kube-proxy (cached) and the image from the Dockerfile (buildah, cached by content)
	$(HARNESS) build-nodes
	$(HARNESS) image

.PHONY: helm
helm: venv ## Build helm from Go modules (helm.sh/helm/v3/cmd/helm, pinned, cached) for the chart's tests
	$(HARNESS) build-helm

.PHONY: chart-lint
chart-lint: helm ## helm lint --strict of charts/rabbitsync
	"$$($(HARNESS) build-helm | tail -1)" lint --strict charts/rabbitsync --set clusterName=lint

.PHONY: image
image: venv ## Build the Dockerfile with buildah on a debootstrapped base (no Docker; cached by content)
	$(HARNESS) image

.PHONY: dev-up
dev-up: venv ## Start clusters east and west, a real node each, and the broker (RABBITSYNC_NODES=podrunner: no nodes)
	$(HARNESS) up

.PHONY: dev-down
dev-down: venv ## Stop everything dev-up (and operators-up) started
	$(HARNESS) down

.PHONY: operators-up
operators-up: venv ## Start one operator per cluster (ServiceAccount token, CRDs applied); logs $(STATE_DIR)/operator-*.log
	$(HARNESS) operators-up

.PHONY: operators-down
operators-down: venv ## Stop the operators operators-up started
	$(HARNESS) operators-down

.PHONY: dev-status
dev-status: venv ## Exit 0 when the dev environment is up and healthy
	$(HARNESS) status

##@ Code
.PHONY: crds
crds: venv ## Regenerate crds/ (and the Helm chart's copy) from the pydantic models
	$(PY) -m rabbitsync.api.crd crds charts/rabbitsync/crds

PY_SOURCES := operator tests hack services bench

.PHONY: lint
lint: venv ## ruff, the formatter check, mypy --strict, the layer contracts (.importlinter) and shellcheck
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/shellcheck .ci/run hack/kind/e2e.sh

##@ Tests
.PHONY: test
test: venv lint ## The whole suite: unit, integration, and e2e on real nodes against real servers
	$(VENV)/bin/pytest

.PHONY: test-unit
test-unit: venv ## Unit tests only (no servers)
	$(VENV)/bin/pytest -m unit

.PHONY: test-integration
test-integration: venv ## Integration tests (real kube-apiserver, real RabbitMQ)
	$(VENV)/bin/pytest -m integration

# The broker-facing integration tests again on RabbitMQ 4.0 (Debian 13's, in a chroot: the first run
# builds the root with debootstrap and caches it in ~/.cache/rabbitsync/debian-trixie).
BROKER_VERSION_TESTS := tests/integration/broker tests/integration/harness/test_broker.py \
	tests/integration/harness/test_cluster.py tests/integration/tls/test_amqps.py

# The Django library's own tests (unit and against a real broker and database), run by test-django42.
LIBRARY_TESTS := tests/unit/service tests/unit/library tests/integration/service tests/integration/library
# The broker-side fault tests (broker stopped, connections force-closed, sidecar killed) run in every
# mode in `make test`; on Django 4.2 only in the mode that leans on the ORM most (PostgreSQL, parallel
# workers: a connection per thread, savepoints per event). Without the others: 5.6 minutes, not 7.6.
LIBRARY_TESTS_SELECT := not test_service_faults or postgres-parallel

.PHONY: test-django42
test-django42: $(VENV_DJANGO42)/.installed ## The Django library's tests on Django 4.2 LTS, with only rabbitsync[django] installed
	RABBITSYNC_LIBRARY_ONLY=1 $(VENV_DJANGO42)/bin/pytest $(LIBRARY_TESTS) -k "$(LIBRARY_TESTS_SELECT)"

.PHONY: test-broker-versions
test-broker-versions: venv ## The broker integration tests (single node, cluster, TLS) on RabbitMQ 4.0 too
	RABBITSYNC_RABBITMQ=4.0 $(VENV)/bin/pytest $(BROKER_VERSION_TESTS)

# What only a kubelet can pass, and the two-cluster story, on real nodes (root; see README "Real nodes").
REAL_NODE_TESTS := tests/e2e/test_real_nodes.py tests/e2e/test_two_clusters.py

.PHONY: test-real-nodes
test-real-nodes: venv ## The kubelet-only e2e tests and the two-cluster e2e on real nodes and pods (root, containerd, buildah)
	RABBITSYNC_NODES=real $(VENV)/bin/pytest $(REAL_NODE_TESTS)

# The e2e tests real nodes skip, with the pod runner (see README "Pods, two ways"): the backfill e2e
# reads the services' databases in its state directory, the broker outage stops a local deployment's
# broker; and the two-cluster story, whose last test checks the pod runner runs exactly the pod templates.
PODRUNNER_TESTS := tests/e2e/test_backfill_two_clusters.py tests/e2e/test_broker_outage.py \
	tests/e2e/test_two_clusters.py

.PHONY: test-podrunner
test-podrunner: venv ## The e2e tests only the pod runner (the fast inner loop) can run, and the two-cluster story on it
	RABBITSYNC_NODES=podrunner $(VENV)/bin/pytest $(PODRUNNER_TESTS)

##@ Demo
.PHONY: demo
demo: venv ## The two-cluster story on real nodes and pods (RABBITSYNC_NODES=podrunner: the pod runner); runs until dev-down
	$(HARNESS) demo

# The fault suite restarts its broker: always a node of its own, in a state directory of its own.
CHAOS_STATE_DIR ?= $(CURDIR)/.dev-chaos
CHAOS_ARGS ?=
# Its nodes resend an unconfirmed dead-letter batch after 30 s, the README's advice, not RabbitMQ's
# 180 s: after the node-lost fault, retries sat on the broker for 3 more minutes of settling in two of
# six runs on 2026-12-01 (README, Guarantees). Empty: RabbitMQ's default.
CHAOS_DLX_CONFIRM_TIMEOUT ?= 30

.PHONY: chaos
chaos: venv ## Fault suite: 5,000 writes under scheduled faults, then exactly-once checks (CHAOS_ARGS="--soak", RABBITSYNC_RABBITMQ=4.0)
	RABBITSYNC_BROKER_PRIVATE=1 RABBITSYNC_BROKER_DLX_CONFIRM_TIMEOUT=$(CHAOS_DLX_CONFIRM_TIMEOUT) \
		RABBITSYNC_STATE_DIR=$(CHAOS_STATE_DIR) PYTHONPATH=hack $(PY) -m chaos $(CHAOS_ARGS)

.PHONY: kind-e2e
kind-e2e: venv ## On a machine with Docker: two kind clusters, the image loaded, the same e2e suite (KEEP=1 keeps them)
	hack/kind/e2e.sh

##@ Benchmarks (ratios in one run; never in timed tests)
.PHONY: bench
bench: venv ## Issue-11 figures in one run (publish primitive, operator at scale): ratio table + JSON; BENCH_ARGS=--help
	PYTHONPATH=hack:bench $(PY) bench/run.py $(BENCH_ARGS)
