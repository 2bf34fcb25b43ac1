"""Azure Run Command on a Windows VM, through the real async azure-mgmt-compute client: the action
(RunPowerShellScript) and managed run commands act on the same modelled machine as WinRM."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from azure.mgmt.compute.models import (
    RunCommandInput,
    VirtualMachineRunCommand,
    VirtualMachineRunCommandScriptSource,
)

from vmgen.adapters import winrm
from vmgen.domain import errors, windows
from vmgen_testbed.arm import schema
from vmgen_testbed.arm.server import ArmSimulator


async def test_run_powershell_script_reaches_the_model(
    arm: ArmSimulator, compute_client: Any, windows_vm: Callable[..., Any]
) -> None:
    vm = windows_vm()
    poller = await compute_client(vm.subscription_id).virtual_machines.begin_run_command(
        vm.resource_group,
        vm.name,
        RunCommandInput(command_id="RunPowerShellScript", script=windows.preflight_script().splitlines()),
    )
    result = await poller.result()
    stdout = result.value[0].message
    assert windows.parse_preflight(stdout).findings == ()


async def managed(compute_client: Any, vm: Any, name: str, script: str, **properties: Any) -> Any:
    client = compute_client(vm.subscription_id)
    await (
        await client.virtual_machine_run_commands.begin_create_or_update(
            vm.resource_group,
            vm.name,
            name,
            VirtualMachineRunCommand(
                location="westeurope",
                source=VirtualMachineRunCommandScriptSource(script=script),
                async_execution=True,
                timeout_in_seconds=600,
                **properties,
            ),
        )
    ).result()
    for _ in range(200):
        command = await client.virtual_machine_run_commands.get_by_virtual_machine(
            vm.resource_group, vm.name, name, expand="instanceView"
        )
        if command.instance_view.execution_state not in ("Pending", "Running"):
            return command
        await asyncio.sleep(0.02)
    raise AssertionError("the run command did not finish")


async def test_a_managed_run_command_runs_sysprep_and_is_deleted(
    arm: ArmSimulator, compute_client: Any, windows_vm: Callable[..., Any]
) -> None:
    vm = windows_vm()
    command = await managed(compute_client, vm, "vmgen-sysprep", windows.sysprep_start_script(shutdown=True))
    assert command.instance_view.execution_state == "Succeeded"
    assert command.instance_view.exit_code == 0
    assert windows.parse_sysprep_start(command.instance_view.output).started
    plain = await compute_client(vm.subscription_id).virtual_machine_run_commands.get_by_virtual_machine(
        vm.resource_group, vm.name, "vmgen-sysprep"
    )
    assert plain.instance_view is None
    await (
        await compute_client(vm.subscription_id).virtual_machine_run_commands.begin_delete(
            vm.resource_group, vm.name, "vmgen-sysprep"
        )
    ).result()
    for _ in range(200):  # sysprep /shutdown powers the VM off by itself
        if arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["powerState"] == "stopped":
            break
        await asyncio.sleep(0.05)
    assert arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["powerState"] == "stopped"
    assert vm.machine.snapshot()["imageState"] == windows.IMAGE_STATE_GENERALIZED
    assert vm.machine.sysprep_starts == 1


async def test_an_unknown_script_fails_the_execution_with_the_powershell_error(
    arm: ArmSimulator, compute_client: Any, windows_vm: Callable[..., Any]
) -> None:
    vm = windows_vm()
    command = await managed(compute_client, vm, "bad", "Get-Nothing")
    assert command.instance_view.execution_state == "Failed"
    assert command.instance_view.exit_code == 1
    assert "is not recognized" in command.instance_view.error


async def test_run_command_bodies_validate_against_azures_schema(
    arm: ArmSimulator, compute_client: Any, windows_vm: Callable[..., Any]
) -> None:
    vm = windows_vm()
    arm.clear_requests()
    await managed(compute_client, vm, "probe", windows.sysprep_state_script())
    checked = set()
    for record in arm.requests():
        if record.api == "arm" and record.response_body is not None:
            definition = schema.response_definition(record.operation, record.status or 0)
            assert definition is not None, record.operation
            schema.validate(definition, record.response_body)
            checked.add(definition)
    assert "VirtualMachineRunCommand" in checked


async def test_a_run_command_that_outlives_its_timeout_is_timed_out(
    arm: ArmSimulator, compute_client: Any, windows_vm: Callable[..., Any]
) -> None:
    vm = windows_vm()
    vm.machine.script_seconds = 2.0
    client = compute_client(vm.subscription_id)
    await (
        await client.virtual_machine_run_commands.begin_create_or_update(
            vm.resource_group,
            vm.name,
            "slow",
            VirtualMachineRunCommand(
                location="westeurope",
                source=VirtualMachineRunCommandScriptSource(script=windows.preflight_script()),
                async_execution=True,
                timeout_in_seconds=1,
            ),
        )
    ).result()
    for _ in range(100):
        command = await client.virtual_machine_run_commands.get_by_virtual_machine(
            vm.resource_group, vm.name, "slow", expand="instanceView"
        )
        if command.instance_view.execution_state == "TimedOut":
            break
        await asyncio.sleep(0.05)
    assert command.instance_view.execution_state == "TimedOut"


async def test_deallocate_stops_winrm_answering_and_start_restores_it(
    arm: ArmSimulator, compute_client: Any, windows_vm: Callable[..., Any]
) -> None:
    vm = windows_vm()
    target = winrm.WinRmTarget(
        host="127.0.0.1",
        port=vm.endpoint.https_port,
        username=vm.username,
        password=vm.password,
        ca_pem=vm.ca_path.read_text(),
        timeouts=winrm.WinRmTimeouts(connect=2, operation=2, read=5),
    )
    client = compute_client(vm.subscription_id)
    await (await client.virtual_machines.begin_deallocate(vm.resource_group, vm.name)).result()
    with pytest.raises(errors.GuestUnreachable):
        await winrm.WinRmClient().run(target, windows.preflight_script())
    await (await client.virtual_machines.begin_start(vm.resource_group, vm.name)).result()
    result = await winrm.WinRmClient().run(target, windows.preflight_script())
    assert windows.parse_preflight("\n".join(result.output)).findings == ()
