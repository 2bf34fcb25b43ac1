"""Creating a VM from attached disks and a NIC (PUT virtualMachines), and deleting VMs (DELETE).

This is how vmgen copies a VM (issue 11): snapshots -> disks -> NIC -> a VM that attaches them
(`createOption: Attach`). When the OS disk holds a guest's filesystem state (see `snapshots`) and the
simulator has a `guest_factory`, the new VM boots a new guest from that state, with its own network
namespace and address, which its NIC then reports.

Azure's preconditions, checked when the PUT arrives: the size is available in the region
(SkuNotAvailable, configurable with `set_unavailable_sizes`), the region's vCPU quota is not exceeded
(`set_cores_quota`; allocated VMs count, deallocated ones do not, and a size's vCPUs are the number in
its name, Standard_D4s_v5 -> 4), the disks exist and no other VM has them
(a disk is `managedBy` one VM), the NIC exists (InvalidResourceReference) and no other VM uses it
(NicInUse). A PUT of the same VM with the same disks and NIC is an idempotent no-op (a restarted
caller may repeat it); one that changes them is PropertyChangeNotAllowed.

Deleting a VM (DELETE, long-running) powers its guest off and discards it, detaches its disks (they
stay, `Unattached`, as with Azure's default deleteOption Detach) and frees its NIC.

Trap avoided: the guest is booted outside the world lock (it takes a fraction of a second, and a
power operation or GET must not wait for it); until it runs the VM is `Creating` / `PowerState/starting`.
"""

from __future__ import annotations

import asyncio
import re
from functools import partial
from typing import Any

from aiohttp import web

from vmgen_testbed.arm import errors, lro, network
from vmgen_testbed.arm.resources import COMPUTE, Host, compute_id, json_body, properties_of, require_group
from vmgen_testbed.arm.state import Vm
from vmgen_testbed.guest import Discardable, Guest, GuestRequest

__all__ = ["add_routes"]


def add_routes(app: web.Application, host: Host) -> None:
    path = f"{COMPUTE}/virtualMachines/{{vm}}"
    app.router.add_route("PUT", path, partial(_put_vm, host), name="createVm")
    app.router.add_route("DELETE", path, partial(_delete_vm, host), name="deleteVm")


def _disk(host: Host, disk_id: str, rg: str, vm_id: str) -> dict[str, Any]:
    disk = host.world.resources.get(disk_id.lower())
    if disk is None or disk["type"] != "Microsoft.Compute/disks":
        raise errors.resource_not_found("Microsoft.Compute/disks", disk_id.rsplit("/", 1)[-1], rg)
    owner = disk.get("managedBy")
    if owner and owner.lower() != vm_id.lower():
        raise errors.disk_in_use(disk["name"], owner)
    return disk


async def _put_vm(host: Host, request: web.Request) -> web.Response:
    subscription, rg = require_group(host.world, request)
    body = await json_body(request)
    properties = properties_of(body)
    name, location = request.match_info["vm"], str(body["location"])
    vm_id = compute_id(subscription, rg, f"virtualMachines/{name}")
    size = str((properties.get("hardwareProfile") or {}).get("vmSize") or "Standard_D2s_v5")
    storage = properties.get("storageProfile") or {}
    os_disk_id = str(((storage.get("osDisk") or {}).get("managedDisk") or {}).get("id") or "")
    data = [
        (int(d.get("lun", lun)), str((d.get("managedDisk") or {}).get("id") or ""))
        for lun, d in enumerate(storage.get("dataDisks") or [])
    ]
    nics = (properties.get("networkProfile") or {}).get("networkInterfaces") or []
    nic_id = str((nics[0] if nics else {}).get("id") or "")
    security = (properties.get("securityProfile") or {}).get("securityType")
    with host.world.lock:
        existing = host.world.vm(subscription, rg, name)
        if existing is not None:
            _same_vm(existing, os_disk_id, data, nic_id)
            return web.json_response(existing.body(with_instance_view=False), status=200)
        if size.lower() in host.world.unavailable_sizes:
            raise errors.sku_not_available(size, location)
        _check_quota(host, subscription, location, size)
        if not os_disk_id or (storage.get("osDisk") or {}).get("createOption", "Attach") != "Attach":
            raise errors.invalid_parameter(
                "The simulator creates VMs from attached managed disks only (osDisk.createOption Attach).",
                "storageProfile.osDisk",
            )
        os_disk = _disk(host, os_disk_id, rg, vm_id)
        data_bodies = [_disk(host, disk_id, rg, vm_id) for _, disk_id in data]
        nic = host.world.resources.get(nic_id.lower())
        if nic is None or nic["type"] != "Microsoft.Network/networkInterfaces":
            raise errors.referenced_resource_not_found(nic_id, vm_id)
        user = (nic["properties"].get("virtualMachine") or {}).get("id")
        if user and user.lower() != vm_id.lower():
            raise errors.nic_in_use(nic["id"], user)
        os_type = str(
            (storage.get("osDisk") or {}).get("osType") or os_disk["properties"].get("osType") or "Linux"
        )
        vm = Vm(
            subscription_id=subscription,
            resource_group=rg,
            name=name,
            os_type=os_type,
            location=location,
            power_state="starting",
            generalized=False,
            agent_ready=True,
            security_type=security if security and security != "Standard" else None,
            hyper_v_generation=str(os_disk["properties"].get("hyperVGeneration") or "V2"),
            vm_size=size,
            attached_os_disk=os_disk["id"],
            data_disks=[(lun, disk["id"]) for (lun, _), disk in zip(data, data_bodies, strict=True)],
            nic=nic["id"],
            tags={str(k): str(v) for k, v in (body.get("tags") or {}).items()},
            operation="create",
        )
        for disk in (os_disk, *data_bodies):
            disk["managedBy"] = vm.id
            disk["properties"]["diskState"] = "Attached"
        network.attach_nic(host.world, nic["id"], vm.id, None)
        host.world.add_vm(vm)
        content = host.world.disk_contents.get(os_disk["id"].lower())
        job = host.begin_operation("createVm", subscription, location, "Microsoft.Compute")
        answer = vm.body(with_instance_view=False)
    host.spawn(_boot(host, vm, job, request.method, content))
    async_url, _ = job.urls(f"https://{request.host}", request.query["api-version"])
    return web.json_response(
        answer,
        status=201,
        headers={"Azure-AsyncOperation": async_url, **lro.retry_after(host.lro_retry_after)},
    )


def vcpus(size: str) -> int:
    """Standard_D4s_v5 -> 4 (the family letters, then the vCPU count), 1 when the name has no number."""
    found = re.match(r"^[A-Za-z]+_[A-Za-z]+(\d+)", size)
    return int(found.group(1)) if found else 1


def _check_quota(host: Host, subscription: str, location: str, size: str) -> None:
    limit = host.world.cores_quota.get((subscription.lower(), location.lower()))
    if limit is None:
        return
    usage = sum(
        vcpus(vm.vm_size)
        for vm in host.world.vms.values()
        if vm.subscription_id.lower() == subscription.lower()
        and vm.location.lower() == location.lower()
        and vm.power_state != "deallocated"
    )
    if usage + vcpus(size) > limit:
        raise errors.cores_quota_exceeded(location, limit, usage, vcpus(size))


def _same_vm(vm: Vm, os_disk_id: str, data: list[tuple[int, str]], nic_id: str) -> None:
    if vm.os_disk_id.lower() != os_disk_id.lower():
        raise errors.property_change_not_allowed("osDisk.managedDisk.id")
    if sorted((lun, d.lower()) for lun, d in vm.data_disks) != sorted((lun, d.lower()) for lun, d in data):
        raise errors.property_change_not_allowed("dataDisks")
    if vm.nic_id.lower() != nic_id.lower():
        raise errors.property_change_not_allowed("networkProfile.networkInterfaces")


async def _boot(host: Host, vm: Vm, job: Any, method: str, content: Any) -> None:
    await asyncio.sleep(host.world.seconds(job.name))
    with host.world.lock:
        fault = host.world.faults.take(job.name, method, vm.id, failed_operation=True)
    guest: Guest | None = None
    failure: tuple[str, str] | None = None
    if fault is not None:
        failure = (fault.error_code, "An internal execution error occurred. Please retry later.")
    elif host.guest_factory is not None:
        try:
            guest = await host.guest_factory(
                GuestRequest(name=vm.name, os_type=vm.os_type, os_disk=content, vm_id=vm.id)
            )
        except Exception as error:  # the guest did not boot: the creation fails, as on Azure
            failure = ("OSProvisioningInternalError", f"The VM '{vm.name}' failed to start: {error}")
    with host.world.lock:
        vm.operation = None
        vm.guest = guest
        if failure is not None:
            vm.failed, vm.power_state = True, "stopped"
            job.fail(*failure)
            return
        vm.power_state = "running"
        network.attach_nic(host.world, vm.nic_id, vm.id, getattr(guest, "ip", None))
        job.succeed()


async def _delete_vm(host: Host, request: web.Request) -> web.Response:
    subscription, rg = require_group(host.world, request)
    with host.world.lock:
        vm = host.world.vm(subscription, rg, request.match_info["vm"])
        if vm is None:
            return web.Response(status=204)
        if vm.operation is not None and vm.operation != "delete":
            raise errors.another_operation_in_progress("delete", vm.name, vm.operation)
        vm.operation = "delete"
        job = host.begin_operation("deleteVm", subscription, vm.location, "Microsoft.Compute")
    host.spawn(_finish_delete(host, vm, job, request.method))
    return host.accepted(job, request)


async def _finish_delete(host: Host, vm: Vm, job: Any, method: str) -> None:
    await asyncio.sleep(host.world.seconds(job.name))
    with host.world.lock:
        fault = host.world.faults.take(job.name, method, vm.id, failed_operation=True)
        if fault is not None:
            vm.operation = None
            job.fail(fault.error_code, "An internal execution error occurred. Please retry later.")
            return
        guest, vm.guest = vm.guest, None
    if guest is not None:
        await guest.power_off()
        if isinstance(guest, Discardable):
            await guest.discard()
    with host.world.lock:
        for disk_id in vm.disk_ids():
            disk = host.world.resources.get(disk_id.lower())
            if disk is not None:
                disk.pop("managedBy", None)
                disk["properties"]["diskState"] = "Unattached"
        network.attach_nic(host.world, vm.nic_id, None, None)
        host.world.remove_vm(vm)
        job.succeed()
