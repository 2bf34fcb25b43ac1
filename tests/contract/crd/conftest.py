"""Fixtures of the CRD and chart contract tests: the vmgen CRD on the session's control plane, a fresh
namespace per test, and the pinned `helm` binary.

Traps avoided:
- `kubectl wait --for=condition=Established` returns before kubectl's discovery cache knows the short
  name `vmgen`; the fixture waits until `kubectl get vmgen` itself works, with a deadline.
- There is no namespace controller in the testbed, so namespaces are never deleted: each test gets a
  new one with a random name instead.
- helm built by `vmgen_testbed.helm` reports Kubernetes v1.20 as its default target, which the chart's
  kubeVersion refuses: every render passes `--kube-version` explicitly.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests.contract.crd.resources import CRD_PATH
from vmgen_testbed.helm import ensure_helm
from vmgen_testbed.kube import ControlPlane

DISCOVERY_DEADLINE_SECONDS = 30.0


@pytest.fixture(scope="session")
def vmgen_crd(control_plane: ControlPlane) -> None:
    """crds/vmgeneralization.yaml applied and served, short name included."""
    control_plane.kubectl("apply", "-f", str(CRD_PATH))
    control_plane.wait_established("vmgeneralizations.vmgen.io")
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
    """The pinned helm binary (`vmgen_testbed.helm.ensure_helm`)."""
    return ensure_helm()
