"""What the simulator's PUT/GET/DELETE resources share: bodies, lookups, long-running operations.

The resource modules (`snapshots`, `images`, `galleries`, `network`, `vm_lifecycle`) each register their
routes with `add_routes(app, host)`; `host` is the `ArmSimulator`, seen through the small `Host` protocol
so that the modules never reach into the server's internals.

Azure's rules kept here, once:
- A PUT that creates answers 200/201 with the resource in `Creating` and an `Azure-AsyncOperation` URL,
  or 202 with `Location` too (snapshots, disks); the SDK's final GET reads the resource itself, so the
  resource is stored before the answer and flips to `Succeeded` (or `Failed`, by fault injection) when
  the operation ends.
- A DELETE answers 202 with both URLs and the resource in `Deleting` until it is gone; a DELETE of a
  resource that does not exist answers 204 (ARM's idempotent delete), so a retried cleanup never fails.
- Resource names are case-insensitive: `world.resources` keys are lower-cased ids, bodies keep the
  spelling of their creation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from vmgen_testbed.arm import errors, lro
from vmgen_testbed.arm.lro import Operation
from vmgen_testbed.arm.state import World
from vmgen_testbed.guest import GuestFactory

__all__ = [
    "COMPUTE",
    "NETWORK",
    "Host",
    "delete_lro",
    "finish_operation",
    "get_resource",
    "json_body",
    "missing",
    "put_lro",
    "resource",
]

COMPUTE = "/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Compute"
NETWORK = "/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Network"
_FAILED_TEXT = "An internal execution error occurred. Please retry later."


class Host(Protocol):
    """The parts of the simulator that resource modules use."""

    world: World
    lro_retry_after: int | None
    state_dir: Path
    guest_factory: GuestFactory | None

    def begin_operation(self, name: str, subscription_id: str, location: str, provider: str) -> Operation: ...

    def spawn(self, work: Awaitable[None]) -> None: ...

    def accepted(self, job: Operation, request: web.Request) -> web.Response: ...


def resource(
    resource_id: str,
    name: str,
    arm_type: str,
    location: str,
    properties: dict[str, Any],
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": resource_id,
        "name": name,
        "type": arm_type,
        "location": location,
        "tags": dict(tags or {}),
        "properties": properties,
    }


async def json_body(request: web.Request) -> Any:
    if not request.body_exists:
        return None
    try:
        return json.loads(await request.read())
    except ValueError:
        return None


def require_group(world: World, request: web.Request) -> tuple[str, str]:
    subscription, rg = request.match_info["subscription"], request.match_info["rg"]
    if not world.has_resource_group(subscription, rg):
        raise errors.resource_group_not_found(rg)
    return subscription, rg


def missing(world: World, request: web.Request) -> errors.ArmError:
    """ResourceGroupNotFound or ResourceNotFound for the resource the request names."""
    _, rg = require_group(world, request)
    path = request.path.split("/providers/", 1)[1]
    kind, _, name = path.rpartition("/")
    return errors.resource_not_found(kind, name, rg)


async def get_resource(host: Host, request: web.Request) -> web.Response:
    with host.world.lock:
        body = host.world.resources.get(request.path.lower())
        if body is None:
            raise missing(host.world, request)
        return web.json_response(body)


async def put_lro(
    host: Host,
    request: web.Request,
    body: dict[str, Any],
    *,
    initial_status: int,
    provider: str = "Microsoft.Compute",
    on_success: Callable[[], None] | None = None,
    extra_seconds: float = 0.0,
) -> web.Response:
    """Store `body` in Creating (call under no lock), start its operation, answer as Azure does."""
    operation = request.match_info.route.name or ""
    with host.world.lock:
        body["properties"]["provisioningState"] = "Creating"
        host.world.resources[request.path.lower()] = body
        job = host.begin_operation(operation, request.match_info["subscription"], body["location"], provider)
    host.spawn(finish_operation(host, job, request.method, body, on_success, extra_seconds))
    async_url, location = job.urls(f"https://{request.host}", request.query["api-version"])
    headers = {"Azure-AsyncOperation": async_url, **lro.retry_after(host.lro_retry_after)}
    if initial_status == 202:
        return web.Response(status=202, headers={**headers, "Location": location})
    return web.json_response(body, status=initial_status, headers=headers)


async def finish_operation(
    host: Host,
    job: Operation,
    method: str,
    body: dict[str, Any] | None,
    on_success: Callable[[], None] | None = None,
    extra_seconds: float = 0.0,
) -> None:
    """After the operation's latency, end it Succeeded, or Failed when a failed-operation fault matches."""
    await host.world.pause(job.name, path=str((body or {}).get("id", "")))
    await asyncio.sleep(extra_seconds)
    with host.world.lock:
        fault = host.world.faults.take(
            job.name, method, str((body or {}).get("id", "")), failed_operation=True
        )
        if body is not None:
            body["properties"]["provisioningState"] = "Failed" if fault else "Succeeded"
        if fault is not None:
            job.fail(fault.error_code, _FAILED_TEXT)
            return
        if on_success is not None:
            on_success()
        job.succeed()


async def delete_lro(
    host: Host,
    request: web.Request,
    *,
    refuse: Callable[[dict[str, Any]], None] | None = None,
    on_deleted: Callable[[dict[str, Any]], Awaitable[None] | None] | None = None,
    provider: str = "Microsoft.Compute",
) -> web.Response:
    """DELETE as an LRO: 202 + Deleting, gone when the operation ends; 204 when nothing is there.

    `refuse(body)` raises an ArmError to refuse the delete (under the world lock); `on_deleted(body)`
    runs once the resource is gone (a coroutine is awaited outside the lock)."""
    operation = request.match_info.route.name or ""
    key = request.path.lower()
    with host.world.lock:
        require_group(host.world, request)
        body = host.world.resources.get(key)
        if body is None:
            return web.Response(status=204)
        if refuse is not None:
            refuse(body)
        body["properties"]["provisioningState"] = "Deleting"
        job = host.begin_operation(operation, request.match_info["subscription"], body["location"], provider)

    async def finish() -> None:
        await asyncio.sleep(host.world.seconds(job.name))
        with host.world.lock:
            fault = host.world.faults.take(job.name, request.method, request.path, failed_operation=True)
            if fault is not None:
                body["properties"]["provisioningState"] = "Failed"
                job.fail(fault.error_code, _FAILED_TEXT)
                return
            host.world.resources.pop(key, None)
            host.world.disk_contents.pop(key, None)
        if on_deleted is not None:
            outcome = on_deleted(body)
            if outcome is not None:
                await outcome
        with host.world.lock:
            job.succeed()

    host.spawn(finish())
    return host.accepted(job, request)


def properties_of(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not body.get("location"):
        raise errors.invalid_parameter("The resource must have a location.", "location")
    properties = body.get("properties")
    return properties if isinstance(properties, dict) else {}


def compute_id(subscription: str, rg: str, path: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Compute/{path}"
