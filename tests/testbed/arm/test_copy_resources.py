"""What copying a VM needs from Azure: disks from snapshots, NICs in subnets, VMs from attached disks, and
deletion, with Azure's refusals for a missing subnet, an unavailable size, and disks or NICs in use."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from arm_test_support import assert_logged_bodies_match_azure, error_code, error_message
from azure.core.exceptions import HttpResponseError

from vmgen_testbed.arm.server import ArmSimulator

LOCATION = "westeurope"


@pytest.fixture(autouse=True)
def bodies_match_azures_schema(arm: ArmSimulator) -> Iterator[None]:
    start = len(arm.requests())
    yield
    assert_logged_bodies_match_azure(arm.requests()[start:])


def prefix(sub: str, provider: str = "Microsoft.Compute") -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg/providers/{provider}"


def seed(arm: ArmSimulator, **state: Any) -> str:
    sub = str(uuid.uuid4())
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="src", **state)
    return sub


async def snapshot_and_disk(client: Any, disk_id: str, name: str) -> Any:
    await (
        await client.snapshots.begin_create_or_update(
            "rg",
            f"{name}-snap",
            {
                "location": LOCATION,
                "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk_id}},
            },
        )
    ).result()
    snapshot_id = f"{disk_id.rsplit('/disks/', 1)[0]}/snapshots/{name}-snap"
    return await (
        await client.disks.begin_create_or_update(
            "rg",
            name,
            {
                "location": LOCATION,
                "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": snapshot_id}},
            },
        )
    ).result()


async def nic_in(network: Any, name: str, subnet_id: str) -> Any:
    body = {
        "location": LOCATION,
        "properties": {
            "ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id}}}]
        },
    }
    return await (await network.network_interfaces.begin_create_or_update("rg", name, body)).result()


def vm_body(
    os_disk: str, nic: str, *, data: list[str] | None = None, size: str = "Standard_D2s_v5"
) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "tags": {"vmgen.io/owner": "images/web-golden"},
        "properties": {
            "hardwareProfile": {"vmSize": size},
            "storageProfile": {
                "osDisk": {"createOption": "Attach", "osType": "Linux", "managedDisk": {"id": os_disk}},
                "dataDisks": [
                    {"lun": lun, "createOption": "Attach", "managedDisk": {"id": disk}}
                    for lun, disk in enumerate(data or [])
                ],
            },
            "networkProfile": {"networkInterfaces": [{"id": nic, "properties": {"primary": True}}]},
        },
    }


async def copy_parts(arm: ArmSimulator, compute: Any, network: Any, sub: str) -> tuple[Any, Any, Any]:
    source = await compute.virtual_machines.get("rg", "src")
    os_disk = await snapshot_and_disk(compute, source.storage_profile.os_disk.managed_disk.id, "copy-os")
    data = await snapshot_and_disk(compute, source.storage_profile.data_disks[0].managed_disk.id, "copy-data")
    subnet = (await network.network_interfaces.get("rg", "src-nic")).ip_configurations[0].subnet.id
    nic = await nic_in(network, "copy-nic", subnet)
    return os_disk, data, nic


class TestSeededNetwork:
    async def test_a_seeded_vm_has_a_nic_in_its_groups_default_subnet(
        self, arm: ArmSimulator, compute_client: Any, network_client: Any
    ) -> None:
        sub = seed(arm)
        vm = await compute_client(sub).virtual_machines.get("rg", "src")
        nic = await network_client(sub).network_interfaces.get("rg", "src-nic")
        assert vm.network_profile.network_interfaces[0].id == nic.id
        assert nic.virtual_machine.id == vm.id
        subnet_id = nic.ip_configurations[0].subnet.id
        assert subnet_id == f"{prefix(sub, 'Microsoft.Network')}/virtualNetworks/rg-vnet/subnets/default"
        subnet = await network_client(sub).subnets.get("rg", "rg-vnet", "default")
        assert subnet.address_prefix == "10.0.0.0/24"

    async def test_a_missing_subnet_is_not_found(self, arm: ArmSimulator, network_client: Any) -> None:
        sub = seed(arm)
        with pytest.raises(HttpResponseError) as raised:
            await network_client(sub).subnets.get("rg", "rg-vnet", "isolated")
        assert raised.value.status_code == 404


class TestDisksFromSnapshots:
    async def test_a_disk_from_a_snapshot_keeps_its_os_type_and_generation_and_is_unattached(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub = seed(arm, hyper_v_generation="V1")
        client = compute_client(sub)
        disk_id = (await client.virtual_machines.get("rg", "src")).storage_profile.os_disk.managed_disk.id
        disk = await snapshot_and_disk(client, disk_id, "copy-os")
        assert (disk.os_type, disk.hyper_v_generation, disk.disk_state) == ("Linux", "V1", "Unattached")
        assert disk.creation_data.source_resource_id == f"{prefix(sub)}/snapshots/copy-os-snap"

    async def test_a_snapshot_of_a_data_disk_is_incremental_and_has_no_os_type(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub = seed(arm, data_disks=1)
        client = compute_client(sub)
        data_id = (
            (await client.virtual_machines.get("rg", "src")).storage_profile.data_disks[0].managed_disk.id
        )
        snapshot = await (
            await client.snapshots.begin_create_or_update(
                "rg",
                "data-snap",
                {
                    "location": LOCATION,
                    "properties": {
                        "incremental": True,
                        "creationData": {"createOption": "Copy", "sourceResourceId": data_id},
                    },
                },
            )
        ).result()
        assert (snapshot.incremental, snapshot.os_type) == (True, None)

    async def test_a_disk_from_a_missing_snapshot_is_resource_not_found(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub = seed(arm)
        body = {
            "location": LOCATION,
            "properties": {
                "creationData": {"createOption": "Copy", "sourceResourceId": f"{prefix(sub)}/snapshots/nope"}
            },
        }
        with pytest.raises(HttpResponseError) as raised:
            await compute_client(sub).disks.begin_create_or_update("rg", "d", body)
        assert error_code(raised.value) == "ResourceNotFound"


class TestCopyVms:
    async def test_a_nic_in_a_subnet_that_does_not_exist_is_refused_with_azures_text(
        self, arm: ArmSimulator, network_client: Any
    ) -> None:
        sub = seed(arm)
        subnet = f"{prefix(sub, 'Microsoft.Network')}/virtualNetworks/rg-vnet/subnets/isolated"
        with pytest.raises(HttpResponseError) as raised:
            await nic_in(network_client(sub), "copy-nic", subnet)
        assert error_code(raised.value) == "InvalidResourceReference"
        assert error_message(raised.value) == (
            f"Resource {subnet} referenced by resource {prefix(sub, 'Microsoft.Network')}/networkInterfaces/"
            "copy-nic was not found. Please make sure that the referenced resource exists, and that both "
            "resources are in the same region."
        )

    async def test_a_vm_from_attached_disks_and_a_nic_runs_and_owns_them(
        self, arm: ArmSimulator, compute_client: Any, network_client: Any
    ) -> None:
        sub = seed(arm, data_disks=1)
        compute, network = compute_client(sub), network_client(sub)
        os_disk, data, nic = await copy_parts(arm, compute, network, sub)
        poller = await compute.virtual_machines.begin_create_or_update(
            "rg", "copy", vm_body(os_disk.id, nic.id, data=[data.id])
        )
        vm = await poller.result()
        assert (vm.provisioning_state, vm.tags) == ("Succeeded", {"vmgen.io/owner": "images/web-golden"})
        assert vm.storage_profile.os_disk.managed_disk.id == os_disk.id
        assert [d.managed_disk.id for d in vm.storage_profile.data_disks] == [data.id]
        view = await compute.virtual_machines.instance_view("rg", "copy")
        assert "PowerState/running" in [s.code for s in view.statuses]
        assert (await compute.disks.get("rg", "copy-os")).managed_by == vm.id
        assert (await network.network_interfaces.get("rg", "copy-nic")).virtual_machine.id == vm.id
        again = await (
            await compute.virtual_machines.begin_create_or_update(
                "rg", "copy", vm_body(os_disk.id, nic.id, data=[data.id])
            )
        ).result()
        assert again.vm_id == vm.vm_id  # the same PUT again changes nothing

    async def test_a_size_that_is_not_available_is_refused_before_anything_is_attached(
        self, arm: ArmSimulator, compute_client: Any, network_client: Any
    ) -> None:
        sub = seed(arm, data_disks=1)
        compute, network = compute_client(sub), network_client(sub)
        os_disk, _, nic = await copy_parts(arm, compute, network, sub)
        arm.set_unavailable_sizes(["Standard_D4s_v5"])
        try:
            with pytest.raises(HttpResponseError) as raised:
                await compute.virtual_machines.begin_create_or_update(
                    "rg", "copy", vm_body(os_disk.id, nic.id, size="Standard_D4s_v5")
                )
        finally:
            arm.set_unavailable_sizes([])
        assert error_code(raised.value) == "SkuNotAvailable"
        assert "Standard_D4s_v5' is currently not available in location 'westeurope'" in error_message(
            raised.value
        )
        assert (await compute.disks.get("rg", "copy-os")).disk_state == "Unattached"

    async def test_attached_disks_and_nics_cannot_be_deleted_or_used_twice(
        self, arm: ArmSimulator, compute_client: Any, network_client: Any
    ) -> None:
        sub = seed(arm, data_disks=1)
        compute, network = compute_client(sub), network_client(sub)
        os_disk, _, nic = await copy_parts(arm, compute, network, sub)
        await (
            await compute.virtual_machines.begin_create_or_update("rg", "copy", vm_body(os_disk.id, nic.id))
        ).result()
        with pytest.raises(HttpResponseError) as disk_refused:
            await compute.disks.begin_delete("rg", "copy-os")
        with pytest.raises(HttpResponseError) as nic_refused:
            await network.network_interfaces.begin_delete("rg", "copy-nic")
        with pytest.raises(HttpResponseError) as twice:
            await compute.virtual_machines.begin_create_or_update("rg", "copy2", vm_body(os_disk.id, nic.id))
        assert error_code(disk_refused.value) == "OperationNotAllowed"
        assert error_code(nic_refused.value) == "NicInUse"
        assert error_code(twice.value) == "OperationNotAllowed"

    async def test_deleting_the_vm_detaches_its_disks_and_frees_its_nic_for_deletion(
        self, arm: ArmSimulator, compute_client: Any, network_client: Any
    ) -> None:
        sub = seed(arm, data_disks=1)
        compute, network = compute_client(sub), network_client(sub)
        os_disk, data, nic = await copy_parts(arm, compute, network, sub)
        await (
            await compute.virtual_machines.begin_create_or_update(
                "rg", "copy", vm_body(os_disk.id, nic.id, data=[data.id])
            )
        ).result()
        await (await compute.virtual_machines.begin_delete("rg", "copy")).result()
        assert arm.world.vm(sub, "rg", "copy") is None
        assert (await compute.disks.get("rg", "copy-os")).disk_state == "Unattached"
        await (await network.network_interfaces.begin_delete("rg", "copy-nic")).result()
        for disk in ("copy-os", "copy-data"):
            await (await compute.disks.begin_delete("rg", disk)).result()
        await (await compute.snapshots.begin_delete("rg", "copy-os-snap")).result()
        assert [arm.resource(f"{prefix(sub)}/disks/{d}") for d in ("copy-os", "copy-data")] == [None, None]
        assert arm.resource(f"{prefix(sub, 'Microsoft.Network')}/networkInterfaces/copy-nic") is None
        await (await compute.virtual_machines.begin_delete("rg", "copy")).result()  # gone: 204, no error
        assert arm.vm_state(sub, "rg", "src")["powerState"] == "running"

    async def test_a_vm_beyond_the_regional_cores_quota_is_refused_with_azures_text(
        self, arm: ArmSimulator, compute_client: Any, network_client: Any
    ) -> None:
        sub = seed(arm, data_disks=1)
        compute, network = compute_client(sub), network_client(sub)
        os_disk, _, nic = await copy_parts(arm, compute, network, sub)
        arm.set_cores_quota(sub, LOCATION, 4)  # the running source uses 2 of them
        with pytest.raises(HttpResponseError) as raised:
            await compute.virtual_machines.begin_create_or_update(
                "rg", "copy", vm_body(os_disk.id, nic.id, size="Standard_D4s_v5")
            )
        assert error_code(raised.value) == "OperationNotAllowed"
        assert error_message(raised.value).startswith(
            "Operation could not be completed as it results in exceeding approved Total Regional Cores "
            "quota. Additional details - Deployment Model: Resource Manager, Location: westeurope, Current "
            "Limit: 4, Current Usage: 2, Additional Required: 4, (Minimum) New Limit Required: 6."
        )
        vm = await (
            await compute.virtual_machines.begin_create_or_update("rg", "copy", vm_body(os_disk.id, nic.id))
        ).result()
        assert vm.hardware_profile.vm_size == "Standard_D2s_v5"  # 2 + 2 fits in 4
