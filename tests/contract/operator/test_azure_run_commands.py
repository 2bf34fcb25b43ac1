"""The Run Command transport through the real SDK: managed run commands (asyncExecution, bounded, polled,
deleted afterwards) reach the modelled Windows guest; failures and VM extensions read as vmgen says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vmgen.adapters import azure, azure_runcommand
from vmgen.domain import errors, model, windows
from vmgen_testbed.windows import scripts


def ref(vm: Any) -> model.VmRef:
    return model.VmRef(vm.subscription_id, vm.resource_group, vm.name)


def guest(compute: azure.AzureCompute, vm: Any) -> azure_runcommand.RunCommandGuest:
    return azure_runcommand.RunCommandGuest(compute, ref(vm), location="westeurope", poll_interval=0.05)


async def test_a_script_runs_as_a_managed_run_command_that_is_deleted_afterwards(
    compute: azure.AzureCompute, windows_vm: Callable[..., Any], arm: Any
) -> None:
    vm = windows_vm()
    arm.clear_requests()

    output = await guest(compute, vm).run(windows.preflight_script(), timeout=120)

    assert windows.parse_preflight(output).findings == ()
    mine = [r for r in arm.requests() if f"/virtualMachines/{vm.name}/runCommands/" in r.path]
    created = [r for r in mine if r.operation == "createRunCommand"]
    assert [r.path.rsplit("/", 1)[-1] for r in created] == ["vmgen-preflight"]
    assert created[0].request_body["properties"]["asyncExecution"] is True
    assert created[0].request_body["properties"]["timeoutInSeconds"] == 120
    assert any(r.operation == "deleteRunCommand" and r.path.endswith("/vmgen-preflight") for r in mine)


async def test_a_terminating_error_is_the_script_failing_with_its_message(
    compute: azure.AzureCompute, windows_vm: Callable[..., Any]
) -> None:
    vm = windows_vm()

    with pytest.raises(errors.DeprovisionFailed, match="sysprep said no") as failed:
        await guest(compute, vm).run(scripts.probe_script(throw="sysprep said no"), timeout=60)

    assert failed.value.reason == "WindowsScriptFailed"


async def test_a_write_error_alone_counts_as_failure_too(
    compute: azure.AzureCompute, windows_vm: Callable[..., Any]
) -> None:
    vm = windows_vm()

    with pytest.raises(errors.DeprovisionFailed, match="the disk is on fire"):
        await guest(compute, vm).run(
            scripts.probe_script(output="x", error="the disk is on fire"), timeout=60
        )


async def test_a_stopped_vm_refuses_the_run_command_before_anything_runs(
    compute: azure.AzureCompute, windows_vm: Callable[..., Any], arm: Any
) -> None:
    vm = windows_vm()
    arm.update_vm(vm.subscription_id, vm.resource_group, vm.name, power_state="deallocated")

    with pytest.raises(errors.PermanentError):
        await guest(compute, vm).run(windows.sysprep_state_script(), timeout=60)

    assert vm.machine.snapshot()["sysprepStarts"] == 0


async def test_the_observation_lists_the_vms_extensions(
    compute: azure.AzureCompute, windows_vm: Callable[..., Any]
) -> None:
    vm = windows_vm(extensions=(("Microsoft.Azure.Security", "AzureDiskEncryption"),))

    observed = await compute.observe(ref(vm))

    assert observed is not None
    assert observed.extensions == ("Microsoft.Azure.Security.AzureDiskEncryption",)


def test_run_command_names_come_from_the_script_marker() -> None:
    assert azure_runcommand.run_command_name(windows.sysprep_start_script()) == "vmgen-sysprep-start"
    assert azure_runcommand.run_command_name("Get-Date") == "vmgen-script"
