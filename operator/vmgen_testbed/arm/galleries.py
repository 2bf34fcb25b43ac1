"""Azure Compute Gallery: galleries, image definitions and image versions with per-region replication.

An image version is the slowest thing vmgen waits for: Azure replicates it to every target region, and
a publish that outlives many polls is normal. So replication here takes a configurable time
(`set_latency("replicateGalleryImageVersion", seconds)`, per region, the regions in parallel) after
the version's own creation latency; until then the version is `Creating` and a GET with
`$expand=ReplicationStatus` shows `aggregatedState` InProgress with each region Replicating and its
`progress` in percent. A `failed-operation` fault on `createGalleryImageVersion` makes the version end
`Failed` (every unfinished region Failed with a detail), as an earlier attempt may have left it.

Preconditions, checked when the PUT arrives, each with its own error (see `errors`): the definition
exists (ParentResourceNotFound); the source VM or managed image exists; its OS type, OS state
(a Generalized definition needs a generalized VM), Hyper-V generation and security type match the
definition's (`features: [{name: SecurityType, value: TrustedLaunch | ConfidentialVM | ...}]`; no
feature means Standard; the `...Supported` values accept only VHD, image and version sources);
a PUT over an existing version may not change its source (PropertyChangeNotAllowed).

Traps avoided: a definition created without `hyperVGeneration` is V1, Azure's default, which is
exactly the mismatch users hit with Gen2 VMs; replication state is computed from the clock at each GET,
never advanced by a poll, so the number of polls cannot change the outcome.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web

from vmgen_testbed.arm import errors, lro
from vmgen_testbed.arm.images import source_vm
from vmgen_testbed.arm.lro import Operation, iso
from vmgen_testbed.arm.resources import (
    COMPUTE,
    Host,
    compute_id,
    delete_lro,
    get_resource,
    json_body,
    properties_of,
    put_lro,
    require_group,
    resource,
)

__all__ = ["REPLICATION", "add_routes", "definition_body", "gallery_body", "security_type_of"]

REPLICATION = "replicateGalleryImageVersion"  # latency key: seconds of replication per region
_SUPPORTED_ONLY = (
    "TrustedLaunchSupported",
    "ConfidentialVMSupported",
    "TrustedLaunchAndConfidentialVmSupported",
)


@dataclass
class _Replication:
    regions: list[str]
    seconds: float
    started: float = field(default_factory=time.monotonic)
    done: bool = False
    failed: str | None = None  # the detail of a failed replication

    def status(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        progress = 100 if self.seconds <= 0 else min(100, int(elapsed / self.seconds * 100))
        summary = []
        for region in self.regions:
            if self.failed is not None:
                summary.append(
                    {"region": region, "state": "Failed", "details": self.failed, "progress": progress}
                )
            elif self.done:
                summary.append({"region": region, "state": "Completed", "details": "", "progress": 100})
            else:
                summary.append(
                    {"region": region, "state": "Replicating", "details": "", "progress": min(progress, 99)}
                )
        aggregated = "Failed" if self.failed is not None else "Completed" if self.done else "InProgress"
        return {"aggregatedState": aggregated, "summary": summary}


def gallery_body(
    resource_id: str, name: str, location: str, subscription_id: str, properties: dict[str, Any], state: str
) -> dict[str, Any]:
    return resource(
        resource_id,
        name,
        "Microsoft.Compute/galleries",
        location,
        {
            **properties,
            "identifier": {"uniqueName": f"{subscription_id}-{name.upper()}"},
            "provisioningState": state,
        },
    )


def definition_body(
    resource_id: str, name: str, location: str, properties: dict[str, Any], state: str
) -> dict[str, Any]:
    kept: dict[str, Any] = {
        key: properties[key]
        for key in (
            "osType",
            "osState",
            "identifier",
            "hyperVGeneration",
            "description",
            "features",
            "endOfLifeDate",
        )
        if key in properties
    }
    kept.setdefault("hyperVGeneration", "V1")  # Azure's default when the request names none
    return resource(
        resource_id,
        name,
        "Microsoft.Compute/galleries/images",
        location,
        {**kept, "provisioningState": state},
    )


def security_type_of(definition: dict[str, Any]) -> str:
    """The definition's SecurityType feature value, "Standard" when it has none."""
    for feature in definition["properties"].get("features") or []:
        if str(feature.get("name", "")).lower() == "securitytype":
            return str(feature.get("value", "Standard"))
    return "Standard"


def add_routes(app: web.Application, host: Host) -> None:
    replications: dict[str, _Replication] = {}
    add = app.router.add_route
    gallery = f"{COMPUTE}/galleries/{{gallery}}"
    image = f"{gallery}/images/{{image}}"
    version = f"{image}/versions/{{name}}"
    add("GET", gallery, partial(get_resource, host), name="getGallery")
    add("PUT", gallery, partial(_put_gallery, host), name="createGallery")
    add("GET", image, partial(get_resource, host), name="getGalleryImage")
    add("PUT", image, partial(_put_definition, host), name="createGalleryImage")
    add(
        "GET",
        version,
        partial(_get_version, host, replications),
        name="getGalleryImageVersion",
    )
    add(
        "PUT",
        version,
        partial(_put_version, host, replications),
        name="createGalleryImageVersion",
    )

    async def delete_version(request: web.Request) -> web.StreamResponse:
        def forget(body: dict[str, Any]) -> None:
            replications.pop(body["id"].lower(), None)

        return await delete_lro(host, request, on_deleted=forget)

    add("DELETE", version, delete_version, name="deleteGalleryImageVersion")


async def _created(host: Host, request: web.Request, body: dict[str, Any]) -> web.Response:
    """Galleries and definitions: 201 + Creating, Succeeded after the operation's latency."""
    return await put_lro(host, request, body, initial_status=201)


async def _put_gallery(host: Host, request: web.Request) -> web.Response:
    subscription, _ = require_group(host.world, request)
    body = await json_body(request)
    properties = properties_of(body)
    gallery = gallery_body(
        request.path,
        request.match_info["gallery"],
        body["location"],
        subscription,
        {"description": properties.get("description", "")},
        "Creating",
    )
    return await _created(host, request, gallery)


async def _put_definition(host: Host, request: web.Request) -> web.Response:
    subscription, rg = require_group(host.world, request)
    body = await json_body(request)
    properties = properties_of(body)
    gallery = request.match_info["gallery"]
    with host.world.lock:
        if compute_id(subscription, rg, f"galleries/{gallery}").lower() not in host.world.resources:
            raise errors.parent_not_found(gallery)
        if (
            not isinstance(properties.get("identifier"), dict)
            or properties.get("osType") not in ("Linux", "Windows")
            or properties.get("osState") not in ("Generalized", "Specialized")
        ):
            raise errors.invalid_parameter(
                "osType, osState and identifier {publisher, offer, sku} are required.", "properties"
            )
        existing = host.world.resources.get(request.path.lower())
        if existing is not None:
            for key in ("osType", "osState", "hyperVGeneration"):
                if key in properties and properties[key] != existing["properties"].get(key):
                    raise errors.property_change_not_allowed(f"galleryImage.properties.{key}")
    definition = definition_body(
        request.path, request.match_info["image"], body["location"], properties, "Creating"
    )
    definition["tags"] = dict(body.get("tags") or {})
    return await _created(host, request, definition)


async def _get_version(
    host: Host, replications: dict[str, _Replication], request: web.Request
) -> web.Response:
    with host.world.lock:
        body = host.world.resources.get(request.path.lower())
        if body is None:
            return await get_resource(host, request)  # raises Azure's not-found error
        answer = {**body, "properties": dict(body["properties"])}
        replication = replications.get(request.path.lower())
        if request.query.get("$expand", "").lower() == "replicationstatus" and replication is not None:
            answer["properties"]["replicationStatus"] = replication.status()
        return web.json_response(answer)


async def _put_version(
    host: Host, replications: dict[str, _Replication], request: web.Request
) -> web.Response:
    subscription, rg = require_group(host.world, request)
    body = await json_body(request)
    properties = properties_of(body)
    gallery, image = request.match_info["gallery"], request.match_info["image"]
    with host.world.lock:
        definition = host.world.resources.get(
            compute_id(subscription, rg, f"galleries/{gallery}/images/{image}").lower()
        )
        if definition is None:
            raise errors.parent_not_found(f"{gallery}/{image}")
        source = dict((properties.get("storageProfile") or {}).get("source") or {})
        source_id = str(source.get("virtualMachineId") or source.get("id") or "")
        _check_source(host, definition, source_id, rg)
        existing = host.world.resources.get(request.path.lower())
        if existing is not None:
            before = existing["properties"]["storageProfile"]["source"]
            if str(before.get("virtualMachineId") or before.get("id") or "").lower() != source_id.lower():
                raise errors.property_change_not_allowed(
                    "galleryImageVersion.properties.storageProfile.source.id"
                )
        publishing = properties.get("publishingProfile") or {}
        regions = _target_regions(publishing, body["location"])
        profile: dict[str, Any] = {
            "targetRegions": regions,
            "replicaCount": int(publishing.get("replicaCount", 1)),
            "excludeFromLatest": bool(publishing.get("excludeFromLatest", False)),
            "publishedDate": iso(datetime.now(UTC)),
            "storageAccountType": publishing.get("storageAccountType", "Standard_LRS"),
        }
        if publishing.get("endOfLifeDate"):
            profile["endOfLifeDate"] = str(publishing["endOfLifeDate"])
        version = resource(
            request.path,
            request.match_info["name"],
            "Microsoft.Compute/galleries/images/versions",
            body["location"],
            {
                "publishingProfile": profile,
                "storageProfile": {
                    "source": source,
                    "osDiskImage": {"hostCaching": "ReadWrite", "sizeInGB": 30},
                },
                "provisioningState": "Creating",
            },
            body.get("tags"),
        )
        host.world.resources[request.path.lower()] = version
        replication = _Replication([r["name"] for r in regions], host.world.seconds(REPLICATION))
        replications[request.path.lower()] = replication
        job = host.begin_operation(
            "createGalleryImageVersion", subscription, body["location"], "Microsoft.Compute"
        )
    host.spawn(_replicate(host, job, request.method, version, replication))
    async_url, _ = job.urls(f"https://{request.host}", request.query["api-version"])
    return web.json_response(
        version,
        status=201,
        headers={"Azure-AsyncOperation": async_url, **lro.retry_after(host.lro_retry_after)},
    )


def _target_regions(publishing: dict[str, Any], location: str) -> list[dict[str, Any]]:
    asked = publishing.get("targetRegions") or [{"name": location}]
    regions = []
    for region in asked:
        if not isinstance(region, dict) or not region.get("name"):
            raise errors.invalid_parameter(
                "Each target region must have a name.", "publishingProfile.targetRegions"
            )
        regions.append(
            {
                "name": str(region["name"]),
                "regionalReplicaCount": int(
                    region.get("regionalReplicaCount", publishing.get("replicaCount", 1))
                ),
                "storageAccountType": region.get(
                    "storageAccountType", publishing.get("storageAccountType", "Standard_LRS")
                ),
                "excludeFromLatest": bool(
                    region.get("excludeFromLatest", publishing.get("excludeFromLatest", False))
                ),
            }
        )
    return regions


def _check_source(host: Host, definition: dict[str, Any], source_id: str, rg: str) -> None:
    wanted = definition["properties"]
    security = security_type_of(definition)
    if "/virtualmachines/" in source_id.lower():
        vm = source_vm(host, source_id, rg)
        if security in _SUPPORTED_ONLY:
            raise errors.invalid_parameter(
                f"The security type '{security}' is not supported for the source id '{vm.id}'. Currently "
                "only Vhd Blob, User Image and Gallery Image Version sources are supported for "
                f"'{security}' images.",
                "storageProfile.source",
            )
        if vm.os_type != wanted["osType"]:
            raise errors.os_type_differs(vm.id, vm.os_type, wanted["osType"])
        if wanted["osState"] == "Generalized" and not vm.generalized:
            raise errors.image_requires_generalized(vm.name, "Create Gallery Image Version")
        if wanted["osState"] == "Specialized" and vm.generalized:
            raise errors.os_state_differs(vm.id, wanted["osState"])
        if vm.hyper_v_generation != wanted.get("hyperVGeneration", "V1"):
            raise errors.hyper_v_generation_differs(
                vm.id, vm.hyper_v_generation, wanted.get("hyperVGeneration", "V1")
            )
        if (vm.security_type or "Standard") != security:
            raise errors.security_type_differs(vm.id, vm.security_type or "Standard", security)
        return
    image = host.world.resources.get(source_id.lower())
    if image is None or image["type"] != "Microsoft.Compute/images":
        raise errors.invalid_parameter(f"The source '{source_id}' was not found.", "storageProfile.source")
    os_disk = image["properties"]["storageProfile"]["osDisk"]
    if os_disk["osType"] != wanted["osType"]:
        raise errors.os_type_differs(image["id"], os_disk["osType"], wanted["osType"])
    if os_disk.get("osState", "Generalized") != wanted["osState"]:
        raise errors.os_state_differs(image["id"], wanted["osState"])
    generation = image["properties"].get("hyperVGeneration", "V1")
    if generation != wanted.get("hyperVGeneration", "V1"):
        raise errors.hyper_v_generation_differs(image["id"], generation, wanted.get("hyperVGeneration", "V1"))


async def _replicate(
    host: Host, job: Operation, method: str, version: dict[str, Any], replication: _Replication
) -> None:
    await host.world.pause(job.name, path=str(version.get("id", "")))
    await asyncio.sleep(replication.seconds)
    with host.world.lock:
        fault = host.world.faults.take(job.name, method, str(version.get("id", "")), failed_operation=True)
        if fault is not None:
            replication.failed = (
                f"Replication failed: {fault.error_code}. An internal execution error occurred."
            )
            version["properties"]["provisioningState"] = "Failed"
            job.fail(fault.error_code, "An internal execution error occurred. Please retry later.")
            return
        replication.done = True
        version["properties"]["provisioningState"] = "Succeeded"
        job.succeed()
