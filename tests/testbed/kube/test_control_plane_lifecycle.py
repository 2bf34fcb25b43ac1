"""The control plane enforces RBAC, and leaves no process and no folder behind, whatever happens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.testbed.kube.processes import processes_mentioning
from vmgen_testbed.kube import ControlPlane, ControlPlaneError


def assert_gone(pids: tuple[int, ...], parent: Path) -> None:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    assert processes_mentioning(str(parent)) == []
    assert list(parent.iterdir()) == []


def test_rbac_is_enforced_for_users_outside_system_masters(control_plane: ControlPlane) -> None:
    admin = control_plane.kubectl("auth", "can-i", "create", "customresourcedefinitions")
    stranger = control_plane.kubectl("auth", "can-i", "list", "secrets", "--as=stranger", check=False)

    assert admin.stdout.strip() == "yes"
    assert stranger.stdout.strip() == "no"


def test_stopping_kills_both_servers_and_removes_the_folder(tmp_path: Path) -> None:
    with ControlPlane(parent_dir=tmp_path) as plane:
        pids = plane.pids
        workdir = plane.workdir
        assert len(pids) == 2
        assert len(processes_mentioning(str(workdir))) == 2
        assert (
            plane.kubectl("get", "namespaces", "default", "-o", "name").stdout.strip() == "namespace/default"
        )
        assert plane.startup_seconds > 0

    assert_gone(pids, tmp_path)


def test_an_exception_inside_the_with_block_still_tears_everything_down(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), ControlPlane(parent_dir=tmp_path) as plane:
        pids = plane.pids
        _ = 1 / 0

    assert_gone(pids, tmp_path)


def test_a_server_that_cannot_start_fails_with_its_log_and_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(ControlPlaneError) as failure:
        ControlPlane(parent_dir=tmp_path, extra_apiserver_args=["--no-such-flag"]).start()

    assert "kube-apiserver exited during start-up" in str(failure.value)
    assert "unknown flag: --no-such-flag" in str(failure.value)
    assert_gone((), tmp_path)
