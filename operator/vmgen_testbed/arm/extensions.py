"""VM extensions as Azure lists them (`virtualMachines/{vm}/extensions`), and an Active Directory join.

A seeded VM's extensions are (publisher, type) pairs, shown in the VM GET's `resources` (state.Vm.body) and
here as their own child resources: GET of the list (`{"value": [...]}`) and of one by name (Azure's
ResourceNotFound for another name). Only reads are served: vmgen never installs or removes extensions.

`join_domain()` models what a domain join leaves behind: inside the guest (a Windows guest's machine
reports Win32_ComputerSystem PartOfDomain True and the domain), and, when the join was made by the
JsonADDomainExtension (publisher Microsoft.Compute), that extension on the VM with its public settings
(`Name` is the domain; the password is a protected setting, which Azure never returns).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from vmgen_testbed.arm import errors
from vmgen_testbed.arm.resources import COMPUTE, Host
from vmgen_testbed.arm.state import Vm, World

__all__ = ["DOMAIN_JOIN_EXTENSION", "add_routes", "extension_body", "join_domain"]

DOMAIN_JOIN_EXTENSION = ("Microsoft.Compute", "JsonADDomainExtension")


def add_routes(app: web.Application, host: Host) -> None:
    path = f"{COMPUTE}/virtualMachines/{{vm}}/extensions"
    app.router.add_route("GET", path, partial(_list, host), name="listExtensions")
    app.router.add_route("GET", f"{path}/{{name}}", partial(_get, host), name="getExtension")


def extension_body(vm: Vm, publisher: str, kind: str) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "publisher": publisher,
        "type": kind,
        "typeHandlerVersion": "1.3" if (publisher, kind) == DOMAIN_JOIN_EXTENSION else "2.2",
        "autoUpgradeMinorVersion": True,
        "provisioningState": "Succeeded",
    }
    if kind in vm.extension_settings:
        properties["settings"] = dict(vm.extension_settings[kind])
    return {
        "id": f"{vm.id}/extensions/{kind}",
        "name": kind,
        "type": "Microsoft.Compute/virtualMachines/extensions",
        "location": vm.location,
        "properties": properties,
    }


def join_domain(world: World, vm: Vm, domain: str, *, extension: bool) -> None:
    """Join the VM's guest to `domain` (a guest without a domain model is left as it is) and, with
    `extension`, show the JsonADDomainExtension on the VM."""
    machine = getattr(vm.guest, "machine", None)
    if machine is not None and hasattr(machine, "join_domain"):
        machine.join_domain(domain)
    if not extension:
        return
    with world.lock:
        if DOMAIN_JOIN_EXTENSION not in vm.extensions:
            vm.extensions = (*vm.extensions, DOMAIN_JOIN_EXTENSION)
        vm.extension_settings[DOMAIN_JOIN_EXTENSION[1]] = {
            "Name": domain,
            "OUPath": "",
            "User": f"{domain}\\vm-joiner",
            "Restart": "true",
            "Options": "3",
        }


def _vm(host: Host, request: web.Request) -> Vm:
    info = request.match_info
    vm = host.world.vm(info["subscription"], info["rg"], info["vm"])
    if vm is None:
        raise errors.resource_not_found("Microsoft.Compute/virtualMachines", info["vm"], info["rg"])
    return vm


async def _list(host: Host, request: web.Request) -> web.Response:
    with host.world.lock:
        vm = _vm(host, request)
        return web.json_response({"value": [extension_body(vm, p, k) for p, k in vm.extensions]})


async def _get(host: Host, request: web.Request) -> web.Response:
    with host.world.lock:
        vm = _vm(host, request)
        name = request.match_info["name"]
        for publisher, kind in vm.extensions:
            if kind.lower() == name.lower():
                return web.json_response(extension_body(vm, publisher, kind))
    raise errors.resource_not_found(
        "Microsoft.Compute/virtualMachines/extensions", f"{vm.name}/{name}", request.match_info["rg"]
    )
