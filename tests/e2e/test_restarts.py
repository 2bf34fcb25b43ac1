"""A restarted operator resumes from status: it never repeats an irreversible step blindly.

Each test kills `vmgen run` with SIGKILL at a chosen point, starts it again, and checks that the job
ends Ready with deprovision run exactly once and the VM never started.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.e2e.conftest import (
    World,
    assert_guest_deprovisioned,
    condition,
    deprovision_runs,
    slow_counting_waagent,
    vm_requests,
)
from vmgen_testbed.arm.server import Fault


def step_state(body: dict[str, Any], step: str) -> str | None:
    return body.get("status", {}).get("steps", {}).get(step, {}).get("state")


def test_killed_during_deprovision_it_resumes_without_running_deprovision_twice(
    world: World, linux_vm: Any
) -> None:
    vm = linux_vm()
    slow_counting_waagent(vm, 2)
    world.linux_job("kill-deprovision", vm, host_keys=list(vm.sandbox.host_keys))
    world.wait_for(
        "kill-deprovision",
        lambda b: step_state(b, "deprovision") == "Running",
        timeout=60,
        what="deprovision Running",
    )
    world.wait_for(
        "kill-deprovision", lambda b: deprovision_runs(vm) == 1, timeout=30, what="waagent started"
    )

    world.operator.kill()
    world.operator.start()
    body = world.wait_ready("kill-deprovision")

    assert deprovision_runs(vm) == 1
    assert body["status"]["steps"]["deprovision"]["state"] == "Succeeded"
    assert_guest_deprovisioned(vm)
    assert "start" not in [r.operation for r in vm_requests(world.arm, vm)]


def test_killed_during_the_deallocate_operation_it_resumes_from_the_continuation_token(
    world: World, linux_vm: Any
) -> None:
    vm = linux_vm()
    default = world.arm.latency("deallocate")
    world.arm.set_latency("deallocate", 3.0)
    try:
        world.linux_job("kill-deallocate", vm, host_keys=list(vm.sandbox.host_keys))
        world.wait_for(
            "kill-deallocate",
            lambda b: bool(b.get("status", {}).get("steps", {}).get("shutdown", {}).get("continuationToken")),
            timeout=60,
            what="deallocate continuation token recorded",
        )
        world.operator.kill()
        world.operator.start()
        body = world.wait_ready("kill-deallocate")
    finally:
        world.arm.set_latency("deallocate", default)

    operations = [r.operation for r in vm_requests(world.arm, vm)]
    assert operations.count("deallocate") == 1, "the LRO was begun again instead of resumed"
    assert body["status"]["steps"]["deprovision"]["attempts"] == 1
    assert "start" not in operations


def test_killed_between_deallocate_and_generalize_it_generalizes_once(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    default = world.arm.latency("generalize")
    world.arm.set_latency("generalize", 2.0)
    try:
        world.linux_job("kill-generalize", vm, host_keys=list(vm.sandbox.host_keys))
        world.wait_for(
            "kill-generalize",
            lambda b: step_state(b, "shutdown") == "Succeeded",
            timeout=60,
            what="shutdown Succeeded",
        )
        world.operator.kill()
        world.operator.start()
        body = world.wait_ready("kill-generalize")
    finally:
        world.arm.set_latency("generalize", default)

    assert body["status"]["steps"]["generalize"]["state"] == "Succeeded"
    assert body["status"]["steps"]["deprovision"]["attempts"] == 1
    azure = world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)
    assert azure["generalized"] is True
    # The simulator, like Azure, accepts a second generalize of a generalized VM without complaint, so
    # only the request log can tell "once" from "twice".
    operations = [r.operation for r in vm_requests(world.arm, vm)]
    assert operations.count("generalize") == 1, operations
    assert "start" not in operations


def test_throttling_and_unavailability_are_retried_until_ready(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    # Every fault names this job's VM, so none is spent on another test's VM (or on `vm-12` for `vm-1`).
    # A POST answered 429 without Retry-After, or 502, is not retried by azure-core: those two reach the
    # workflow, which must show them as Warning events with their own reasons.
    faults = [
        Fault(kind="429-retry-after", retry_after=1, count=2, vm=vm.name),
        Fault(kind="429", operation="deallocate", count=2, vm=vm.name),
        Fault(kind="503", count=2, vm=vm.name),
        Fault(kind="502", operation="generalize", count=1, vm=vm.name),
    ]
    try:
        for fault in faults:
            world.arm.inject(fault)
        world.linux_job("throttled", vm, host_keys=list(vm.sandbox.host_keys))

        body = world.wait_ready("throttled", timeout=180)
    finally:
        world.arm.clear_faults()

    assert body["status"]["steps"]["deprovision"]["attempts"] == 1
    assert condition(body, "Generalized")["status"] == "True"
    answers = [(r.operation, r.status) for r in vm_requests(world.arm, vm)]
    statuses = [status for _, status in answers]
    # Each fault was used up by exactly one of this job's requests per count.
    assert (statuses.count(429), statuses.count(503), statuses.count(502)) == (4, 2, 1), answers
    assert answers.count(("deallocate", 429)) >= 2, answers
    assert ("generalize", 502) in answers, answers
    warnings = {
        e["reason"]
        for e in world.events()
        if e["type"] == "Warning" and e["involvedObject"]["name"] == "throttled"
    }
    assert {"AzureThrottled", "AzureUnavailable"} <= warnings, warnings


def test_an_unverifiable_deprovision_waits_for_a_person_to_confirm(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    slow_counting_waagent(vm, 2)
    world.linux_job("confirm", vm, host_keys=list(vm.sandbox.host_keys))
    world.wait_for("confirm", lambda b: deprovision_runs(vm) == 1, timeout=60, what="waagent started")
    world.operator.kill()
    # Run Command is the only way to verify: make it fail for as long as the operator asks.
    world.arm.inject(
        Fault(
            kind="failed-operation",
            operation="runCommand",
            count=1000,
            error_code="VMAgentStatusCommunicationError",
        )
    )
    try:
        world.operator.start()
        body = world.wait_for(
            "confirm",
            lambda b: any(
                c["type"] == "DeprovisionOutcomeUnknown" and c["status"] == "True"
                for c in b.get("status", {}).get("conditions", [])
            ),
            timeout=60,
            what="DeprovisionOutcomeUnknown",
        )
        assert condition(body, "Ready")["status"] == "False"
        assert "vmgen.io/confirm-deprovisioned" in condition(body, "DeprovisionOutcomeUnknown")["message"]
        assert world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["powerState"] == "running"

        world.kubectl("annotate", "vmgen", "confirm", "vmgen.io/confirm-deprovisioned=true")
        body = world.wait_ready("confirm")
    finally:
        world.arm.clear_faults()

    assert deprovision_runs(vm) == 1
    assert body["status"]["steps"]["generalize"]["state"] == "Succeeded"


def test_a_guest_deprovisioned_already_is_never_deprovisioned_again(world: World, linux_vm: Any) -> None:
    """A person (or a deleted earlier resource) deprovisioned it: vmgen looks first and moves on."""
    vm = linux_vm()
    done = asyncio.run(vm.sandbox.run_script("waagent -force -deprovision+user", shell="bash", timeout=120))
    assert done.exit_code == 0, done.stderr
    slow_counting_waagent(vm, 0)  # from now on, any waagent run is counted
    world.linux_job("by-someone-else", vm, host_keys=list(vm.sandbox.host_keys))

    body = world.wait_ready("by-someone-else")

    assert deprovision_runs(vm) == 0
    assert condition(body, "Deprovisioned")["reason"] == "DeprovisionVerified"
    assert condition(body, "Generalized")["status"] == "True"


def test_a_deallocate_that_azure_ends_failed_is_begun_again(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.arm.inject(Fault(kind="failed-operation", operation="deallocate", count=1))
    world.linux_job("deallocate-failed-once", vm, host_keys=list(vm.sandbox.host_keys))

    body = world.wait_ready("deallocate-failed-once", timeout=120)

    operations = [r.operation for r in vm_requests(world.arm, vm)]
    assert operations.count("deallocate") == 2, operations
    assert body["status"]["steps"]["shutdown"]["attempts"] == 2
    assert body["status"]["steps"]["deprovision"]["attempts"] == 1
    assert "start" not in operations
