"""`linux_vm` seeds a sandbox into the ARM simulator: Azure power operations and Run Command reach it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from azure.mgmt.compute.models import RunCommandInput
from linux_ssh import run

from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.linux_fixtures import TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION_ID, TestVm

pytestmark = pytest.mark.root


def answers_on_ssh_port(vm: TestVm) -> bool:
    try:
        socket.create_connection((vm.sandbox.ip, vm.sandbox.port), timeout=2).close()
    except OSError:
        return False
    return True


def test_linux_vm_is_a_running_linux_vm_in_the_simulator_backed_by_its_sandbox(
    linux_vm: Callable[..., TestVm], arm: ArmSimulator
) -> None:
    vm = linux_vm(username="ops")

    state = arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)

    assert (vm.subscription_id, vm.resource_group) == (TEST_SUBSCRIPTION_ID, TEST_RESOURCE_GROUP)
    assert state["powerState"] == "running" and not state["generalized"]
    assert vm.sandbox.username == "ops" and vm.sandbox.running


async def test_deallocate_through_the_sdk_stops_the_guests_sshd_and_start_brings_it_back(
    linux_vm: Callable[..., TestVm], compute_client: Callable[..., Any]
) -> None:
    vm = linux_vm()
    client = compute_client(vm.subscription_id)

    await (await client.virtual_machines.begin_deallocate(vm.resource_group, vm.name)).result()

    assert not answers_on_ssh_port(vm)

    await (await client.virtual_machines.begin_start(vm.resource_group, vm.name)).result()

    assert (await run(vm.sandbox, "hostname")).stdout == f"{vm.name}\n"


async def test_run_command_through_the_sdk_runs_inside_the_guest(
    linux_vm: Callable[..., TestVm], compute_client: Callable[..., Any]
) -> None:
    vm = linux_vm()
    client = compute_client(vm.subscription_id)
    command = RunCommandInput(command_id="RunShellScript", script=["hostname", "id -un"])

    poller = await client.virtual_machines.begin_run_command(vm.resource_group, vm.name, command)
    result = await poller.result()

    assert f"{vm.name}\nroot\n" in result.value[0].message
