"""The main job: a running Linux VM becomes a generalized image source, driven by `kubectl apply`."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import World, assert_guest_deprovisioned, condition, vm_requests

STEPS = ("validate", "deprovision", "shutdown", "generalize")


def test_a_running_linux_vm_ends_generalized_and_ready(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.arm.clear_requests()
    world.linux_job("web-golden", vm, host_keys=list(vm.sandbox.host_keys))

    body = world.wait_ready("web-golden")

    status = body["status"]
    assert status["phase"] == "Succeeded"
    assert status["observedGeneration"] == body["metadata"]["generation"]
    for step in STEPS:
        checkpoint = status["steps"][step]
        assert checkpoint["state"] == "Succeeded", (step, checkpoint)
        assert checkpoint["startedAt"] <= checkpoint["finishedAt"]
    assert status["steps"]["deprovision"]["attempts"] == 1
    for kind in ("Ready", "Deprovisioned", "Deallocated", "Generalized"):
        assert condition(body, kind)["status"] == "True", kind
    assert status["vm"]["osType"] == "Linux"
    assert status["vm"]["id"].endswith(f"/virtualMachines/{vm.name}")
    assert status["startedAt"] <= status["completedAt"]

    assert_guest_deprovisioned(vm)
    azure = world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)
    assert azure["powerState"] == "deallocated"
    assert azure["generalized"] is True

    requests = vm_requests(world.arm, vm)
    operations = [r.operation for r in requests]
    assert "start" not in operations, "the operator must never start the VM"
    assert operations.count("deallocate") == 1
    assert operations.count("generalize") == 1
    print(f"\nARM requests for one VM: {len(requests)} ({', '.join(sorted(set(map(str, operations))))})")
    assert len(requests) < 60


def test_host_keys_are_read_through_run_command_when_none_are_pinned(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.linux_job("unpinned", vm)

    world.wait_ready("unpinned")

    assert "runCommand" in [r.operation for r in vm_requests(world.arm, vm)]
    assert_guest_deprovisioned(vm)


STEP_EVENTS = (
    ("ValidationStarted", "ValidationSucceeded"),
    ("DeprovisionStarted", "DeprovisionSucceeded"),
    ("ShutdownStarted", "VMDeallocated"),
    ("GeneralizeStarted", "VMGeneralized"),
)


def test_events_tell_each_step_start_and_finish(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.linux_job("evented", vm, host_keys=list(vm.sandbox.host_keys))
    body = world.wait_ready("evented")

    mine = [e for e in world.events() if e["involvedObject"].get("uid") == body["metadata"]["uid"]]
    normal = {e["reason"]: e for e in mine if e["type"] == "Normal"}
    for started, finished in STEP_EVENTS:
        assert started in normal and finished in normal, (started, finished, sorted(normal))
        assert normal[finished]["message"], f"{finished} must say what happened"
    # eventTime has microseconds (firstTimestamp only seconds): each start comes before its finish,
    # and each step after the one before it.
    order = [normal[reason]["eventTime"] for pair in STEP_EVENTS for reason in pair]
    assert order == sorted(order), [
        (reason, normal[reason]["eventTime"]) for pair in STEP_EVENTS for reason in pair
    ]
    assert not [e for e in mine if e["type"] == "Warning"], "a clean run posts no Warning"


def test_printer_columns_show_vm_os_phase_and_ready(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.linux_job("columns", vm, host_keys=list(vm.sandbox.host_keys))
    world.wait_ready("columns")

    out = world.kubectl("get", "vmgen", "columns").stdout.split("\n")
    assert out[0].split()[:5] == ["NAME", "VM", "OS", "PHASE", "READY"]
    assert out[1].split()[:5] == ["columns", vm.name, "Linux", "Succeeded", "True"]
