"""Managed run commands: `virtualMachines/{vm}/runCommands/{name}` PUT, GET (`$expand=instanceView`), DELETE.

Unlike the action Run Command (`POST .../runCommand`, one at a time, the last 4,096 bytes of each stream),
a managed run command is a child resource: PUT creates it and starts the script in the VM's guest; with
`asyncExecution: true` the PUT's long-running operation ends as soon as the script started and the
instance view's `executionState` moves on by itself (Pending -> Running -> Succeeded | Failed | TimedOut),
with `exitCode`, `output` and `error`; without it, the operation ends when the script did.
`timeoutInSeconds` bounds the script (TimedOut). DELETE answers 202 then 200/204 on polls, as Azure does.

Traps avoided: the resource body never carries the instance view unless `$expand=instanceView` is asked
for (the SDK's plain GET must not see it); a guest that cannot run PowerShell fails the execution, not
the HTTP request; scripts run as tasks in the simulator's loop, never under the world lock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from vmgen_testbed.arm import errors, lro
from vmgen_testbed.arm.lro import iso

if TYPE_CHECKING:
    from vmgen_testbed.arm.server import ArmSimulator
    from vmgen_testbed.arm.state import Vm

__all__ = ["RunCommands"]

_TYPE = "Microsoft.Compute/virtualMachines/runCommands"
_PATH = (
    "/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}"
    "/runCommands/{name}"
)


class RunCommands:
    def __init__(self, simulator: ArmSimulator) -> None:
        self._sim = simulator
        self._views: dict[str, dict[str, Any]] = {}  # lower-cased resource id -> instance view

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("PUT", _PATH, self._put, name="createRunCommand")
        app.router.add_route("GET", _PATH, self._get, name="getRunCommand")
        app.router.add_route("DELETE", _PATH, self._delete, name="deleteRunCommand")

    def _vm(self, request: web.Request) -> Vm:
        return self._sim._vm(request)

    async def _put(self, request: web.Request) -> web.Response:
        vm = self._vm(request)
        body = await request.json() if request.body_exists else {}
        properties = body.get("properties") or {}
        script = (properties.get("source") or {}).get("script")
        if not isinstance(script, str) or not script:
            raise errors.invalid_parameter("properties.source.script must be a non-empty string.", "source")
        timeout = int(properties.get("timeoutInSeconds") or 5400)
        asynchronous = bool(properties.get("asyncExecution", False))
        world = self._sim.world
        with world.lock:
            if vm.generalized:
                raise errors.operation_on_generalized_vm("runCommands", vm.name)
            if vm.power_state != "running":
                raise errors.operation_on_stopped_vm("runCommands", vm.name, vm.power_state)
            if vm.guest is None or not vm.agent_ready:
                raise errors.agent_not_reporting(vm.name)
            key = request.path.lower()
            resource = {
                "id": request.path,
                "name": request.match_info["name"],
                "type": _TYPE,
                "location": body.get("location") or vm.location,
                "tags": body.get("tags") or {},
                "properties": {
                    "source": {"script": script},
                    "asyncExecution": asynchronous,
                    "timeoutInSeconds": timeout,
                    "treatFailureAsDeploymentFailure": bool(
                        properties.get("treatFailureAsDeploymentFailure")
                    ),
                    "provisioningState": "Creating",
                },
            }
            world.resources[key] = resource
            self._views[key] = {"executionState": "Pending", "executionMessage": ""}
            job = self._sim._begin("createRunCommand", vm.subscription_id, vm.location)
        self._sim._spawn(self._execute(vm, key, script, timeout, asynchronous, job))
        async_url, _ = job.urls(f"https://{request.host}", request.query["api-version"])
        headers = {"Azure-AsyncOperation": async_url, **lro.retry_after(self._sim.lro_retry_after)}
        return web.json_response(self._body(key, expand=False), status=201, headers=headers)

    async def _execute(self, vm: Vm, key: str, script: str, limit: int, asynchronous: bool, job: Any) -> None:
        world = self._sim.world
        await world.pause("createRunCommand", vm=vm.name, path=key)
        view = self._views[key]
        with world.lock:
            view.update(executionState="Running", startTime=iso(datetime.now(UTC)))
            if asynchronous:
                world.resources[key]["properties"]["provisioningState"] = "Succeeded"
                job.succeed()
        assert vm.guest is not None
        try:
            result = await asyncio.wait_for(
                vm.guest.run_script(script, shell="powershell", timeout=limit), limit
            )
        except TimeoutError:
            outcome = {
                "executionState": "TimedOut",
                "executionMessage": "Execution timed out",
                "exitCode": -1,
            }
        except Exception as error:  # the guest could not run it: the execution failed
            outcome = {"executionState": "Failed", "executionMessage": str(error), "exitCode": -1}
        else:
            outcome = {
                "executionState": "Succeeded" if result.exit_code == 0 else "Failed",
                "executionMessage": "" if result.exit_code == 0 else f"Script exited with {result.exit_code}",
                "exitCode": result.exit_code,
                "output": result.stdout,
                "error": result.stderr,
            }
        with world.lock:
            view.update(outcome, endTime=iso(datetime.now(UTC)))
            if not asynchronous:
                world.resources[key]["properties"]["provisioningState"] = "Succeeded"
                job.succeed()

    def _body(self, key: str, *, expand: bool) -> dict[str, Any]:
        resource = self._sim.world.resources[key]
        body = {**resource, "properties": dict(resource["properties"])}
        if expand:
            body["properties"]["instanceView"] = dict(self._views.get(key, {}))
        return body

    async def _get(self, request: web.Request) -> web.Response:
        self._vm(request)
        key = request.path.lower()
        with self._sim.world.lock:
            if key not in self._sim.world.resources:
                raise errors.resource_not_found(_TYPE, request.match_info["name"], request.match_info["rg"])
            return web.json_response(self._body(key, expand=request.query.get("$expand") == "instanceView"))

    async def _delete(self, request: web.Request) -> web.Response:
        self._vm(request)
        key = request.path.lower()
        with self._sim.world.lock:
            if key not in self._sim.world.resources:
                return web.Response(status=204)
            del self._sim.world.resources[key]
            self._views.pop(key, None)
            job = self._sim._begin("deleteRunCommand", request.match_info["subscription"], "westeurope")
            job.succeed()
        async_url, location = job.urls(f"https://{request.host}", request.query["api-version"])
        return web.Response(
            status=202,
            headers={
                "Azure-AsyncOperation": async_url,
                "Location": location,
                **lro.retry_after(self._sim.lro_retry_after),
            },
        )
