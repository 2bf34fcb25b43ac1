"""pytest fixtures for the kube part of the testbed.

One control plane per test session: starting etcd + kube-apiserver costs a few seconds, and tests
isolate themselves by namespace or by object name instead. Its teardown kills both servers and removes
their folder even when tests fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vmgen_testbed.kube import ControlPlane

__all__ = ["control_plane"]


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """A running kube-apiserver + etcd; `.kubeconfig` is an admin (system:masters) kubeconfig."""
    with ControlPlane() as plane:
        yield plane
