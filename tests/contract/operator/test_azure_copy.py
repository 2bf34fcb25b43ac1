"""`AzureCopies` against the ARM simulator: a source VM's layout, its subnet, disks from snapshots, a NIC, a
VM from those disks, and their deletion, through azure-mgmt-compute and azure-mgmt-network."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.operator.conftest import RESOURCE_GROUP, SUBSCRIPTION_ID
from vmgen.adapters import azure, azure_copy, azure_images
from vmgen.domain import errors, images, model

LOCATION = "westeurope"


@pytest.fixture
def copies(compute: azure.AzureCompute) -> azure_copy.AzureCopies:
    return azure_copy.AzureCopies(compute.session)


@pytest.fixture
def capture(compute: azure.AzureCompute) -> azure_images.AzureImages:
    return azure_images.AzureImages(compute.session)


def ref(vm: model.VmRef, suffix: str) -> images.ResourceRef:
    return images.ResourceRef(vm.subscription_id, vm.resource_group, f"{vm.name}-{suffix}")


async def disks_and_nic(
    capture: azure_images.AzureImages, copies: azure_copy.AzureCopies, vm: model.VmRef
) -> tuple[images.VmLayout, images.DiskId, images.NetworkInterface]:
    layout = await copies.read_layout(vm)
    assert layout is not None
    token = await capture.begin_snapshot(
        ref(vm, "snap"), location=LOCATION, disk_id=layout.os_disk_id, incremental=True
    )
    snapshot = await capture.wait_snapshot(ref(vm, "snap"), token)
    disk_token = await copies.begin_disk_from_snapshot(
        ref(vm, "os"), location=LOCATION, snapshot_id=snapshot.id
    )
    disk = await copies.wait_disk(ref(vm, "os"), disk_token)
    source_nic = await copies.get_network_interface(layout.nic_ids[0])
    assert source_nic is not None
    nic_token = await copies.begin_network_interface(
        ref(vm, "copy-nic"), location=LOCATION, subnet_id=source_nic.subnet_id
    )
    nic = await copies.wait_network_interface(ref(vm, "copy-nic"), nic_token)
    return layout, disk, nic


def copy_request(
    layout: images.VmLayout, disk: images.DiskId, nic: images.NetworkInterface, **changes: Any
) -> images.CopyVmRequest:
    return images.CopyVmRequest(
        location=layout.location,
        size=changes.get("size", layout.size),
        os_type=model.OsType.LINUX,
        os_disk_id=disk,
        nic_id=nic.id,
        security_type=layout.security_type,
        tags=(("vmgen.io/owner", "images/web-golden"),),
    )


class TestReads:
    async def test_the_layout_names_disks_nic_size_and_security_type(
        self, copies: azure_copy.AzureCopies, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm(data_disks=2, security_type="TrustedLaunch")
        layout = await copies.read_layout(vm)
        assert layout is not None
        assert (layout.id, layout.location, layout.size, layout.os_type) == (
            vm.resource_id,
            LOCATION,
            "Standard_D2s_v5",
            model.OsType.LINUX,
        )
        assert [lun for lun, _ in layout.data_disks] == [0, 1] and "_OsDisk_1_" in layout.os_disk_id
        assert layout.nic_ids == (
            f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/"
            f"networkInterfaces/{vm.name}-nic",
        )
        assert layout.security_type is images.SecurityType.TRUSTED_LAUNCH

    async def test_a_missing_vm_has_no_layout(self, copies: azure_copy.AzureCopies) -> None:
        assert await copies.read_layout(model.VmRef(SUBSCRIPTION_ID, RESOURCE_GROUP, "no-such-vm")) is None

    async def test_the_sources_subnet_is_read_and_a_missing_subnet_is_none(
        self, copies: azure_copy.AzureCopies, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm()
        nic = await copies.get_network_interface((await copies.read_layout(vm)).nic_ids[0])  # type: ignore[union-attr]
        assert nic is not None and nic.vm_id == vm.resource_id
        subnet = await copies.get_subnet(nic.subnet_id)
        assert subnet is not None and subnet.address_prefix == "10.0.0.0/24"
        assert await copies.get_subnet(nic.subnet_id.replace("/subnets/default", "/subnets/isolated")) is None

    async def test_a_subnet_id_that_is_not_one_is_an_invalid_spec(
        self, copies: azure_copy.AzureCopies
    ) -> None:
        with pytest.raises(errors.InvalidSpec, match="is not a subnet id"):
            await copies.get_subnet(
                "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
            )


class TestCopyLifecycle:
    async def test_a_copy_vm_is_created_from_disks_and_a_nic_and_resuming_creates_nothing_twice(
        self,
        arm: Any,
        capture: azure_images.AzureImages,
        copies: azure_copy.AzureCopies,
        seed_vm: Callable[..., model.VmRef],
    ) -> None:
        vm = seed_vm()
        layout, disk, nic = await disks_and_nic(capture, copies, vm)
        assert nic.private_ip is not None and nic.vm_id is None

        token = await copies.begin_vm_from_disks(ref(vm, "copy"), copy_request(layout, disk, nic))
        created = await copies.wait_vm(ref(vm, "copy"), token)
        assert await copies.wait_vm(ref(vm, "copy"), token) == created  # a restarted operator resumes

        copy = model.VmRef(vm.subscription_id, vm.resource_group, f"{vm.name}-copy")
        state = arm.vm_state(copy.subscription_id, copy.resource_group, copy.name)
        assert (state["powerState"], created) == ("running", copy.resource_id)
        puts = [r for r in arm.requests() if r.operation == "createVm" and r.path.endswith(f"/{copy.name}")]
        assert [r.status for r in puts] == [201]
        copy_layout = await copies.read_layout(copy)
        assert copy_layout is not None and copy_layout.os_disk_id == disk
        assert dict(copy_layout.tags) == {"vmgen.io/owner": "images/web-golden"}
        assert (await copies.get_network_interface(nic.id)).vm_id == copy.resource_id  # type: ignore[union-attr]

    async def test_the_copy_is_deleted_vm_first_then_nic_and_disks_and_deleting_again_is_harmless(
        self,
        arm: Any,
        capture: azure_images.AzureImages,
        copies: azure_copy.AzureCopies,
        seed_vm: Callable[..., model.VmRef],
    ) -> None:
        vm = seed_vm()
        layout, disk, nic = await disks_and_nic(capture, copies, vm)
        await copies.wait_vm(
            ref(vm, "copy"),
            await copies.begin_vm_from_disks(ref(vm, "copy"), copy_request(layout, disk, nic)),
        )
        with pytest.raises(errors.AzureOperationNotAllowed, match="NicInUse"):
            await copies.delete_network_interface(ref(vm, "copy-nic"))

        for _ in range(2):
            await copies.delete_vm(ref(vm, "copy"))
            await copies.delete_network_interface(ref(vm, "copy-nic"))
            await copies.delete_disk(ref(vm, "os"))

        assert (
            await copies.read_layout(model.VmRef(vm.subscription_id, vm.resource_group, f"{vm.name}-copy"))
            is None
        )
        assert await copies.get_network_interface(nic.id) is None
        assert arm.resource(disk) is None
        assert arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["powerState"] == "running"


class TestRefusals:
    async def test_a_nic_in_a_subnet_that_does_not_exist_is_refused_for_good(
        self, copies: azure_copy.AzureCopies, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm()
        missing = (
            f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/"
            "virtualNetworks/nowhere/subnets/none"
        )
        with pytest.raises(errors.AzureOperationNotAllowed, match="InvalidResourceReference"):
            await copies.begin_network_interface(ref(vm, "copy-nic"), location=LOCATION, subnet_id=missing)

    async def test_a_size_that_is_not_available_is_refused_for_good(
        self,
        arm: Any,
        capture: azure_images.AzureImages,
        copies: azure_copy.AzureCopies,
        seed_vm: Callable[..., model.VmRef],
    ) -> None:
        vm = seed_vm()
        layout, disk, nic = await disks_and_nic(capture, copies, vm)
        arm.set_unavailable_sizes(["Standard_E64s_v5"])
        try:
            with pytest.raises(errors.AzureOperationNotAllowed, match="SkuNotAvailable"):
                await copies.begin_vm_from_disks(
                    ref(vm, "copy"), copy_request(layout, disk, nic, size="Standard_E64s_v5")
                )
        finally:
            arm.set_unavailable_sizes([])
