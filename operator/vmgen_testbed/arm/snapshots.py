"""Snapshots of managed disks, and managed disks made from snapshots (Microsoft.Compute DiskRP).

A snapshot is `Copy` from a disk id: a seeded VM's OS or data disk (ids from its storageProfile) or a
disk created here. Taking it while the VM runs is allowed, as in Azure (crash-consistent). When the
disk is a Linux guest's OS disk and the guest implements `guest.DiskCapture`, the snapshot captures
the guest's filesystem state when the snapshot is requested (Azure's snapshots are point-in-time: what
the guest writes after the PUT was accepted is not in it), as a tar of the overlay's upper layer in the
simulator's state dir; a disk made from the snapshot shares that content, and a VM built from the disk
boots a new guest from it (`vm_lifecycle`).

Traps avoided: snapshots and disks answer 202 with Location (DiskRP's long-running PUT), and their
final GET reads the resource; the capture runs before the answer and outside the world lock (the guest
takes milliseconds, other requests must not wait); a capture that fails makes the operation end Failed.
A disk attached to a VM cannot be deleted (Azure refuses; the operator must delete the VM first).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from vmgen_testbed.arm import errors
from vmgen_testbed.arm.lro import Operation, iso
from vmgen_testbed.arm.resources import (
    COMPUTE,
    Host,
    delete_lro,
    get_resource,
    json_body,
    properties_of,
    require_group,
    resource,
)
from vmgen_testbed.arm.state import Vm
from vmgen_testbed.guest import DiskCapture

__all__ = ["add_routes"]

_DISK_SIZE_GB = 30


def add_routes(app: web.Application, host: Host) -> None:
    add = app.router.add_route
    for suffix, kind in (("snapshots/{name}", "Snapshot"), ("disks/{name}", "Disk")):
        add("GET", f"{COMPUTE}/{suffix}", partial(get_resource, host), name=f"get{kind}")
        add("DELETE", f"{COMPUTE}/{suffix}", _deleter(host, kind), name=f"delete{kind}")
    add(
        "PUT",
        f"{COMPUTE}/snapshots/{{name}}",
        partial(_put_snapshot, host),
        name="createSnapshot",
    )
    add("PUT", f"{COMPUTE}/disks/{{name}}", partial(_put_disk, host), name="createDisk")


def _deleter(host: Host, kind: str) -> Any:
    def refuse(body: dict[str, Any]) -> None:
        if kind == "Disk" and body.get("managedBy"):
            raise errors.disk_in_use(body["name"], body["managedBy"])

    return partial(delete_lro, host, refuse=refuse)


def _source_disk(host: Host, disk_id: str, rg: str) -> tuple[Vm | None, dict[str, Any] | None]:
    """(the VM using it, the disk resource) of a disk id; raises ResourceNotFound for neither."""
    vm = host.world.vm_by_disk(disk_id)
    disk = host.world.resources.get(disk_id.lower())
    if disk is not None and disk["type"] != "Microsoft.Compute/disks":
        disk = None
    if vm is None and disk is None:
        raise errors.resource_not_found("Microsoft.Compute/disks", disk_id.rsplit("/", 1)[-1], rg)
    return vm, disk


async def _put_snapshot(host: Host, request: web.Request) -> web.Response:
    _, rg = require_group(host.world, request)
    body = await json_body(request)
    properties = properties_of(body)
    creation = properties.get("creationData") or {}
    source_id = str(creation.get("sourceResourceId", ""))
    if creation.get("createOption", "Copy") != "Copy":
        raise errors.invalid_parameter("Only createOption Copy is supported for snapshots.", "createOption")
    with host.world.lock:
        vm, disk = _source_disk(host, source_id, rg)
        is_os_disk = vm is not None and vm.os_disk_id.lower() == source_id.lower()
        os_type = (
            vm.os_type if vm is not None and is_os_disk else (disk or {}).get("properties", {}).get("osType")
        )
        generation = (
            vm.hyper_v_generation
            if vm is not None
            else disk["properties"].get("hyperVGeneration")
            if disk
            else None
        )
        snapshot_properties: dict[str, Any] = {
            "creationData": {"createOption": "Copy", "sourceResourceId": source_id},
            "diskSizeGB": _DISK_SIZE_GB,
            "timeCreated": iso(datetime.now(UTC)),
            "uniqueId": str(uuid.uuid4()),
            "incremental": bool(properties.get("incremental", False)),
        }
        if os_type:
            snapshot_properties["osType"] = os_type
        if generation:
            snapshot_properties["hyperVGeneration"] = generation
        snapshot = resource(
            request.path,
            request.match_info["name"],
            "Microsoft.Compute/snapshots",
            body["location"],
            snapshot_properties,
            body.get("tags"),
        )
        snapshot["sku"] = {"name": "Standard_LRS", "tier": "Standard"}
        # Capture from the guest when the OS disk is still the guest's; else share the disk's content.
        guest = vm.guest if vm is not None and is_os_disk else None
        shared = host.world.disk_contents.get(source_id.lower())
    failure: str | None = None
    if isinstance(guest, DiskCapture):
        destination = host.state_dir / "disk-contents" / f"{uuid.uuid4().hex}.tar"
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            await guest.capture_os_disk(destination)
        except Exception as error:  # the disk could not be read: the snapshot fails, as on Azure
            failure = f"The disk could not be read: {error}"
        else:
            shared = destination
    return await _start(host, request, snapshot, shared, failure)


async def _start(
    host: Host, request: web.Request, body: dict[str, Any], shared: Path | None, failure: str | None = None
) -> web.Response:
    """The DiskRP long-running PUT: 202 + Location; Succeeded (or Failed) after the latency."""
    operation = request.match_info.route.name or ""
    key = request.path.lower()
    with host.world.lock:
        body["properties"]["provisioningState"] = "Creating"
        host.world.resources[key] = body
        job = host.begin_operation(
            operation, request.match_info["subscription"], body["location"], "Microsoft.Compute"
        )
    host.spawn(_finish(host, job, request.method, body, key, shared, failure))
    return host.accepted(job, request)


async def _finish(
    host: Host,
    job: Operation,
    method: str,
    body: dict[str, Any],
    key: str,
    shared: Path | None,
    capture_failure: str | None,
) -> None:
    await host.world.pause(job.name, path=str(body.get("id", "")))
    with host.world.lock:
        fault = host.world.faults.take(job.name, method, str(body.get("id", "")), failed_operation=True)
    failure: tuple[str, str] | None = None
    if fault is not None:
        failure = (fault.error_code, "An internal execution error occurred. Please retry later.")
    elif capture_failure is not None:
        failure = ("InternalExecutionError", capture_failure)
    with host.world.lock:
        if failure is not None:
            body["properties"]["provisioningState"] = "Failed"
            job.fail(*failure)
            return
        if shared is not None:
            host.world.disk_contents[key] = shared
        body["properties"]["provisioningState"] = "Succeeded"
        job.succeed()


async def _put_disk(host: Host, request: web.Request) -> web.Response:
    _, rg = require_group(host.world, request)
    body = await json_body(request)
    properties = properties_of(body)
    creation = properties.get("creationData") or {}
    option = creation.get("createOption")
    with host.world.lock:
        existing = host.world.resources.get(request.path.lower())
        if existing is not None and existing.get("managedBy"):
            raise errors.disk_in_use(existing["name"], existing["managedBy"])
        disk_properties: dict[str, Any] = {
            "creationData": {"createOption": option or "Empty"},
            "diskSizeGB": int(properties.get("diskSizeGB") or _DISK_SIZE_GB),
            "timeCreated": iso(datetime.now(UTC)),
            "uniqueId": str(uuid.uuid4()),
            "diskState": "Unattached",
        }
        shared = None
        if option == "Copy":
            source_id = str(creation.get("sourceResourceId", ""))
            snapshot = host.world.resources.get(source_id.lower())
            if snapshot is None or snapshot["type"] not in (
                "Microsoft.Compute/snapshots",
                "Microsoft.Compute/disks",
            ):
                raise errors.resource_not_found(
                    "Microsoft.Compute/snapshots", source_id.rsplit("/", 1)[-1], rg
                )
            source = snapshot["properties"]
            disk_properties["creationData"]["sourceResourceId"] = snapshot["id"]
            for key in ("osType", "hyperVGeneration"):
                if key in source:
                    disk_properties[key] = source[key]
            disk_properties["diskSizeGB"] = source.get("diskSizeGB", _DISK_SIZE_GB)
            shared = host.world.disk_contents.get(source_id.lower())
        elif option != "Empty":
            raise errors.invalid_parameter(
                "Only createOption Copy (from a snapshot) and Empty are supported for disks.", "createOption"
            )
        for key in ("osType", "hyperVGeneration"):
            if key in properties:
                disk_properties[key] = properties[key]
        if isinstance(properties.get("securityProfile"), dict):
            disk_properties["securityProfile"] = properties["securityProfile"]
        disk = resource(
            request.path,
            request.match_info["name"],
            "Microsoft.Compute/disks",
            body["location"],
            disk_properties,
            body.get("tags"),
        )
        disk["sku"] = {"name": (body.get("sku") or {}).get("name", "Premium_LRS"), "tier": "Premium"}
    return await _start(host, request, disk, shared)
