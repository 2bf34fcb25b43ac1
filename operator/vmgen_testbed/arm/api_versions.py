"""The api-versions the simulator serves, and Azure's refusal of every other one.

Azure serves each resource type at an explicit list of api-versions; an unknown one is refused before the
resource provider sees the request. A simulator that accepted any string would let a client that pins a
version Azure never shipped (a typo, a preview that was withdrawn) pass every test and fail in production.
The lists below are exactly what the two clients of the testbed send:

- azure-mgmt-compute 39.0.0 (the operator and the contract tests): virtual machines, images and operation
  status 2026-04-01, snapshots 2026-03-02, galleries and their images and versions 2026-03-03 (read from
  the installed SDK's operation groups; also the versions of the trimmed schemas in `schemas/`);
- azure-cli 2.91.0, which sends several Compute versions: its generated (aaz) commands pin their own and
  the rest follow the `latest` profile (`azure/cli/core/profiles/_shared.py`, Compute 2024-11-01, snapshots
  2023-10-02, galleries and gallery images 2021-10-01, subscriptions 2022-12-01). Per command, read from
  `azure/cli/command_modules/vm/aaz/latest/`: `vm show` 2026-04-01, `vm deallocate` 2025-11-01,
  `vm generalize` and `vm start` 2022-11-01, `vm stop`, `vm run-command invoke`, `vm get-instance-view`
  and `image show` 2024-11-01, `image create` 2024-07-01, `snapshot show|create` 2025-01-02, `sig show|create`
  2026-03-03, `sig image-version show|create` 2024-03-03; `az cloud register` reads the metadata at
  2022-09-01.

Two refusals, with the texts ARM sends (as quoted in Azure error reports and the ms_rest_azure runtime's
InvalidApiVersionParameter handling): a resource provider type answers 400 `NoRegisteredProviderFound`
"No registered resource provider found for location '{location}' and API version '{version}' for type
'{type}'. The supported api-versions are '{a, b}'. The supported locations are '{x, y}'."; ARM's own
endpoints (subscriptions, tenants, metadata) answer 400 `InvalidApiVersionParameter` "The api-version
'{version}' is invalid. The supported versions are '{a,b}'." (no space after the commas, as ARM writes it).

Trap avoided: an operation-status URL carries the api-version of the call that started it, so it accepts
the union of the Compute, Disk and Gallery lists.
"""

from __future__ import annotations

from vmgen_testbed.arm import errors

__all__ = ["CLI", "SDK", "SERVED", "refusal"]

SDK = {
    "virtualMachines": ("2026-04-01",),
    "virtualMachines/extensions": ("2026-04-01",),
    "images": ("2026-04-01",),
    "snapshots": ("2026-03-02",),
    "galleries": ("2026-03-03",),
    "galleries/images": ("2026-03-03",),
    "galleries/images/versions": ("2026-03-03",),
    "disks": ("2026-03-02",),
    # azure-mgmt-network 33.1.0 (the copy path): virtual networks, subnets, network interfaces
    "virtualNetworks": ("2026-03-01",),
    "virtualNetworks/subnets": ("2026-03-01",),
    "networkInterfaces": ("2026-03-01",),
}
CLI = {
    "virtualMachines": ("2026-04-01", "2025-11-01", "2024-11-01", "2022-11-01"),
    "images": ("2024-11-01", "2024-07-01"),
    "snapshots": ("2025-01-02", "2023-10-02"),
    "galleries": ("2026-03-03", "2021-10-01"),
    "galleries/images": ("2021-10-01",),
    "galleries/images/versions": ("2024-03-03",),
    "subscriptions": ("2022-12-01",),
    "tenants": ("2022-12-01",),
    # every form cli_support.py answers; the CLI itself reads 2022-09-01
    "metadata": ("2022-09-01", "2020-06-01", "2019-05-01", "2015-01-01"),
}
LOCATIONS = ("westeurope", "northeurope", "eastus", "eastus2", "westus2", "centralus", "uksouth")


def _served(resource_type: str) -> tuple[str, ...]:
    if resource_type == "locations/operations":  # polled at the version of the call that started it
        versions = {v for group in (SDK, CLI) for t, vs in group.items() if t not in _ARM_LEVEL for v in vs}
    else:
        versions = {*SDK.get(resource_type, ()), *CLI.get(resource_type, ())}
    return tuple(sorted(versions, reverse=True))


_ARM_LEVEL = frozenset({"subscriptions", "tenants", "metadata"})
SERVED = {resource_type: _served(resource_type) for resource_type in {*SDK, *CLI, "locations/operations"}}
_TYPE_OF = {
    **dict.fromkeys(
        ("get", "instanceView", "powerOff", "deallocate", "start", "generalize", "runCommand"),
        "virtualMachines",
    ),
    **dict.fromkeys(("listExtensions", "getExtension"), "virtualMachines/extensions"),
    "getImage": "images",
    "createImage": "images",
    "getSnapshot": "snapshots",
    "createSnapshot": "snapshots",
    "getGallery": "galleries",
    "createGallery": "galleries",
    "getGalleryImage": "galleries/images",
    "createGalleryImage": "galleries/images",
    "getGalleryImageVersion": "galleries/images/versions",
    "createGalleryImageVersion": "galleries/images/versions",
    "deleteImage": "images",
    "deleteSnapshot": "snapshots",
    "deleteGalleryImageVersion": "galleries/images/versions",
    **dict.fromkeys(("getDisk", "createDisk", "deleteDisk"), "disks"),
    **dict.fromkeys(("createVm", "deleteVm"), "virtualMachines"),
    **dict.fromkeys(("getVirtualNetwork", "createVirtualNetwork"), "virtualNetworks"),
    "getSubnet": "virtualNetworks/subnets",
    **dict.fromkeys(
        ("getNetworkInterface", "createNetworkInterface", "deleteNetworkInterface"), "networkInterfaces"
    ),
    "operationStatus": "locations/operations",
    "operationResult": "locations/operations",
    "listSubscriptions": "subscriptions",
    "getSubscription": "subscriptions",
    "listTenants": "tenants",
    "metadataEndpoints": "metadata",
}


def refusal(operation: str, api_version: str, location: str) -> errors.ArmError | None:
    """Azure's 400 for an api-version the addressed type is not served at, or None when it is served."""
    resource_type = _TYPE_OF.get(operation)
    if resource_type is None or api_version in SERVED[resource_type]:
        return None
    supported = SERVED[resource_type]
    if resource_type in _ARM_LEVEL:
        return errors.ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{api_version}' is invalid. "
            f"The supported versions are '{','.join(supported)}'.",
        )
    return errors.ArmError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location '{location or LOCATIONS[0]}' and API version "
        f"'{api_version}' for type '{resource_type}'. "
        f"The supported api-versions are '{', '.join(supported)}'. "
        f"The supported locations are '{', '.join(LOCATIONS)}'.",
    )
