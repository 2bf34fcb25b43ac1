# vmgen: `make demo` and `make test` on a fresh Debian bookworm machine (root, Python 3.11+, Go).
# Builds once, then reuses: the virtualenv (rebuilt when pyproject.toml changes), system packages,
# kube-apiserver/kubectl/etcd, the Debian guest rootfs and the operator image (in $(VMGEN_CACHE_DIR) and
# buildah's image store).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PY := .venv/bin/python
VENV_STAMP := .venv/.vmgen-installed
export VMGEN_CACHE_DIR ?= $(CURDIR)/.cache
export PATH := $(PATH):/usr/local/go/bin
export DEBIAN_FRONTEND := noninteractive

# command:package pairs the testbed needs from the system
SYSTEM_TOOLS := debootstrap:debootstrap zstd:zstd ip:iproute2 ssh-keygen:openssh-client \
	buildah:buildah podman:podman runc:runc

.PHONY: venv deps binaries rootfs image testbed lint test-unit test demo demo-windows bench mutation clean

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  python3 -c 'import ensurepip' 2>/dev/null || $(MAKE) --no-print-directory apt-install PACKAGES=python3-venv; \
	  echo "==> creating .venv"; python3 -m venv .venv; \
	fi
	@echo "==> installing vmgen and its test dependencies into .venv"
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

deps:
	@missing=""; \
	for pair in $(SYSTEM_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then $(MAKE) --no-print-directory apt-install PACKAGES="$$missing"; fi

# apt-get update only when the install fails (a fresh image has no package lists)
.PHONY: apt-install
apt-install:
	@echo "==> apt-get install $(PACKAGES)"
	apt-get install -y -q $(PACKAGES) || { apt-get update -q && apt-get install -y -q $(PACKAGES); }

binaries: venv
	@echo "==> kube-apiserver, kubectl, etcd, helm (built once from tools/*/go.mod pins, cached in $(VMGEN_CACHE_DIR))"
	$(PY) -m vmgen_testbed.binaries
	$(PY) -m vmgen_testbed.helm

rootfs: venv deps
	@echo "==> Debian guest rootfs (debootstrap once, cached in $(VMGEN_CACHE_DIR))"
	$(PY) -m vmgen_testbed.linux.rootfs

# The operator image, from the Dockerfile (buildah, rebuilt only when its inputs change: docs/image.md).
image: venv deps
	@echo "==> operator image (buildah bud on a local base image; cached until the Dockerfile or sources change)"
	$(PY) -m vmgen_testbed.image

testbed: binaries rootfs

lint: venv
	@echo "==> lint: ruff, mypy --strict, import contracts"
	$(PY) -m ruff check operator tests benchmarks tools
	$(PY) -m ruff format --check operator tests benchmarks tools
	$(PY) -m mypy -p vmgen -p vmgen_testbed
	.venv/bin/lint-imports
	.venv/bin/hadolint Dockerfile

test-unit: venv
	$(PY) -m pytest tests/unit

test: lint testbed image
	@echo "==> pytest: unit, contract, e2e"
	$(PY) -m pytest tests

demo: venv deps testbed
	$(PY) -m vmgen_testbed.demo

demo-windows: venv deps testbed
	$(PY) -m vmgen_testbed.demo_windows

bench: venv deps testbed
	@for bench in benchmarks/bench_*.py; do echo "==> $$bench"; $(PY) "$$bench"; done

# Mutation testing of the pure core (docs/testing.md): mutmut changes operator/vmgen/domain one small
# edit at a time and runs the unit tests that reach it; a mutant they do not notice is a missing test.
# It runs in a staging copy with the package under src/ (what mutmut's module naming expects), so the
# worktree itself is never edited. Results stay in .mutation/mutants (`make mutation-results`).
MUTATION_DIR := .mutation

mutation: venv
	$(PY) -m pip install -q -e '.[test,mutation]'
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)/src
	cp -rL operator/vmgen $(MUTATION_DIR)/src/vmgen
	cp -r tests crds pyproject.toml $(MUTATION_DIR)/
	find $(MUTATION_DIR) -name __pycache__ -type d -prune -exec rm -rf {} +
	cd $(MUTATION_DIR) && ../.venv/bin/mutmut run
	cd $(MUTATION_DIR) && ../.venv/bin/python ../tools/mutation_survivors.py

.PHONY: mutation-results
mutation-results:
	cd $(MUTATION_DIR) && ../.venv/bin/python ../tools/mutation_survivors.py --show

# Keeps .venv and $(VMGEN_CACHE_DIR) (the long builds); delete those by hand to start over.
clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache state $(MUTATION_DIR)
	find operator tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +
