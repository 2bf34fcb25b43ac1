"""A copy of a VM through the real async SDKs: its layout, disks from snapshots, a NIC in a subnet, a VM that
attaches them, and their deletion (issue 11).

`AzureCopies(session)` implements `images.VmCopier` on an `azure.AzureSession` (shared with the
`AzureCompute` that owns it: `AzureCopies(compute.session)`); azure-mgmt-compute for disks and VMs,
azure-mgmt-network for subnets and NICs.

Traps it avoids:
- The copy's VM attaches its disks (`createOption: Attach`, no osProfile): it keeps the source's users,
  keys and agent state, which is the point. Its NIC is created without a public IP.
- A subnet that does not exist is read first (`get_subnet` -> None), so a copy fails before any disk
  is created; the NIC PUT would say the same (InvalidResourceReference) but only after the disks.
- Creations return the continuation token at once (record it, then `wait_*`); a repeated VM PUT with
  the same disks and NIC is a no-op in Azure, so resuming never makes a second VM.
- azure-mgmt-network is imported on the first copy, not at start: it costs about 40 MiB of RSS that an
  operator without copy jobs never needs (docs/benchmarks.md, memory).
- Deleting: the VM first (it holds disks and NIC: Azure refuses to delete them while attached), then
  the NIC and disks; each delete is idempotent.
"""

from __future__ import annotations

import importlib
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import models as azmodels

from vmgen.adapters import azure
from vmgen.adapters.azure_images import lost_or_failed, os_type_of, resume
from vmgen.domain import errors, images, model

__all__ = ["AzureCopies"]

_MISSING = frozenset({"ResourceNotFound", "NotFound", "ResourceGroupNotFound", "ParentResourceNotFound"})


class AzureCopies:
    """`images.VmCopier` on a shared `AzureSession` (which its owner closes)."""

    def __init__(self, session: azure.AzureSession) -> None:
        self._session = session

    # ---- reads --------------------------------------------------------------------------------------

    async def read_layout(self, vm: model.VmRef) -> images.VmLayout | None:
        client = self._session.compute(vm.subscription_id)
        found = await self._read(client.virtual_machines.get(vm.resource_group, vm.name))
        if found is None:
            return None
        storage = found.storage_profile
        os_disk = storage.os_disk if storage else None
        security = found.security_profile
        return images.VmLayout(
            id=model.VmResourceId(str(found.id)),
            location=str(found.location),
            size=str(found.hardware_profile.vm_size) if found.hardware_profile else "",
            os_type=os_type_of(os_disk.os_type if os_disk else None),
            os_disk_id=str(os_disk.managed_disk.id) if os_disk and os_disk.managed_disk else "",
            data_disks=tuple(
                (int(disk.lun), str(disk.managed_disk.id))
                for disk in (storage.data_disks or [] if storage else [])
                if disk.managed_disk is not None
            ),
            nic_ids=tuple(
                str(nic.id)
                for nic in (found.network_profile.network_interfaces or [] if found.network_profile else [])
            ),
            security_type=images.SecurityType.parse(
                _text(security.security_type) if security is not None else None
            ),
            tags=tuple(sorted((found.tags or {}).items())),
        )

    async def get_subnet(self, subnet_id: str) -> images.Subnet | None:
        parts = _parts(subnet_id)
        if parts is None or "virtualnetworks" not in parts or "subnets" not in parts:
            raise errors.InvalidSpec(
                f"{subnet_id!r} is not a subnet id (.../virtualNetworks/<vnet>/subnets/<name>)"
            )
        network = self._session.network(parts["subscriptions"])
        found = await self._read(
            network.subnets.get(parts["resourcegroups"], parts["virtualnetworks"], parts["subnets"])
        )
        if found is None:
            return None
        return images.Subnet(
            id=images.SubnetId(str(found.id)), address_prefix=str(found.address_prefix or "")
        )

    async def get_network_interface(self, nic_id: str) -> images.NetworkInterface | None:
        parts = _parts(nic_id)
        if parts is None or "networkinterfaces" not in parts:
            raise errors.InvalidSpec(f"{nic_id!r} is not a network interface id")
        network = self._session.network(parts["subscriptions"])
        found = await self._read(
            network.network_interfaces.get(parts["resourcegroups"], parts["networkinterfaces"])
        )
        return _nic(found) if found is not None else None

    # ---- creations ------------------------------------------------------------------------------------

    async def begin_disk_from_snapshot(
        self, ref: images.ResourceRef, *, location: str, snapshot_id: str, tags: images.Tags = ()
    ) -> model.ContinuationToken:
        body = azmodels.Disk(
            {
                "location": location,
                "tags": dict(tags),
                "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": snapshot_id}},
            }
        )
        with self._session.translated():
            poller = await self._session.compute(ref.subscription_id).disks.begin_create_or_update(
                ref.resource_group, ref.name, body, polling_interval=self._copy_poll()
            )
        return model.ContinuationToken(poller.continuation_token())

    async def wait_disk(self, ref: images.ResourceRef, token: model.ContinuationToken) -> images.DiskId:
        disks = self._session.compute(ref.subscription_id).disks
        found = await resume(
            self._session,
            "disk creation",
            lambda: disks.begin_create_or_update(
                ref.resource_group,
                ref.name,
                azmodels.Disk({}),
                continuation_token=token,
                polling_interval=self._copy_poll(),
            ),
        )
        return images.DiskId(str(found.id))

    async def begin_network_interface(
        self, ref: images.ResourceRef, *, location: str, subnet_id: str, tags: images.Tags = ()
    ) -> model.ContinuationToken:
        body = _network_models().NetworkInterface(
            {
                "location": location,
                "tags": dict(tags),
                "properties": {
                    "ipConfigurations": [
                        {
                            "name": "ipconfig1",
                            "properties": {
                                "subnet": {"id": subnet_id},
                                "privateIPAllocationMethod": "Dynamic",
                            },
                        }
                    ]
                },
            }
        )
        with self._session.translated():
            poller = await self._session.network(
                ref.subscription_id
            ).network_interfaces.begin_create_or_update(
                ref.resource_group, ref.name, body, polling_interval=self._copy_poll()
            )
        return model.ContinuationToken(poller.continuation_token())

    async def wait_network_interface(
        self, ref: images.ResourceRef, token: model.ContinuationToken
    ) -> images.NetworkInterface:
        nics = self._session.network(ref.subscription_id).network_interfaces
        found = await resume(
            self._session,
            "network interface creation",
            lambda: nics.begin_create_or_update(
                ref.resource_group,
                ref.name,
                _network_models().NetworkInterface({}),
                continuation_token=token,
                polling_interval=self._copy_poll(),
            ),
        )
        return _nic(found)

    async def begin_vm_from_disks(
        self, ref: images.ResourceRef, request: images.CopyVmRequest
    ) -> model.ContinuationToken:
        properties: dict[str, Any] = {
            "hardwareProfile": {"vmSize": request.size},
            "storageProfile": {
                "osDisk": {
                    "createOption": "Attach",
                    "osType": request.os_type.value,
                    "managedDisk": {"id": request.os_disk_id},
                },
                "dataDisks": [
                    {"lun": lun, "createOption": "Attach", "managedDisk": {"id": disk}}
                    for lun, disk in request.data_disks
                ],
            },
            "networkProfile": {
                "networkInterfaces": [{"id": request.nic_id, "properties": {"primary": True}}]
            },
        }
        if request.security_type not in (images.SecurityType.STANDARD, images.SecurityType.UNKNOWN):
            properties["securityProfile"] = {
                "securityType": request.security_type.value,
                "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
            }
        body = azmodels.VirtualMachine(
            {"location": request.location, "tags": dict(request.tags), "properties": properties}
        )
        with self._session.translated():
            poller = await self._session.compute(ref.subscription_id).virtual_machines.begin_create_or_update(
                ref.resource_group, ref.name, body, polling_interval=self._copy_poll()
            )
        return model.ContinuationToken(poller.continuation_token())

    async def wait_vm(self, ref: images.ResourceRef, token: model.ContinuationToken) -> model.VmResourceId:
        vms = self._session.compute(ref.subscription_id).virtual_machines
        found = await resume(
            self._session,
            "VM creation",
            lambda: vms.begin_create_or_update(
                ref.resource_group,
                ref.name,
                azmodels.VirtualMachine({}),
                continuation_token=token,
                polling_interval=self._copy_poll(),
            ),
        )
        return model.VmResourceId(str(found.id))

    # ---- deletions --------------------------------------------------------------------------------------

    async def delete_vm(self, ref: images.ResourceRef) -> None:
        vms = self._session.compute(ref.subscription_id).virtual_machines
        await self._remove(
            "VM deletion", vms.begin_delete(ref.resource_group, ref.name, polling_interval=self._copy_poll())
        )

    async def delete_disk(self, ref: images.ResourceRef) -> None:
        disks = self._session.compute(ref.subscription_id).disks
        await self._remove(
            "disk deletion",
            disks.begin_delete(ref.resource_group, ref.name, polling_interval=self._copy_poll()),
        )

    async def delete_network_interface(self, ref: images.ResourceRef) -> None:
        nics = self._session.network(ref.subscription_id).network_interfaces
        await self._remove(
            "network interface deletion",
            nics.begin_delete(ref.resource_group, ref.name, polling_interval=self._copy_poll()),
        )

    # ---- plumbing -----------------------------------------------------------------------------------------
    # Named apart from AzureImages' helpers (their signatures differ): AzureAccount inherits both.

    def _copy_poll(self) -> float:
        return self._session.settings.poll_interval

    async def _read(self, call: Any) -> Any:
        with self._session.translated():
            try:
                return await call
            except ResourceNotFoundError as exc:
                if exc.error is None or exc.error.code in _MISSING:
                    return None
                raise

    async def _remove(self, what: str, begin: Any) -> None:
        with self._session.translated():
            poller = await begin
            try:
                await poller.result()
            except HttpResponseError as exc:
                raise lost_or_failed(exc, what, self._session.secret) from exc


def _parts(resource_id: str) -> dict[str, str] | None:
    """`/subscriptions/s/resourceGroups/rg/providers/<namespace>/kind/name/...` -> {"subscriptions": s,
    "resourcegroups": rg, "kind": name, ...} with lower-cased keys; None for anything else."""
    segments = [segment for segment in resource_id.split("/") if segment]
    lowered = [segment.lower() for segment in segments]
    if len(segments) < 6 or lowered[0] != "subscriptions" or lowered[2] != "resourcegroups":
        return None
    if lowered[4] != "providers":
        return None
    tail = segments[6:]
    named = {key.lower(): value for key, value in zip(tail[0::2], tail[1::2], strict=False)}
    return {"subscriptions": segments[1], "resourcegroups": segments[3], **named}


def _text(value: object) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _nic(found: Any) -> images.NetworkInterface:
    configuration = (found.ip_configurations or [None])[0]
    subnet = configuration.subnet.id if configuration is not None and configuration.subnet is not None else ""
    vm = found.virtual_machine
    return images.NetworkInterface(
        id=images.NicId(str(found.id)),
        subnet_id=images.SubnetId(str(subnet)),
        private_ip=str(configuration.private_ip_address)
        if configuration and configuration.private_ip_address
        else None,
        vm_id=str(vm.id) if vm is not None and vm.id else None,
        provisioning_state=_text(found.provisioning_state) or "Unknown",
    )


def _network_models() -> Any:
    """azure.mgmt.network.models, imported on first use (the package pulls in all of its operations)."""
    return importlib.import_module("azure.mgmt.network.models")
