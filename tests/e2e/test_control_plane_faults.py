"""The control plane fails under a running job: the API server goes away for 30 s, the operator is
upgraded by SIGKILL. Each job ends Ready with deprovision, deallocate and generalize run once.

An API server outage must be ridden out in one process: kopf's watch reconnects, a status patch the
server did not take is never taken for done (the next pass verifies from Azure and the guest instead),
and a job whose waagent finished during the outage does not run it again. An upgrade that kills the
old process without a goodbye (node loss, `kubectl delete pod --force`) leaves its leader Lease held:
the new version waits for it to expire and then resumes every job from status.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    OPERATOR_NAMESPACE,
    World,
    condition,
    deprovision_runs,
    slow_counting_waagent,
    vm_requests,
)
from tests.e2e.test_high_availability import leader, wait_leader
from vmgen_testbed.operator_process import OperatorProcess

OUTAGE_SECONDS = 30.0


def assert_every_step_recorded(body: dict[str, Any]) -> None:
    """The status the API server ends with has each step's start and finish: nothing written during
    or around the outage was lost."""
    steps = body["status"]["steps"]
    assert set(steps) >= {"validate", "deprovision", "shutdown", "generalize"}, steps
    for name, step in steps.items():
        assert step["state"] == "Succeeded", (name, step)
        assert step.get("startedAt") and step.get("finishedAt"), (name, step)
        assert step["startedAt"] <= step["finishedAt"], (name, step)


def assert_irreversible_steps_once(world: World, vm: Any) -> None:
    assert deprovision_runs(vm) == 1
    operations = [r.operation for r in vm_requests(world.arm, vm)]
    assert operations.count("deallocate") == 1, operations
    assert operations.count("generalize") == 1, operations
    assert "start" not in operations


@pytest.fixture
def outage(world: World) -> Iterator[None]:
    """However the test ends, the session's API server runs again afterwards."""
    yield
    if not world.control_plane.apiserver_running:
        world.control_plane.start_apiserver()


@pytest.mark.usefixtures("outage")
def test_the_api_server_gone_for_30_seconds_mid_deprovision_the_job_ends_ready_in_one_process(
    world: World, linux_vm: Any
) -> None:
    vm = linux_vm()
    slow_counting_waagent(vm, seconds=6)  # waagent finishes while the API server is down
    world.arm.clear_requests()
    world.linux_job("outage", vm, host_keys=list(vm.sandbox.host_keys))
    world.wait_for("outage", lambda b: deprovision_runs(vm) == 1, timeout=60, what="waagent started")
    pid, starts, since = world.operator.pid, world.operator.starts, world.operator.log_offset()

    world.control_plane.stop_apiserver()
    down = time.monotonic()
    while time.monotonic() - down < OUTAGE_SECONDS:  # the outage itself, watched second by second
        assert world.operator.running, (
            f"the operator exited during the outage:\n{world.operator.logs()[-3000:]}"
        )
        time.sleep(1)
    world.control_plane.start_apiserver()
    back = time.monotonic()
    body = world.wait_ready("outage", timeout=120)
    print(f"\nAPI server down {OUTAGE_SECONDS:g}s; Ready {time.monotonic() - back:.1f}s after it came back")

    assert body["status"]["phase"] == "Succeeded"
    assert (world.operator.pid, world.operator.starts) == (pid, starts), "the same process rode it out"
    assert world.operator.running
    assert_irreversible_steps_once(world, vm)
    assert_every_step_recorded(body)
    assert body["status"]["steps"]["deprovision"]["attempts"] == 1
    # waagent finished while no status could be written: its checkpoint comes from the guest's evidence.
    assert condition(body, "Deprovisioned")["reason"] == "DeprovisionVerified"
    logs = world.operator.logs(since=since)
    assert "KubernetesUnavailable" in logs, "the outage was seen and retried"
    assert "Traceback" not in logs


LEASE_SECONDS = 6.0


@pytest.fixture
def version(
    world: World, arm: Any, operator_kubeconfig: Path, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Starts an operator "version" with leader election, in place of the session's operator; the
    configuration it is given stands for what a new release changes."""
    world.operator.stop()
    started: list[OperatorProcess] = []

    def start(name: str, *, poll_interval: float, extra_env: dict[str, str] | None = None) -> OperatorProcess:
        process = OperatorProcess(
            kubeconfig=str(operator_kubeconfig),
            arm_endpoint=arm.base_url,
            ca_bundle=str(arm.ca_bundle),
            authority=arm.authority,
            log_path=tmp_path / f"{name}.log",
            operator_namespace=OPERATOR_NAMESPACE,
            poll_interval=poll_interval,
            leader_election=True,
            lease_duration=LEASE_SECONDS,
            pod_name=name,
            extra_env=extra_env,
        )
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    world.operator.start()


def test_an_upgrade_that_sigkills_the_old_version_mid_deprovision_hands_over_when_its_lease_expires(
    world: World, linux_vm: Any, version: Callable[..., OperatorProcess]
) -> None:
    old = version("vmgen-v1", poll_interval=0.05)
    old.wait_ready()
    assert wait_leader(world) == "vmgen-v1"
    vm = linux_vm()
    slow_counting_waagent(vm, seconds=4)
    world.arm.clear_requests()
    world.linux_job("upgrade", vm, host_keys=list(vm.sandbox.host_keys))
    world.wait_for("upgrade", lambda b: deprovision_runs(vm) == 1, timeout=60, what="waagent started")

    old.kill()  # SIGKILL while waagent runs: the Lease stays held, renewed a moment ago
    killed = time.monotonic()
    new = version(
        "vmgen-v2", poll_interval=0.2, extra_env={"VMGEN_MAX_REQUESTS_IN_FLIGHT": "8"}
    )  # the new release: another poll interval and concurrency limit
    new.wait_ready()  # live as a standby
    standing_by = time.monotonic()
    assert leader(world) == "vmgen-v1", "the killed version's Lease is still held when the new one starts"
    assert wait_leader(world, not_="vmgen-v1", timeout=LEASE_SECONDS * 3) == "vmgen-v2"
    led = time.monotonic()
    body = world.wait_ready("upgrade", timeout=120)
    print(
        f"\nupgrade by SIGKILL (Lease {LEASE_SECONDS:g}s): vmgen-v2 live {standing_by - killed:.1f}s"
        " after the kill,"
        f" leading {led - standing_by:.1f}s later ({led - killed:.1f}s after the kill);"
        f" Ready {time.monotonic() - killed:.1f}s after the kill"
    )

    assert body["status"]["phase"] == "Succeeded"
    assert led - killed >= LEASE_SECONDS * 0.9, "not before the killed version's Lease expired"
    # A standby takes over after a whole Lease duration without renewal by its own clock, read every third.
    assert led - standing_by <= LEASE_SECONDS * 4 / 3 + 3, "soon after the Lease expired"
    assert_irreversible_steps_once(world, vm)
    assert_every_step_recorded(body)
    assert body["status"]["steps"]["deprovision"]["attempts"] == 1
    assert "Standing by" in new.logs() and "Leading" in new.logs()
    assert "poll every 0.2s" in new.logs(), "the new configuration is the one that finished the job"
