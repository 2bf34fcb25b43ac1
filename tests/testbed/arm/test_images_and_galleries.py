"""Capturing a generalized VM: managed images, snapshots and gallery image versions, as long-running PUTs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from arm_test_support import error_code, error_message
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from vmgen_testbed.arm.server import ArmSimulator


def seed(arm: ArmSimulator, *, generalized: bool) -> tuple[str, str]:
    sub = str(uuid.uuid4())
    arm.seed_vm(
        subscription_id=sub,
        resource_group="rg",
        name="vm",
        power_state="deallocated",
        generalized=generalized,
    )
    return sub, f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"


async def test_an_image_of_a_generalized_vm_is_created_and_readable(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub, vm_id = seed(arm, generalized=True)
    client = compute_client(sub)
    poller = await client.images.begin_create_or_update(
        "rg", "golden", {"location": "westeurope", "properties": {"sourceVirtualMachine": {"id": vm_id}}}
    )
    image = await poller.result()
    assert image.provisioning_state == "Succeeded"
    assert (image.storage_profile.os_disk.os_type, image.storage_profile.os_disk.os_state) == (
        "Linux",
        "Generalized",
    )
    assert (await client.images.get("rg", "golden")).source_virtual_machine.id == vm_id


async def test_an_image_of_a_vm_that_is_not_generalized_is_refused(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub, vm_id = seed(arm, generalized=False)
    with pytest.raises(ResourceExistsError) as raised:
        await compute_client(sub).images.begin_create_or_update(
            "rg", "golden", {"location": "westeurope", "properties": {"sourceVirtualMachine": {"id": vm_id}}}
        )
    assert error_code(raised.value) == "OperationNotAllowed"
    assert error_message(raised.value) == (
        "The operation 'Create Image' requires the Virtual Machine 'vm' to be Generalized."
    )


async def test_a_snapshot_of_the_os_disk_is_created(arm: ArmSimulator, compute_client: Any) -> None:
    sub, _ = seed(arm, generalized=False)
    client = compute_client(sub)
    disk_id = (await client.virtual_machines.get("rg", "vm")).storage_profile.os_disk.managed_disk.id
    poller = await client.snapshots.begin_create_or_update(
        "rg",
        "snap",
        {
            "location": "westeurope",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk_id}},
        },
    )
    snapshot = await poller.result()
    assert (snapshot.provisioning_state, snapshot.os_type) == ("Succeeded", "Linux")


async def test_a_missing_image_is_resource_not_found(arm: ArmSimulator, compute_client: Any) -> None:
    sub, _ = seed(arm, generalized=False)
    with pytest.raises(ResourceNotFoundError) as raised:
        await compute_client(sub).images.get("rg", "nope")
    assert error_code(raised.value) == "ResourceNotFound"
    assert error_message(raised.value).startswith(
        "The Resource 'Microsoft.Compute/images/nope' under resource group 'rg' was not found."
    )


async def test_a_gallery_image_version_is_captured_from_a_generalized_vm(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub, vm_id = seed(arm, generalized=True)
    arm.seed_gallery_image(subscription_id=sub, resource_group="rg", gallery="gal", image="web")
    client = compute_client(sub)
    poller = await client.gallery_image_versions.begin_create_or_update(
        "rg",
        "gal",
        "web",
        "1.0.0",
        {"location": "westeurope", "properties": {"storageProfile": {"source": {"virtualMachineId": vm_id}}}},
    )
    version = await poller.result()
    assert version.provisioning_state == "Succeeded"
    fetched = await client.gallery_image_versions.get("rg", "gal", "web", "1.0.0")
    assert fetched.storage_profile.source.virtual_machine_id == vm_id


async def test_galleries_and_image_definitions_can_be_created_by_put(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub, _ = seed(arm, generalized=True)
    client = compute_client(sub)
    gallery = await (
        await client.galleries.begin_create_or_update("rg", "gal", {"location": "westeurope"})
    ).result()
    assert gallery.provisioning_state == "Succeeded"
    image = await (
        await client.gallery_images.begin_create_or_update(
            "rg",
            "gal",
            "web",
            {
                "location": "westeurope",
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "identifier": {"publisher": "contoso", "offer": "web", "sku": "1"},
                },
            },
        )
    ).result()
    assert image.provisioning_state == "Succeeded"


async def test_a_version_under_a_missing_image_definition_is_parent_not_found(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub, vm_id = seed(arm, generalized=True)
    with pytest.raises(HttpResponseError) as raised:
        await compute_client(sub).gallery_image_versions.begin_create_or_update(
            "rg",
            "gal",
            "web",
            "1.0.0",
            {
                "location": "westeurope",
                "properties": {"storageProfile": {"source": {"virtualMachineId": vm_id}}},
            },
        )
    assert error_code(raised.value) == "ParentResourceNotFound"
