"""AzureCompute.observe reads a VM through the real SDK and says what state Azure reports it in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from tests.contract.operator.conftest import RESOURCE_GROUP, SUBSCRIPTION_ID
from vmgen.adapters import azure
from vmgen.domain import errors, model


async def test_a_running_linux_vm_is_observed_with_its_os_power_state_and_ready_agent(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()

    observed = await compute.observe(vm)

    assert observed is not None
    assert replace(observed, location="", os_disk_id="", data_disks=(), hyper_v_generation="") == (
        model.VmObservation(
            id=vm.resource_id,
            os_type=model.OsType.LINUX,
            power_state=model.PowerState.RUNNING,
            generalized=False,
            agent_ready=True,
        )
    )


async def test_the_observation_carries_what_snapshots_and_images_are_made_from(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()

    observed = await compute.observe(vm)

    assert observed is not None
    assert observed.location == "westeurope"
    assert observed.os_disk_id.startswith(f"/subscriptions/{vm.subscription_id}/resourceGroups/")
    assert "/providers/Microsoft.Compute/disks/" in observed.os_disk_id
    assert observed.hyper_v_generation in ("V1", "V2")
    assert observed.security_type == "Standard"


async def test_a_deallocated_windows_vm_is_observed_as_deallocated(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm(os_type="Windows", power_state="deallocated")

    observed = await compute.observe(vm)

    assert observed is not None
    assert (observed.os_type, observed.power_state) == (model.OsType.WINDOWS, model.PowerState.DEALLOCATED)


async def test_a_generalized_vm_is_observed_as_generalized(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm(power_state="deallocated", generalized=True)

    observed = await compute.observe(vm)

    assert observed is not None and observed.generalized


async def test_a_vm_whose_agent_is_not_ready_is_observed_so(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm(agent_ready=False)

    observed = await compute.observe(vm)

    assert observed is not None and not observed.agent_ready


async def test_a_vm_that_does_not_exist_is_observed_as_none(compute: azure.AzureCompute) -> None:
    missing = model.VmRef(SUBSCRIPTION_ID, RESOURCE_GROUP, "adapter-vm-that-was-never-created")

    assert await compute.observe(missing) is None


async def test_a_vm_in_a_resource_group_that_does_not_exist_is_observed_as_none(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    seed_vm()  # the subscription exists; the resource group below does not
    missing = model.VmRef(SUBSCRIPTION_ID, "rg-that-does-not-exist", "web-01")

    assert await compute.observe(missing) is None


async def test_a_vm_in_a_subscription_azure_does_not_know_is_not_found_rather_than_absent(
    compute: azure.AzureCompute,
) -> None:
    unknown = model.VmRef("0f6c3d2e-5b1a-4c8e-9a7d-0000000000ff", RESOURCE_GROUP, "web-01")

    with pytest.raises(errors.VmNotFound, match="SubscriptionNotFound"):
        await compute.observe(unknown)
