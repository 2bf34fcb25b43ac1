"""Fixtures of the CRD and chart contract tests: the vmgen CRD on the session's control plane, a fresh
namespace per test, and the pinned `helm` binary.

Traps avoided:
- `kubectl wait --for=condition=Established` returns before kubectl's discovery cache knows the short
  name `vmgen`; the fixture waits until `kubectl get vmgen` itself works, with a deadline.
- There is no namespace controller in the testbed, so namespaces are never deleted: each test gets a
  new one with a random name instead.
- helm is not part of the Kubernetes build: it is built once with `go install` from the Go module proxy
  into `cache_dir()/bin-helm-<version>/` (staged, then renamed, so an interrupted build is never taken
  for a cached one). Helm built this way reports Kubernetes v1.20 as its default target, which the
  chart's kubeVersion refuses: every render passes `--kube-version` explicitly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.contract.crd.resources import CRD_PATH
from vmgen_testbed.kube import ControlPlane
from vmgen_testbed.paths import cache_dir

HELM_VERSION = "v3.22.0"
HELM_MODULE = "helm.sh/helm/v3/cmd/helm"
DISCOVERY_DEADLINE_SECONDS = 30.0


@pytest.fixture(scope="session")
def vmgen_crd(control_plane: ControlPlane) -> None:
    """crds/vmgeneralization.yaml applied and served, short name included."""
    control_plane.kubectl("apply", "-f", str(CRD_PATH))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "crd/vmgeneralizations.vmgen.io", "--timeout=60s"
    )
    deadline = time.monotonic() + DISCOVERY_DEADLINE_SECONDS
    while (result := control_plane.kubectl("get", "vmgen", "-A", check=False)).returncode != 0:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"`kubectl get vmgen` still fails after the CRD is Established: {result.stderr}"
            )
        time.sleep(0.2)


@pytest.fixture
def namespace(control_plane: ControlPlane) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    control_plane.kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm binary, built with `go install` the first time (about two minutes)."""
    target = cache_dir() / f"bin-helm-{HELM_VERSION}"
    binary = target / "helm"
    if os.access(binary, os.X_OK):
        return binary
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise AssertionError("`go` is needed to build helm (the chart tests render the chart with it)")
    staging = Path(tempfile.mkdtemp(prefix=f".bin-helm-{HELM_VERSION}.", dir=cache_dir()))
    try:
        subprocess.run(
            [go, "install", f"{HELM_MODULE}@{HELM_VERSION}"],
            env={**os.environ, "GOBIN": str(staging), "GOFLAGS": "-trimpath"},
            check=True,
        )
        staging.chmod(0o755)  # mkdtemp made it private
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return binary
