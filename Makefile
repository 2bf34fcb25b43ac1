# vmgen: `make demo` and `make test` on a fresh Debian bookworm machine (root, Python 3.11+, Go).
# Builds once, then reuses: the virtualenv (rebuilt when pyproject.toml changes), system packages,
# kube-apiserver/kubectl/etcd and the Debian guest rootfs (in $(VMGEN_CACHE_DIR)).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PY := .venv/bin/python
VENV_STAMP := .venv/.vmgen-installed
export VMGEN_CACHE_DIR ?= $(CURDIR)/.cache
export PATH := $(PATH):/usr/local/go/bin
export DEBIAN_FRONTEND := noninteractive

# command:package pairs the testbed needs from the system
SYSTEM_TOOLS := debootstrap:debootstrap zstd:zstd ip:iproute2 ssh-keygen:openssh-client

.PHONY: venv deps binaries rootfs testbed lint test-unit test demo demo-windows bench clean

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

testbed: binaries rootfs

lint: venv
	@echo "==> lint: ruff, mypy --strict, import contracts"
	$(PY) -m ruff check operator tests benchmarks
	$(PY) -m ruff format --check operator tests benchmarks
	$(PY) -m mypy -p vmgen -p vmgen_testbed
	.venv/bin/lint-imports

test-unit: venv
	$(PY) -m pytest tests/unit

test: lint testbed
	@echo "==> pytest: unit, contract, e2e"
	$(PY) -m pytest tests

demo: venv deps testbed
	$(PY) -m vmgen_testbed.demo

demo-windows: venv deps testbed
	$(PY) -m vmgen_testbed.demo_windows

bench: venv deps testbed
	@for bench in benchmarks/bench_*.py; do echo "==> $$bench"; $(PY) "$$bench"; done

# Keeps .venv and $(VMGEN_CACHE_DIR) (the long builds); delete those by hand to start over.
clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache state
	find operator tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +
