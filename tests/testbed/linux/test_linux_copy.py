"""A copy of a running Linux VM, made the Azure way (snapshot -> disk -> NIC -> VM), boots a sandbox of its
own: the filesystem as it was when the snapshot was requested (point-in-time), its own network namespace
and address, and nothing shared with the source afterwards. Deleting the copy VM removes its sandbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from linux_ssh import run

from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.arm.state import DEFAULT_OPERATION_SECONDS
from vmgen_testbed.linux.sandbox import LinuxSandbox
from vmgen_testbed.linux_fixtures import TestVm

pytestmark = pytest.mark.root
LOCATION = "westeurope"


async def copy_vm(
    compute: Any,
    network: Any,
    vm: TestVm,
    name: str,
    *,
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """The dozen calls people make by hand: snapshot the OS disk, a disk from it, a NIC, a VM."""
    rg = vm.resource_group
    source = await compute.virtual_machines.get(rg, vm.name)
    disk_id = source.storage_profile.os_disk.managed_disk.id
    poller = await compute.snapshots.begin_create_or_update(
        rg,
        f"{name}-snap",
        {
            "location": LOCATION,
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk_id}},
        },
    )
    if meanwhile is not None:  # the guest goes on while the snapshot operation completes
        await meanwhile()
    snapshot = await poller.result()
    disk = await (
        await compute.disks.begin_create_or_update(
            rg,
            f"{name}-os",
            {
                "location": LOCATION,
                "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": snapshot.id}},
            },
        )
    ).result()
    subnet = (await network.network_interfaces.get(rg, f"{vm.name}-nic")).ip_configurations[0].subnet.id
    nic = await (
        await network.network_interfaces.begin_create_or_update(
            rg,
            f"{name}-nic",
            {
                "location": LOCATION,
                "properties": {
                    "ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet}}}]
                },
            },
        )
    ).result()
    body = {
        "location": LOCATION,
        "properties": {
            "hardwareProfile": {"vmSize": source.hardware_profile.vm_size},
            "storageProfile": {
                "osDisk": {"createOption": "Attach", "osType": "Linux", "managedDisk": {"id": disk.id}}
            },
            "networkProfile": {"networkInterfaces": [{"id": nic.id}]},
        },
    }
    return await (await compute.virtual_machines.begin_create_or_update(rg, name, body)).result()


def exists(path: Path) -> bool:
    return path.exists()


def as_source_user(copy: LinuxSandbox, source: LinuxSandbox) -> LinuxSandbox:
    """The copy knows no private key (it is the user's); log in with the source's, as its owner would."""
    copy.private_key = source.private_key
    return copy


async def test_a_copy_boots_with_the_sources_files_at_snapshot_time_and_an_address_of_its_own(
    linux_vm: Callable[..., TestVm],
    linux_copies: dict[str, LinuxSandbox],
    arm: ArmSimulator,
    compute_client: Callable[..., Any],
    network_client: Callable[..., Any],
) -> None:
    vm = linux_vm()
    source = vm.sandbox
    assert (await run(source, "echo before-snapshot > /tmp/marker && sudo rm /etc/motd")).exit_status == 0
    compute, network = compute_client(vm.subscription_id), network_client(vm.subscription_id)

    async def write_later() -> None:
        assert (await run(source, "echo after-snapshot > /tmp/later")).exit_status == 0

    arm.set_latency("createSnapshot", 2.0)  # the write lands while the snapshot operation still runs
    try:
        created = await copy_vm(compute, network, vm, f"{vm.name}-copy", meanwhile=write_later)
    finally:
        arm.set_latency("createSnapshot", DEFAULT_OPERATION_SECONDS)

    copy = as_source_user(linux_copies[f"{vm.name}-copy"], source)
    nic = await network.network_interfaces.get(vm.resource_group, f"{vm.name}-copy-nic")
    assert nic.ip_configurations[0].private_ip_address == copy.ip != source.ip
    assert copy.netns != source.netns and copy.username == source.username
    assert sorted(copy.host_keys) == sorted(source.host_keys)  # a copied disk keeps its host keys
    looked = await run(
        copy, "cat /tmp/marker; test -e /etc/motd; echo motd=$?; test -e /tmp/later; echo later=$?"
    )
    assert looked.stdout.split() == ["before-snapshot", "motd=1", "later=1"]
    assert created.provisioning_state == "Succeeded"

    assert (await run(copy, "echo copy-only > /tmp/copy")).exit_status == 0
    assert (await run(source, "test -e /tmp/copy; echo $?")).stdout.strip() == "1"


async def test_a_copy_of_a_deprovisioned_disk_boots_without_ssh_like_azure(
    linux_vm: Callable[..., TestVm],
    linux_copies: dict[str, LinuxSandbox],
    compute_client: Callable[..., Any],
    network_client: Callable[..., Any],
) -> None:
    vm = linux_vm()
    await run(vm.sandbox, "sudo rm -f /etc/ssh/ssh_host_*")
    await copy_vm(
        compute_client(vm.subscription_id), network_client(vm.subscription_id), vm, f"{vm.name}-copy"
    )
    copy = linux_copies[f"{vm.name}-copy"]
    assert copy.host_keys == [] and not copy.running
    with pytest.raises((OSError, asyncssh.Error)):
        await asyncssh.connect(copy.ip, port=22, known_hosts=None, connect_timeout=3)


async def test_deleting_the_copy_vm_removes_its_sandbox_and_leaves_the_source_running(
    linux_vm: Callable[..., TestVm],
    linux_copies: dict[str, LinuxSandbox],
    arm: ArmSimulator,
    compute_client: Callable[..., Any],
    network_client: Callable[..., Any],
) -> None:
    vm = linux_vm()
    compute = compute_client(vm.subscription_id)
    await copy_vm(compute, network_client(vm.subscription_id), vm, f"{vm.name}-copy")
    copy = linux_copies[f"{vm.name}-copy"]
    assert exists(Path(f"/run/netns/{copy.netns}"))

    await (await compute.virtual_machines.begin_delete(vm.resource_group, f"{vm.name}-copy")).result()

    assert not exists(Path(f"/run/netns/{copy.netns}")) and not exists(copy.rootfs)
    assert arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["powerState"] == "running"
    assert (await run(vm.sandbox, "true")).exit_status == 0
