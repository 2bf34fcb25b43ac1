"""Two `vmgen run` replicas with leader election (a Lease in the operator namespace): exactly one acts.

Each replica runs as the chart's ServiceAccount, like the session's operator (which is stopped for these
tests: it does not take part in the election). The leader is read from the Lease's holderIdentity,
which starts with the replica's POD_NAME."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_NAMESPACE, World, deprovision_runs, slow_counting_waagent, vm_requests
from vmgen_testbed.operator_process import OperatorProcess

LEASE = "vmgen-leader"
LEASE_SECONDS = 6.0
"""Renewed every 2 s, given up after 4 s without renewal: room for a loaded CI machine."""


@pytest.fixture
def replicas(
    world: World, arm: Any, operator_kubeconfig: Path, tmp_path: Path
) -> Iterator[Callable[[str], OperatorProcess]]:
    world.operator.stop()  # the session's operator is not in the election
    started: list[OperatorProcess] = []

    def start(name: str) -> OperatorProcess:
        process = OperatorProcess(
            kubeconfig=str(operator_kubeconfig),
            arm_endpoint=arm.base_url,
            ca_bundle=str(arm.ca_bundle),
            authority=arm.authority,
            log_path=tmp_path / f"{name}.log",
            operator_namespace=OPERATOR_NAMESPACE,
            poll_interval=0.05,
            leader_election=True,
            lease_duration=LEASE_SECONDS,
            pod_name=name,
        )
        process.start()
        process.wait_ready()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    world.operator.start()


def leader(world: World) -> str | None:
    done = world.control_plane.kubectl(
        "get", "lease", "-n", OPERATOR_NAMESPACE, LEASE, "-o", "json", check=False
    )
    if done.returncode != 0:
        return None
    holder = json.loads(done.stdout)["spec"].get("holderIdentity") or ""
    return holder.partition("_")[0] or None


def wait_leader(world: World, *, not_: str | None = None, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = leader(world)
        if found and found != not_:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no leader other than {not_} within {timeout}s")


def assert_irreversible_steps_once(world: World, vm: Any) -> None:
    assert deprovision_runs(vm) == 1
    operations = [r.operation for r in vm_requests(world.arm, vm)]
    assert operations.count("deallocate") == 1
    assert operations.count("generalize") == 1
    assert "start" not in operations


def test_two_replicas_process_one_job_once(
    world: World, linux_vm: Any, replicas: Callable[[str], OperatorProcess]
) -> None:
    a, b = replicas("replica-a"), replicas("replica-b")
    first = wait_leader(world)
    vm = linux_vm()
    slow_counting_waagent(vm, seconds=1)
    world.arm.clear_requests()
    world.linux_job("ha-once", vm, host_keys=list(vm.sandbox.host_keys))

    body = world.wait_ready("ha-once", timeout=120)

    assert body["status"]["phase"] == "Succeeded"
    assert_irreversible_steps_once(world, vm)
    standby = b if first == "replica-a" else a
    assert "Standing by" in standby.logs()
    assert "ha-once" not in standby.logs(), "the standby never touched the resource"


def test_killing_the_active_replica_mid_job_lets_the_other_finish_it(
    world: World, linux_vm: Any, replicas: Callable[[str], OperatorProcess]
) -> None:
    processes = {name: replicas(name) for name in ("replica-a", "replica-b")}
    first = wait_leader(world)
    vm = linux_vm()
    slow_counting_waagent(vm, seconds=5)
    world.arm.clear_requests()
    world.linux_job("ha-kill", vm, host_keys=list(vm.sandbox.host_keys))
    world.wait_for("ha-kill", lambda b: deprovision_runs(vm) == 1, timeout=60, what="waagent started")

    killed = time.monotonic()
    processes[first].kill()
    second = wait_leader(world, not_=first, timeout=LEASE_SECONDS + 15)
    print(f"\nleader SIGKILLed: {second} took the Lease after {time.monotonic() - killed:.1f}s")

    body = world.wait_ready("ha-kill", timeout=180)
    assert body["status"]["phase"] == "Succeeded"
    assert_irreversible_steps_once(world, vm)
    assert processes[second].running
    assert "Leading" in processes[second].logs()


def test_a_rolling_restart_mid_job_ends_ready(
    world: World, linux_vm: Any, replicas: Callable[[str], OperatorProcess]
) -> None:
    old = replicas("replica-old")
    assert wait_leader(world) == "replica-old"
    vm = linux_vm()
    slow_counting_waagent(vm, seconds=4)
    world.arm.clear_requests()
    world.linux_job("ha-rolling", vm, host_keys=list(vm.sandbox.host_keys))
    world.wait_for("ha-rolling", lambda b: deprovision_runs(vm) == 1, timeout=60, what="waagent started")

    new = replicas("replica-new")  # the surge pod starts as a standby
    stopping = time.monotonic()
    assert old.stop(timeout=30) == 0, "SIGTERM: the old replica finishes its pass and releases the Lease"
    assert wait_leader(world, not_="replica-old", timeout=10) == "replica-new"
    print(
        f"\nrolling restart: the new replica led {time.monotonic() - stopping:.1f}s after SIGTERM to the old"
    )

    body = world.wait_ready("ha-rolling", timeout=180)
    assert body["status"]["phase"] == "Succeeded"
    assert_irreversible_steps_once(world, vm)
    assert "Released the leader Lease" in old.logs()
    assert new.running
