"""A running Windows VM becomes a generalized image source: sysprep over WinRM, or through Azure Run
Command, then deallocate and generalize, driven by `kubectl apply`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import World, condition, vm_requests
from tests.e2e.windows_jobs import assert_generalized_once, assert_no_secret_leaked, windows_job

STEPS = ("validate", "deprovision", "shutdown", "generalize")


@pytest.mark.parametrize("transport", ["WinRM", "RunCommand"])
def test_a_running_windows_vm_ends_generalized_and_ready(
    world: World, windows_vm: Any, transport: str
) -> None:
    vm = windows_vm()
    world.arm.clear_requests()
    windows_job(world, "win-golden", vm, transport=transport)

    body = world.wait_ready("win-golden", timeout=100)

    status = body["status"]
    assert status["phase"] == "Succeeded"
    for step in STEPS:
        assert status["steps"][step]["state"] == "Succeeded", (step, status["steps"][step])
    assert status["steps"]["deprovision"]["attempts"] == 1
    assert condition(body, "Deprovisioned")["reason"] == "SysprepSucceeded"
    assert status["vm"]["osType"] == "Windows"
    assert_generalized_once(world, vm)
    exits = vm.machine.snapshot()["sysprepCommandLines"]
    assert ("/shutdown" if transport == "RunCommand" else "/quit") in exits[0]
    assert_no_secret_leaked(world, vm, "win-golden")


def test_through_run_command_every_run_command_resource_is_deleted_afterwards(
    world: World, windows_vm: Any
) -> None:
    vm = windows_vm()
    world.arm.clear_requests()
    windows_job(world, "win-rc", vm, transport="RunCommand")

    world.wait_ready("win-rc", timeout=100)

    requests = vm_requests(world.arm, vm)
    created = {r.path.rsplit("/", 1)[-1] for r in requests if r.operation == "createRunCommand"}
    deleted = {r.path.rsplit("/", 1)[-1] for r in requests if r.operation == "deleteRunCommand"}
    scripts = {"vmgen-preflight", "vmgen-sysprep-start", "vmgen-sysprep-state"}
    assert {"vmgen-preflight", "vmgen-sysprep-start"} <= created <= scripts
    assert created <= deleted
    puts = [r for r in requests if r.operation == "createRunCommand"]
    assert all(r.request_body["properties"]["asyncExecution"] is True for r in puts)
    assert all(r.request_body["properties"]["timeoutInSeconds"] > 0 for r in puts)
