"""The real async Compute client reads VMs and drives their power state through the simulator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from arm_test_support import error_code, error_message
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.guest import ShellNotSupported


class RecordingGuest:
    """A guest that only remembers what the simulator asked of it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def power_on(self) -> None:
        self.calls.append("power_on")

    async def power_off(self) -> None:
        self.calls.append("power_off")

    async def run_script(self, script: str, *, shell: str, timeout: float) -> Any:  # noqa: ASYNC109 (the Guest protocol)
        raise ShellNotSupported(shell)


@pytest.fixture
def sub(arm: ArmSimulator) -> str:
    subscription = str(uuid.uuid4())
    arm.seed_vm(subscription_id=subscription, resource_group="rg-images", name="web-01")
    return subscription


def statuses(view: Any) -> list[str]:
    return [status.code for status in view.statuses]


async def test_a_vm_reads_with_its_os_type_power_state_and_agent(sub: str, compute_client: Any) -> None:
    vm = await compute_client(sub).virtual_machines.get("rg-images", "web-01", expand="instanceView")
    assert vm.storage_profile.os_disk.os_type == "Linux"
    assert statuses(vm.instance_view) == ["ProvisioningState/succeeded", "PowerState/running"]
    assert vm.instance_view.vm_agent.statuses[0].display_status == "Ready"


async def test_an_agent_that_is_not_ready_reports_not_ready(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.update_vm(sub, "rg-images", "web-01", agent_ready=False)
    view = await compute_client(sub).virtual_machines.instance_view("rg-images", "web-01")
    assert view.vm_agent.statuses[0].display_status == "Not Ready"


async def test_a_missing_vm_is_resource_not_found_with_azures_message(sub: str, compute_client: Any) -> None:
    with pytest.raises(ResourceNotFoundError) as raised:
        await compute_client(sub).virtual_machines.get("rg-images", "web-99")
    assert error_code(raised.value) == "ResourceNotFound"
    assert error_message(raised.value) == (
        "The Resource 'Microsoft.Compute/virtualMachines/web-99' under resource group 'rg-images' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )


async def test_a_missing_resource_group_is_resource_group_not_found(sub: str, compute_client: Any) -> None:
    with pytest.raises(ResourceNotFoundError) as raised:
        await compute_client(sub).virtual_machines.get("rg-nope", "web-01")
    assert error_code(raised.value) == "ResourceGroupNotFound"


async def test_deallocate_passes_through_deallocating_and_powers_the_guest_off(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub, guest = str(uuid.uuid4()), RecordingGuest()
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm", guest=guest)
    arm.set_latency("deallocate", 0.5)
    try:
        poller = await compute_client(sub).virtual_machines.begin_deallocate("rg", "vm")
        assert arm.vm_state(sub, "rg", "vm")["powerState"] == "deallocating"
        await poller.result()
    finally:
        arm.reset_latencies()
    assert arm.vm_state(sub, "rg", "vm")["powerState"] == "deallocated"
    assert guest.calls == ["power_off"]


async def test_power_off_then_start_returns_the_vm_to_running(arm: ArmSimulator, compute_client: Any) -> None:
    sub, guest = str(uuid.uuid4()), RecordingGuest()
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm", guest=guest)
    client = compute_client(sub)
    await (await client.virtual_machines.begin_power_off("rg", "vm")).result()
    assert arm.vm_state(sub, "rg", "vm")["powerState"] == "stopped"
    await (await client.virtual_machines.begin_start("rg", "vm")).result()
    assert arm.vm_state(sub, "rg", "vm")["powerState"] == "running"
    assert guest.calls == ["power_off", "power_on"]


async def test_lro_poll_urls_are_absolute_on_the_simulators_own_host(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    await (await compute_client(sub).virtual_machines.begin_power_off("rg-images", "web-01")).result()
    polls = [r for r in arm.requests() if r.path.startswith(f"/subscriptions/{sub}/providers/")]
    assert {r.operation for r in polls} == {"operationStatus", "operationResult"}


async def test_generalize_while_running_is_refused_with_azures_exact_text(
    sub: str, compute_client: Any
) -> None:
    with pytest.raises(ResourceExistsError) as raised:
        await compute_client(sub).virtual_machines.generalize("rg-images", "web-01")
    assert error_code(raised.value) == "OperationNotAllowed"
    assert error_message(raised.value) == (
        "Operation 'generalize' is not allowed on VM 'web-01' since the VM is running. Please power off "
        "explicitly in case you shut down the VM from inside the guest operating system."
    )


async def test_a_deallocated_vm_generalizes_and_shows_os_state_generalized(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    client = compute_client(sub)
    await (await client.virtual_machines.begin_deallocate("rg-images", "web-01")).result()
    assert await client.virtual_machines.generalize("rg-images", "web-01") is None
    view = await client.virtual_machines.instance_view("rg-images", "web-01")
    assert statuses(view) == ["ProvisioningState/succeeded", "PowerState/deallocated", "OSState/generalized"]
    assert view.vm_agent is None


async def test_a_generalized_vm_refuses_to_start_but_may_be_deallocated_again(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub = str(uuid.uuid4())
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm", power_state="stopped", generalized=True)
    client = compute_client(sub)
    with pytest.raises(ResourceExistsError) as raised:
        await client.virtual_machines.begin_start("rg", "vm")
    assert (
        error_message(raised.value)
        == "Operation 'start' is not allowed on VM 'vm' since the VM is generalized."
    )
    await (await client.virtual_machines.begin_deallocate("rg", "vm")).result()
    assert arm.vm_state(sub, "rg", "vm")["powerState"] == "deallocated"


async def test_a_second_power_operation_during_the_first_is_another_operation_in_progress(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    client = compute_client(sub)
    poller = await client.virtual_machines.begin_deallocate("rg-images", "web-01")
    with pytest.raises(HttpResponseError) as raised:
        await client.virtual_machines.begin_power_off("rg-images", "web-01")
    assert error_code(raised.value) == "AnotherOperationInProgress"
    await poller.result()
