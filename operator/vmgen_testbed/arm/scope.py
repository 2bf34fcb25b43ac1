"""What an ARM request addresses: its subscription, its region and the resource it acts on.

Azure Compute throttles per resource and per subscription *per region*, and refuses an unknown api-version
naming the request's location, so the pipeline needs all three before the handler runs. A VM route names
neither the region nor (for a missing VM) a resource that exists: the region comes from the VM in the world,
from the PUT body's `location`, from a stored resource, or from the `locations/{location}` segment of an
operation URL; when none is known (a VM that does not exist) it is "" and the request still counts against
its subscription.

Trap avoided: ARM ids are case-insensitive (`RG` and `rg` are one group), so the resource key is the
lower-cased id, trimmed to the resource itself (`.../virtualMachines/vm/powerOff` acts on `.../vm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vmgen_testbed.arm.state import World

__all__ = ["VM_OPERATIONS", "Scope", "of"]

VM_OPERATIONS = frozenset(
    {"get", "instanceView", "powerOff", "deallocate", "start", "generalize", "runCommand"}
)


@dataclass(frozen=True)
class Scope:
    subscription: str  # lower-cased subscription id, "" for tenant-level requests
    location: str  # lower-cased region, "" when the request names none and the world knows none
    resource: str  # lower-cased id of the resource acted on, "" for subscription- or tenant-level requests


def of(world: World, request: web.Request, operation: str, body: Any) -> Scope:
    info = request.match_info
    parts = request.path.split("/")
    subscription = (info.get("subscription") or (parts[2] if len(parts) > 2 else "")).lower()
    if operation in VM_OPERATIONS:
        vm = world.vm(info["subscription"], info["rg"], info["vm"])
        resource = request.path.lower().split("/virtualmachines/", 1)[0] + f"/virtualmachines/{info['vm']}"
        return Scope(subscription, vm.location.lower() if vm else "", resource.lower())
    if operation in ("operationStatus", "operationResult"):
        return Scope(subscription, info["location"].lower(), request.path.lower())
    if operation.startswith("create") and isinstance(body, dict):
        return Scope(subscription, str(body.get("location", "")).lower(), request.path.lower())
    if operation.startswith("get") and "/providers/" in request.path:
        with world.lock:
            stored = world.resources.get(request.path.lower())
        location = str(stored.get("location", "")) if stored else ""
        return Scope(subscription, location.lower(), request.path.lower())
    return Scope(subscription, "", "")
