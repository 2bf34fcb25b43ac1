"""kube-apiserver can be stopped and started again alone: the outage the operator must ride out.

The e2e test of an API server outage (tests/e2e/test_control_plane_faults.py) relies on three things
checked here: while it is down clients are refused, and once back it serves the same address with the
same certificates (the kubeconfig written at start still works) and every object etcd kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmgen_testbed.kube import ControlPlane


def test_a_stopped_apiserver_refuses_clients_and_comes_back_with_every_object(tmp_path: Path) -> None:
    with ControlPlane(parent_dir=tmp_path) as plane:
        plane.kubectl("create", "configmap", "kept", "--from-literal=key=value", "-n", "default")
        etcd = plane.pids[1]
        server, kubeconfig = plane.server, plane.kubeconfig.read_text()

        plane.stop_apiserver()
        assert not plane.apiserver_running
        down = plane.kubectl("get", "configmap", "kept", "-n", "default", "--request-timeout=5s", check=False)
        assert down.returncode != 0
        assert "connection refused" in down.stderr
        os.killpg(etcd, 0)  # etcd kept running

        seconds = plane.start_apiserver()

        assert plane.apiserver_running
        assert 0 < seconds < 60
        assert (plane.server, plane.kubeconfig.read_text()) == (server, kubeconfig)
        kept = plane.kubectl("get", "configmap", "kept", "-n", "default", "-o", "jsonpath={.data.key}")
        assert kept.stdout == "value"
        assert "started again" in (plane.workdir / "kube-apiserver.log").read_text()


def test_starting_an_apiserver_that_runs_is_refused(control_plane: ControlPlane) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        control_plane.start_apiserver()
