"""Microsoft.Network as azure-mgmt-network speaks it: virtual networks, subnets and network interfaces.

A copy of a VM (issue 11) needs a NIC in a subnet: the source's subnet, read from the source's NIC, or
one the user names. So every seeded VM gets a NIC (`<vm>-nic`) in its resource group's virtual network
(`<rg>-vnet`, subnet `default`), and NICs can be created (PUT, long-running), read and deleted.

Azure's rules kept: a NIC whose ipConfiguration names a subnet that does not exist is refused with
InvalidResourceReference ("Resource <subnet> referenced by resource <nic> was not found. ..."), so a
copy into a wrong subnet fails before any disk exists; a NIC attached to a VM cannot be deleted
(NicInUse); a subnet lists the ipConfigurations that use it.

The address a NIC reports is, once its VM boots a guest that has one, the guest's own address (the
testbed's guests live in their own network namespaces; the operator must reach the copy at the address
Azure tells it). Before that it is the next free address of the subnet, from .4 on, as Azure allocates.
"""

from __future__ import annotations

import ipaddress
import uuid
from functools import partial
from typing import Any

from aiohttp import web

from vmgen_testbed.arm import errors
from vmgen_testbed.arm.resources import (
    NETWORK,
    Host,
    delete_lro,
    get_resource,
    json_body,
    properties_of,
    put_lro,
    require_group,
    resource,
)
from vmgen_testbed.arm.state import Vm, World

__all__ = ["add_routes", "attach_nic", "ensure_seeded_nic", "seed_subnet", "subnet_of"]

_PROVIDER = "Microsoft.Network"


def add_routes(app: web.Application, host: Host) -> None:
    add = app.router.add_route
    vnet = f"{NETWORK}/virtualNetworks/{{vnet}}"
    nic = f"{NETWORK}/networkInterfaces/{{name}}"
    add("GET", vnet, partial(get_resource, host), name="getVirtualNetwork")
    add("PUT", vnet, partial(_put_vnet, host), name="createVirtualNetwork")
    add("GET", f"{vnet}/subnets/{{subnet}}", partial(_get_subnet, host), name="getSubnet")
    add("GET", nic, partial(get_resource, host), name="getNetworkInterface")
    add("PUT", nic, partial(_put_nic, host), name="createNetworkInterface")
    add("DELETE", nic, partial(_delete_nic, host), name="deleteNetworkInterface")


def _network_id(subscription: str, rg: str, path: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Network/{path}"


def _vnet_body(
    resource_id: str, name: str, location: str, prefixes: list[str], subnets: list[dict[str, Any]]
) -> dict[str, Any]:
    body = resource(
        resource_id,
        name,
        "Microsoft.Network/virtualNetworks",
        location,
        {
            "addressSpace": {"addressPrefixes": prefixes},
            "subnets": [],
            "resourceGuid": str(uuid.uuid4()),
            "provisioningState": "Succeeded",
        },
    )
    body["etag"] = f'W/"{uuid.uuid4()}"'
    for subnet in subnets:
        body["properties"]["subnets"].append(
            {
                "id": f"{resource_id}/subnets/{subnet['name']}",
                "name": subnet["name"],
                "type": "Microsoft.Network/virtualNetworks/subnets",
                "etag": body["etag"],
                "properties": {
                    "addressPrefix": subnet["addressPrefix"],
                    "ipConfigurations": [],
                    "provisioningState": "Succeeded",
                },
            }
        )
    return body


def seed_subnet(
    world: World,
    *,
    subscription_id: str,
    resource_group: str,
    vnet: str,
    subnet: str,
    prefix: str,
    location: str,
) -> str:
    """Create (or extend) a virtual network with this subnet; returns the subnet's id."""
    world.ensure_resource_group(subscription_id, resource_group)
    vnet_id = _network_id(subscription_id, resource_group, f"virtualNetworks/{vnet}")
    with world.lock:
        body = world.resources.get(vnet_id.lower())
        if body is None:
            network = ipaddress.ip_network(prefix, strict=False).supernet(new_prefix=16)
            body = _vnet_body(vnet_id, vnet, location, [str(network)], [])
            world.resources[vnet_id.lower()] = body
        if subnet_of(world, f"{vnet_id}/subnets/{subnet}") is None:
            body["properties"]["subnets"].append(
                _vnet_body(vnet_id, vnet, location, [], [{"name": subnet, "addressPrefix": prefix}])[
                    "properties"
                ]["subnets"][0]
            )
    return f"{vnet_id}/subnets/{subnet}"


def subnet_of(world: World, subnet_id: str) -> dict[str, Any] | None:
    vnet_id, _, name = subnet_id.partition("/subnets/")
    with world.lock:
        vnet = world.resources.get(vnet_id.lower())
        if vnet is None or vnet["type"] != "Microsoft.Network/virtualNetworks":
            return None
        return next((s for s in vnet["properties"]["subnets"] if s["name"].lower() == name.lower()), None)


def ensure_seeded_nic(world: World, vm: Vm, address: str | None) -> None:
    """A seeded VM's NIC in `<rg>-vnet/default`, at its guest's address when it has one."""
    subnet_id = seed_subnet(
        world,
        subscription_id=vm.subscription_id,
        resource_group=vm.resource_group,
        vnet=f"{vm.resource_group}-vnet",
        subnet="default",
        prefix="10.0.0.0/24",
        location=vm.location,
    )
    with world.lock:
        nic = _nic_body(world, vm.nic_id, vm.nic_id.rsplit("/", 1)[-1], vm.location, subnet_id, {})
        nic["properties"]["provisioningState"] = "Succeeded"
        world.resources[vm.nic_id.lower()] = nic
        attach_nic(world, vm.nic_id, vm.id, address)


def attach_nic(world: World, nic_id: str, vm_id: str | None, address: str | None) -> None:
    """Record (or clear, vm_id None) the VM a NIC belongs to, and the guest address it reaches."""
    with world.lock:
        nic = world.resources.get(nic_id.lower())
        if nic is None:
            return
        if vm_id is None:
            nic["properties"].pop("virtualMachine", None)
        else:
            nic["properties"]["virtualMachine"] = {"id": vm_id}
        if address is not None:
            nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = address


def _nic_body(
    world: World, nic_id: str, name: str, location: str, subnet_id: str, tags: dict[str, str]
) -> dict[str, Any]:
    subnet = subnet_of(world, subnet_id)
    assert subnet is not None
    used = {config["id"].lower() for config in subnet["properties"]["ipConfigurations"]}
    configuration_id = f"{nic_id}/ipConfigurations/ipconfig1"
    if configuration_id.lower() not in used:
        subnet["properties"]["ipConfigurations"].append({"id": configuration_id})
    network = ipaddress.ip_network(subnet["properties"]["addressPrefix"], strict=False)
    address = str(network.network_address + 3 + len(subnet["properties"]["ipConfigurations"]))
    etag = f'W/"{uuid.uuid4()}"'
    body = resource(
        nic_id,
        name,
        "Microsoft.Network/networkInterfaces",
        location,
        {
            "ipConfigurations": [
                {
                    "id": configuration_id,
                    "name": "ipconfig1",
                    "etag": etag,
                    "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
                    "properties": {
                        "privateIPAddress": address,
                        "privateIPAllocationMethod": "Dynamic",
                        "privateIPAddressVersion": "IPv4",
                        "subnet": {"id": subnet["id"]},
                        "primary": True,
                        "provisioningState": "Succeeded",
                    },
                }
            ],
            "enableAcceleratedNetworking": False,
            "enableIPForwarding": False,
            "primary": True,
            "resourceGuid": str(uuid.uuid4()),
            "provisioningState": "Creating",
        },
        tags,
    )
    body["etag"] = etag
    return body


async def _put_vnet(host: Host, request: web.Request) -> web.Response:
    require_group(host.world, request)
    body = await json_body(request)
    properties = properties_of(body)
    subnets = [
        {"name": s.get("name"), "addressPrefix": (s.get("properties") or {}).get("addressPrefix")}
        for s in properties.get("subnets") or []
    ]
    if any(not s["name"] or not s["addressPrefix"] for s in subnets):
        raise errors.invalid_parameter("Each subnet must have a name and an addressPrefix.", "subnets")
    prefixes = list((properties.get("addressSpace") or {}).get("addressPrefixes") or [])
    vnet = _vnet_body(request.path, request.match_info["vnet"], body["location"], prefixes, subnets)
    vnet["tags"] = dict(body.get("tags") or {})
    return await put_lro(host, request, vnet, initial_status=201, provider=_PROVIDER)


async def _get_subnet(host: Host, request: web.Request) -> web.Response:
    require_group(host.world, request)
    subnet = subnet_of(host.world, request.path)
    if subnet is None:
        vnet = request.path.partition("/subnets/")[0]
        if vnet.lower() not in host.world.resources:
            raise errors.resource_not_found(
                "Microsoft.Network/virtualNetworks", request.match_info["vnet"], request.match_info["rg"]
            )
        raise errors.ArmError(
            404,
            "NotFound",
            f"Resource {request.path} not found.",
        )
    with host.world.lock:
        return web.json_response(subnet)


async def _put_nic(host: Host, request: web.Request) -> web.Response:
    require_group(host.world, request)
    body = await json_body(request)
    properties = properties_of(body)
    configurations = properties.get("ipConfigurations") or []
    if not configurations or not isinstance(configurations[0], dict):
        raise errors.invalid_parameter("A network interface needs one ipConfiguration.", "ipConfigurations")
    subnet_id = str(((configurations[0].get("properties") or {}).get("subnet") or {}).get("id", ""))
    if subnet_of(host.world, subnet_id) is None:
        raise errors.referenced_resource_not_found(subnet_id, request.path)
    with host.world.lock:
        existing = host.world.resources.get(request.path.lower())
        nic = _nic_body(
            host.world,
            request.path,
            request.match_info["name"],
            body["location"],
            subnet_id,
            body.get("tags") or {},
        )
        if existing is not None and "virtualMachine" in existing["properties"]:
            nic["properties"]["virtualMachine"] = existing["properties"]["virtualMachine"]
    return await put_lro(host, request, nic, initial_status=201, provider=_PROVIDER)


async def _delete_nic(host: Host, request: web.Request) -> web.StreamResponse:
    def refuse(body: dict[str, Any]) -> None:
        vm = (body["properties"].get("virtualMachine") or {}).get("id")
        if vm:
            raise errors.nic_in_use(body["id"], vm)

    def release(body: dict[str, Any]) -> None:
        for configuration in body["properties"]["ipConfigurations"]:
            subnet = subnet_of(host.world, configuration["properties"]["subnet"]["id"])
            if subnet is not None:
                subnet["properties"]["ipConfigurations"] = [
                    c
                    for c in subnet["properties"]["ipConfigurations"]
                    if c["id"].lower() != configuration["id"].lower()
                ]

    return await delete_lro(host, request, refuse=refuse, on_deleted=release, provider=_PROVIDER)
