"""Managed images (Microsoft.Compute/images): captured from a generalized VM, or from a disk/snapshot.

Azure's preconditions for `sourceVirtualMachine`, checked when the PUT arrives (the SDK sees them as
the PUT's own error, before any polling): the VM exists, it is generalized (409 OperationNotAllowed
"The operation 'Create Image' requires the Virtual Machine '<vm>' to be Generalized."), and it is not
a Trusted Launch or Confidential VM ("Creation of managed images are not supported for virtual machine
with TrustedLaunch security type."). The image takes the VM's Hyper-V generation; a request that names
another one is refused, since Azure cannot boot a V2 disk as V1.

Traps avoided: images answer 201 (the SDK's `begin_create_or_update` accepts only 200/201 here), and
a managed image keeps its source VM's id even after that VM is deleted.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from vmgen_testbed.arm import errors
from vmgen_testbed.arm.resources import (
    COMPUTE,
    Host,
    delete_lro,
    get_resource,
    json_body,
    properties_of,
    put_lro,
    require_group,
    resource,
)
from vmgen_testbed.arm.state import Vm

__all__ = ["add_routes", "source_vm"]


def add_routes(app: web.Application, host: Host) -> None:
    path = f"{COMPUTE}/images/{{name}}"
    app.router.add_route("GET", path, partial(get_resource, host), name="getImage")
    app.router.add_route("PUT", path, partial(_put_image, host), name="createImage")
    app.router.add_route("DELETE", path, partial(delete_lro, host), name="deleteImage")


def source_vm(host: Host, resource_id: str, rg: str) -> Vm:
    vm = host.world.vm_by_id(resource_id)
    if vm is None:
        raise errors.resource_not_found(
            "Microsoft.Compute/virtualMachines", resource_id.rsplit("/", 1)[-1], rg
        )
    return vm


async def _put_image(host: Host, request: web.Request) -> web.Response:
    _, rg = require_group(host.world, request)
    body = await json_body(request)
    properties = properties_of(body)
    with host.world.lock:
        built = _build(host, properties, rg)
        image = resource(
            request.path,
            request.match_info["name"],
            "Microsoft.Compute/images",
            body["location"],
            built,
            body.get("tags"),
        )
    return await put_lro(host, request, image, initial_status=201)


def _build(host: Host, properties: dict[str, Any], rg: str) -> dict[str, Any]:
    source = (properties.get("sourceVirtualMachine") or {}).get("id")
    if source is None:
        storage = properties.get("storageProfile") or {}
        if not (storage.get("osDisk") or {}).get("osType"):
            raise errors.invalid_parameter(
                "Either sourceVirtualMachine or storageProfile.osDisk must be given.", "properties"
            )
        return {"storageProfile": storage, "hyperVGeneration": properties.get("hyperVGeneration", "V2")}
    vm = source_vm(host, source, rg)
    if not vm.generalized:
        raise errors.image_requires_generalized(vm.name)
    if vm.security_type is not None:
        raise errors.managed_image_of_security_type(vm.security_type)
    asked = properties.get("hyperVGeneration")
    if asked is not None and asked != vm.hyper_v_generation:
        raise errors.hyper_v_generation_differs(vm.id, vm.hyper_v_generation, str(asked))
    zone_resilient = bool((properties.get("storageProfile") or {}).get("zoneResilient", False))
    return {
        "sourceVirtualMachine": {"id": vm.id},
        "hyperVGeneration": vm.hyper_v_generation,
        "storageProfile": {
            "osDisk": {
                "osType": vm.os_type,
                "osState": "Generalized",
                "managedDisk": {"id": vm.os_disk_id},
                "diskSizeGB": 30,
                "storageAccountType": "Premium_LRS",
            },
            "dataDisks": [
                {
                    "lun": lun,
                    "managedDisk": {"id": disk},
                    "diskSizeGB": 30,
                    "storageAccountType": "Premium_LRS",
                }
                for lun, disk in vm.data_disks
            ],
            "zoneResilient": zone_resilient,
        },
    }
