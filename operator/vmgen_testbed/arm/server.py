"""The ARM Compute simulator: an HTTPS server that the real `azure-mgmt-compute` async client talks to.

`ArmSimulator.start()` runs an aiohttp server in its own thread and event loop, so that tests and the
demo may block (subprocesses, sync clients) while it keeps serving. It answers, over TLS from a CA made
at start (`ca_bundle`), the calls vmgen makes: VM get/instanceView, powerOff/deallocate/start as
long-running operations, synchronous generalize, runCommand (run inside the VM's `Guest`), and PUT/GET
of images, snapshots, galleries, gallery images and gallery image versions. The same server is the fake
Entra authority (`entra.py`) and, under `/_control/`, a JSON control surface for other processes.

Every ARM request goes through one pipeline: bearer token (401 AuthenticationFailed /
InvalidAuthenticationToken) -> api-version (400) -> subscription (404 SubscriptionNotFound) -> injected
fault (429/5xx/drop) -> latency -> handler; every ARM response carries `x-ms-request-id`,
`x-ms-correlation-request-id` and `x-ms-ratelimit-remaining-subscription-reads|writes`, and is recorded
in the request log (the contract tests validate every logged body against Azure's schema).

Traps avoided: LRO URLs are absolute and built from the request's own Host; `Retry-After` on LRO
responses overrides the SDK's `polling_interval`, so it defaults to 0 (configurable); generalize answers
200 with no body; images answer 201 (the SDK accepts only 200/201 there), snapshots 202; guest callbacks
run as tasks in this loop, never under the world lock.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from vmgen_testbed.arm import errors
from vmgen_testbed.arm.entra import Entra, redacted
from vmgen_testbed.arm.faults import Fault
from vmgen_testbed.arm.lro import Operation, iso
from vmgen_testbed.arm.run_commands import RunCommands
from vmgen_testbed.arm.state import LONG_RUNNING, POWER_OPERATIONS, POWER_STATES, RequestRecord, Vm, World
from vmgen_testbed.guest import Guest, ShellNotSupported

__all__ = ["ArmSimulator", "Fault", "RequestRecord"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_VMS = "/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Compute"
_RUN_COMMANDS = {
    "RunShellScript": ("bash", "Linux", "RunCommandLinux"),
    "RunPowerShellScript": ("powershell", "Windows", "RunCommandWindows"),
}
_OUTPUT_LIMIT = 4096  # Run Command returns only the last 4,096 bytes of each stream
# PUT-created resources: operation -> (ARM type, status of the initial answer)
_CREATED = {
    "createImage": ("Microsoft.Compute/images", 201),
    "createSnapshot": ("Microsoft.Compute/snapshots", 202),
    "createGallery": ("Microsoft.Compute/galleries", 201),
    "createGalleryImage": ("Microsoft.Compute/galleries/images", 201),
    "createGalleryImageVersion": ("Microsoft.Compute/galleries/images/versions", 201),
}


class _Dropped(Exception):
    """The injected fault closed the connection without an answer."""


class ArmSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: Path | None = None,
        *,
        lro_retry_after: int = 0,
        run_command_timeout: float = 5400.0,
    ) -> None:
        self.host = host
        self._port = port
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="vmgen-arm-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.lro_retry_after = lro_retry_after
        self.run_command_timeout = run_command_timeout
        self.world = World()
        self.entra = Entra()
        self.tenant_id, self.client_id = str(uuid.uuid4()), str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(32)
        self.entra.add_service_principal(self.tenant_id, self.client_id, self.client_secret)
        self._ca = trustme.CA()
        self._ca_path = self.state_dir / "arm-ca.pem"
        self._ca.cert_pem.write_to_path(str(self._ca_path))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- addresses ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self._port}"

    @property
    def ca_bundle(self) -> str:
        return str(self._ca_path)

    @property
    def authority(self) -> str:
        return self.base_url

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/_control"

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ArmSimulator:
        if self._thread is not None:
            raise RuntimeError("the ARM simulator is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as error:  # reported to the caller of start()
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=serve, name="arm-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"the ARM simulator could not start on {self.host}:{self._port}") from failure[
                0
            ]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> ArmSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(self.host, "127.0.0.1", "localhost").configure_cert(context)
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self._port, ssl_context=context).start()
        self._port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- Python control surface (thread-safe) ----------------------------------------------------

    def add_service_principal(self, tenant_id: str, client_id: str, client_secret: str) -> None:
        self.entra.add_service_principal(tenant_id, client_id, client_secret)

    def seed_vm(
        self,
        *,
        subscription_id: str,
        resource_group: str,
        name: str,
        os_type: str = "Linux",
        guest: Guest | None = None,
        power_state: str = "running",
        generalized: bool = False,
        agent_ready: bool = True,
        location: str = "westeurope",
        extensions: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Create (or replace) a VM, and its subscription and resource group as needed. The guest is
        not called: it is expected to be in the state given (e.g. its sshd up for "running").
        `extensions` are (publisher, type) of VM extensions, as GET shows them in `resources`."""
        if os_type not in ("Linux", "Windows"):
            raise ValueError(f"os_type must be Linux or Windows, not {os_type!r}")
        if power_state not in POWER_STATES:
            raise ValueError(f"power_state must be one of {', '.join(POWER_STATES)}, not {power_state!r}")
        self.world.add_vm(
            Vm(
                subscription_id=subscription_id,
                resource_group=resource_group,
                name=name,
                os_type=os_type,
                location=location,
                power_state=power_state,
                generalized=generalized,
                agent_ready=agent_ready,
                guest=guest,
                extensions=tuple(extensions),
            )
        )

    def update_vm(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        *,
        power_state: str | None = None,
        generalized: bool | None = None,
        agent_ready: bool | None = None,
    ) -> dict[str, Any]:
        """Change a VM's state behind the API (as if it happened inside or outside Azure's view)."""
        if power_state is not None and power_state not in POWER_STATES:
            raise ValueError(f"power_state must be one of {', '.join(POWER_STATES)}, not {power_state!r}")
        with self.world.lock:
            vm = self._known_vm(subscription_id, resource_group, name)
            vm.power_state = power_state if power_state is not None else vm.power_state
            vm.generalized = generalized if generalized is not None else vm.generalized
            vm.agent_ready = agent_ready if agent_ready is not None else vm.agent_ready
            return vm.state()

    def vm_state(self, subscription_id: str, resource_group: str, name: str) -> dict[str, Any]:
        with self.world.lock:
            return self._known_vm(subscription_id, resource_group, name).state()

    def seed_gallery_image(
        self,
        *,
        subscription_id: str,
        resource_group: str,
        gallery: str,
        image: str,
        os_type: str = "Linux",
        os_state: str = "Generalized",
        location: str = "westeurope",
    ) -> None:
        """Create a gallery and an image definition in it, ready for image versions."""
        self.world.ensure_resource_group(subscription_id, resource_group)
        prefix = (
            f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Compute"
        )
        gallery_id, image_id = f"{prefix}/galleries/{gallery}", f"{prefix}/galleries/{gallery}/images/{image}"
        with self.world.lock:
            self.world.resources[gallery_id.lower()] = _gallery_body(
                gallery_id, gallery, location, subscription_id, {}, "Succeeded"
            )
            self.world.resources[image_id.lower()] = _resource(
                image_id,
                image,
                "Microsoft.Compute/galleries/images",
                location,
                {
                    "osType": os_type,
                    "osState": os_state,
                    "hyperVGeneration": "V2",
                    "identifier": {"publisher": "vmgen", "offer": gallery, "sku": image},
                    "provisioningState": "Succeeded",
                },
            )

    def set_latency(self, operation: str, seconds: float) -> None:
        """Long-running operations stay InProgress this long; other operations answer this much later."""
        with self.world.lock:
            self.world.latency[operation] = seconds

    def inject(self, fault: Fault) -> None:
        with self.world.lock:
            self.world.faults.add(fault)

    def clear_faults(self) -> None:
        with self.world.lock:
            self.world.faults.clear()

    def requests(self) -> list[RequestRecord]:
        with self.world.lock:
            return list(self.world.log)

    def clear_requests(self) -> None:
        with self.world.lock:
            self.world.log.clear()

    def _known_vm(self, subscription_id: str, resource_group: str, name: str) -> Vm:
        vm = self.world.vm(subscription_id, resource_group, name)
        if vm is None:
            raise KeyError(f"no VM {subscription_id}/{resource_group}/{name} in the simulator")
        return vm

    # ---- the application ------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._pipeline])
        self.entra.add_routes(app)
        add = app.router.add_route
        add("GET", f"{_VMS}/virtualMachines/{{vm}}", self._get_vm, name="get")
        add("GET", f"{_VMS}/virtualMachines/{{vm}}/instanceView", self._instance_view, name="instanceView")
        for operation in POWER_OPERATIONS:
            add("POST", f"{_VMS}/virtualMachines/{{vm}}/{operation}", self._power, name=operation)
        add("POST", f"{_VMS}/virtualMachines/{{vm}}/generalize", self._generalize, name="generalize")
        add("POST", f"{_VMS}/virtualMachines/{{vm}}/runCommand", self._run_command, name="runCommand")
        for suffix, kind in (
            ("images/{name}", "Image"),
            ("snapshots/{name}", "Snapshot"),
            ("galleries/{gallery}", "Gallery"),
            ("galleries/{gallery}/images/{image}", "GalleryImage"),
            ("galleries/{gallery}/images/{image}/versions/{name}", "GalleryImageVersion"),
        ):
            add("GET", f"{_VMS}/{suffix}", self._get_resource, name=f"get{kind}")
            add("PUT", f"{_VMS}/{suffix}", self._put_resource, name=f"create{kind}")
        add(
            "GET",
            "/subscriptions/{subscription}/providers/Microsoft.Compute/locations/{location}/operations/"
            "{operation}",
            self._operation,
            name="operationStatus",
        )
        RunCommands(self).add_routes(app)  # managed run commands (virtualMachines/{vm}/runCommands/{name})
        control = "/_control"
        app.router.add_get(f"{control}/info", self._control_info)
        app.router.add_post(f"{control}/vms", self._control_seed_vm)
        app.router.add_get(f"{control}/vms/{{subscription}}/{{rg}}/{{vm}}", self._control_vm)
        app.router.add_patch(f"{control}/vms/{{subscription}}/{{rg}}/{{vm}}", self._control_update_vm)
        app.router.add_post(f"{control}/gallery-images", self._control_gallery_image)
        app.router.add_post(f"{control}/service-principals", self._control_service_principal)
        app.router.add_post(f"{control}/latency", self._control_latency)
        app.router.add_post(f"{control}/faults", self._control_faults)
        app.router.add_get(f"{control}/requests", self._control_requests)
        app.router.add_delete(f"{control}/requests", self._control_clear_requests)
        return app

    @web.middleware
    async def _pipeline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_control/"):
            return await _control_errors(request, handler)
        operation = request.match_info.route.name or "unknown"
        if operation in ("token", "openidConfiguration"):
            response = await handler(request)
            self._record(request, operation, response.status, redacted(_json_of(response)), api="entra")
            return response
        if not request.path.startswith("/subscriptions/"):
            return await handler(request)
        if operation == "operationStatus" and request.query.get("monitor") == "true":
            operation = "operationResult"
        request_body = await _json_body(request)
        try:
            response = await self._arm(request, handler, operation)
        except _Dropped:
            self._record(request, operation, None, None, request_body=request_body)
            assert request.transport is not None
            request.transport.abort()  # aiohttp's write of the answer below fails quietly
            return web.Response(status=500)
        except errors.ArmError as refusal:
            response = web.json_response(refusal.body(), status=refusal.status, headers=refusal.headers)
        self._arm_headers(request, response)
        self._record(request, operation, response.status, _json_of(response), request_body=request_body)
        return response

    async def _arm(self, request: web.Request, handler: Handler, operation: str) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            raise _unauthorized(errors.missing_authorization(), self.authority, self.tenant_id)
        if not self.entra.accepts(authorization.removeprefix("Bearer ").strip()):
            raise _unauthorized(errors.invalid_token(), self.authority, self.tenant_id)
        if not request.query.get("api-version"):
            raise errors.missing_api_version()
        subscription = request.match_info.get("subscription") or request.path.split("/")[2]
        if not self.world.has_subscription(subscription):
            raise errors.subscription_not_found(subscription)
        if request.match_info.http_exception is not None:
            raise errors.invalid_resource_type(request.query["api-version"])
        with self.world.lock:
            fault = self.world.faults.take(operation, request.method, failed_operation=False)
        if fault is not None:
            if fault.kind == "drop":
                raise _Dropped()
            refusal = errors.injected(int(fault.kind[:3]), fault.error_code)
            if fault.kind == "429-retry-after":
                refusal.headers["Retry-After"] = str(fault.retry_after)
            raise refusal
        if operation not in LONG_RUNNING:
            await asyncio.sleep(self.world.seconds(operation))
        return await handler(request)

    def _arm_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        write = request.method in ("PUT", "POST", "DELETE", "PATCH")
        subscription = request.path.split("/")[2] if request.path.count("/") > 1 else ""
        remaining = self.world.remaining_quota(subscription, write=write)
        response.headers["x-ms-request-id"] = str(uuid.uuid4())
        response.headers["x-ms-correlation-request-id"] = request.headers.get(
            "x-ms-correlation-request-id", str(uuid.uuid4())
        )
        if "x-ms-client-request-id" in request.headers:
            response.headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
        response.headers[f"x-ms-ratelimit-remaining-subscription-{'writes' if write else 'reads'}"] = str(
            remaining
        )

    def _record(
        self,
        request: web.Request,
        operation: str,
        status: int | None,
        body: Any,
        *,
        api: str = "arm",
        request_body: Any = None,
    ) -> None:
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            operation=operation,
            status=status,
            response_body=body,
            timestamp=time.time(),
            api=api,
            request_body=request_body,
        )
        with self.world.lock:
            self.world.log.append(record)

    # ---- virtual machines ------------------------------------------------------------------------

    def _vm(self, request: web.Request) -> Vm:
        subscription, rg = request.match_info["subscription"], request.match_info["rg"]
        if not self.world.has_resource_group(subscription, rg):
            raise errors.resource_group_not_found(rg)
        vm = self.world.vm(subscription, rg, request.match_info["vm"])
        if vm is None:
            raise errors.resource_not_found("Microsoft.Compute/virtualMachines", request.match_info["vm"], rg)
        return vm

    async def _get_vm(self, request: web.Request) -> web.Response:
        vm = self._vm(request)
        with self.world.lock:
            body = vm.body(with_instance_view=request.query.get("$expand") == "instanceView")
        return web.json_response(body)

    async def _instance_view(self, request: web.Request) -> web.Response:
        vm = self._vm(request)
        with self.world.lock:
            return web.json_response(vm.instance_view())

    async def _power(self, request: web.Request) -> web.Response:
        operation = request.match_info.route.name or ""
        vm = self._vm(request)
        with self.world.lock:
            if operation == "start" and vm.generalized:
                raise errors.operation_on_generalized_vm("start", vm.name)
            if vm.operation is not None:
                raise errors.another_operation_in_progress(operation, vm.name, vm.operation)
            before = vm.power_state
            during, after = POWER_OPERATIONS[operation]
            if before == "deallocated" and operation == "powerOff":
                during = after = "deallocated"  # Azure keeps a deallocated VM deallocated
            vm.power_state, vm.operation = during, operation
            job = self._begin(operation, vm.subscription_id, vm.location)
        self._spawn(self._finish_power(vm, job, before, after, request.method))
        return self._accepted(job, request)

    async def _finish_power(self, vm: Vm, job: Operation, before: str, after: str, method: str) -> None:
        await asyncio.sleep(self.world.seconds(job.name))
        with self.world.lock:
            fault = self.world.faults.take(job.name, method, failed_operation=True)
        failure: tuple[str, str] | None = None
        if fault is not None:
            failure = (fault.error_code, "An internal execution error occurred. Please retry later.")
        elif vm.guest is not None:
            try:
                await (vm.guest.power_on() if job.name == "start" else vm.guest.power_off())
            except Exception as error:  # the guest failed: the operation fails, as on Azure
                failure = ("InternalExecutionError", f"The guest failed to {job.name}: {error}")
        with self.world.lock:
            vm.operation = None
            if failure is None:
                vm.power_state = after
                job.succeed()
            else:
                vm.power_state = before
                job.fail(*failure)

    async def _generalize(self, request: web.Request) -> web.Response:
        vm = self._vm(request)
        with self.world.lock:
            if vm.power_state in ("running", "starting", "stopping"):
                raise errors.generalize_while_running(vm.name)
            if vm.operation is not None:
                raise errors.another_operation_in_progress("generalize", vm.name, vm.operation)
            vm.generalized = True
        return web.Response(status=200)

    async def _run_command(self, request: web.Request) -> web.Response:
        vm = self._vm(request)
        body = await _json_body(request) or {}
        command_id = str(body.get("commandId", ""))
        script = body.get("script") or []
        if command_id not in _RUN_COMMANDS:
            raise errors.invalid_parameter(
                f"The command '{command_id}' is not supported. Use RunShellScript or RunPowerShellScript.",
                "commandId",
            )
        shell, os_type, handler = _RUN_COMMANDS[command_id]
        if not isinstance(script, list) or not all(isinstance(line, str) for line in script):
            raise errors.invalid_parameter("The script must be a list of strings.", "script")
        with self.world.lock:
            if vm.os_type != os_type:
                raise errors.invalid_parameter(
                    f"The command '{command_id}' is not supported for {vm.os_type} virtual machines.",
                    "commandId",
                )
            if vm.generalized:
                raise errors.operation_on_generalized_vm("runCommand", vm.name)
            if vm.power_state != "running":
                raise errors.operation_on_stopped_vm("runCommand", vm.name, vm.power_state)
            if vm.guest is None or not vm.agent_ready:
                raise errors.agent_not_reporting(vm.name)
            if vm.running_command:
                raise errors.ArmError(
                    409,
                    "Conflict",
                    "Run command extension execution is in progress. "
                    "Please wait for completion before invoking a run command.",
                )
            vm.running_command = True
            job = self._begin("runCommand", vm.subscription_id, vm.location)
        self._spawn(
            self._finish_run_command(vm, vm.guest, job, "\n".join(script), shell, handler, request.method)
        )
        return self._accepted(job, request)

    async def _finish_run_command(
        self, vm: Vm, guest: Guest, job: Operation, script: str, shell: str, handler: str, method: str
    ) -> None:
        try:
            await asyncio.sleep(self.world.seconds(job.name))
            with self.world.lock:
                fault = self.world.faults.take(job.name, method, failed_operation=True)
            if fault is not None:
                with self.world.lock:
                    job.fail(fault.error_code, "An internal execution error occurred. Please retry later.")
                return
            try:
                result = await guest.run_script(script, shell=shell, timeout=self.run_command_timeout)
            except ShellNotSupported:
                refusal = errors.extension_failed(vm.name, handler, f"The guest cannot run {shell} scripts.")
            except Exception as error:  # anything else the guest raises: the extension failed
                refusal = errors.extension_failed(vm.name, handler, str(error))
            else:
                with self.world.lock:
                    job.succeed(_run_command_result(shell, result.exit_code, result.stdout, result.stderr))
                return
            with self.world.lock:
                job.fail(refusal.code, refusal.message)
        finally:
            with self.world.lock:
                vm.running_command = False

    # ---- PUT/GET resources and operations --------------------------------------------------------

    async def _get_resource(self, request: web.Request) -> web.Response:
        with self.world.lock:
            body = self.world.resources.get(request.path.lower())
            if body is None:
                raise self._missing(request)
            return web.json_response(body)

    def _missing(self, request: web.Request) -> errors.ArmError:
        subscription, rg = request.match_info["subscription"], request.match_info["rg"]
        if not self.world.has_resource_group(subscription, rg):
            return errors.resource_group_not_found(rg)
        path = request.path.split("/providers/", 1)[1]
        kind, _, name = path.rpartition("/")
        return errors.resource_not_found(kind, name, rg)

    async def _put_resource(self, request: web.Request) -> web.Response:
        operation = request.match_info.route.name or ""
        subscription, rg = request.match_info["subscription"], request.match_info["rg"]
        if not self.world.has_resource_group(subscription, rg):
            raise errors.resource_group_not_found(rg)
        body = await _json_body(request)
        if not isinstance(body, dict) or not body.get("location"):
            raise errors.invalid_parameter("The resource must have a location.", "location")
        properties: dict[str, Any] = body["properties"] if isinstance(body.get("properties"), dict) else {}
        resource_id, name = request.path, request.path.rsplit("/", 1)[1]
        arm_type, initial_status = _CREATED[operation]
        with self.world.lock:
            built = self._build(operation, request, properties, subscription, rg)
            resource = (
                _gallery_body(resource_id, name, body["location"], subscription, built, "Creating")
                if operation == "createGallery"
                else _resource(
                    resource_id, name, arm_type, body["location"], {**built, "provisioningState": "Creating"}
                )
            )
            if operation == "createSnapshot":
                resource["sku"] = {"name": "Standard_LRS", "tier": "Standard"}
            self.world.resources[resource_id.lower()] = resource
            job = self._begin(operation, subscription, body["location"])
        self._spawn(self._finish_create(resource, job, request.method))
        async_url, location = job.urls(f"https://{request.host}", request.query["api-version"])
        headers = {"Azure-AsyncOperation": async_url, "Retry-After": str(self.lro_retry_after)}
        if initial_status == 202:
            return web.Response(status=202, headers={**headers, "Location": location})
        return web.json_response(resource, status=initial_status, headers=headers)

    def _build(
        self, operation: str, request: web.Request, properties: dict[str, Any], subscription: str, rg: str
    ) -> dict[str, Any]:
        """Validate a PUT against the world (under the lock) and return the resource's properties."""
        now = iso(datetime.now(UTC))
        if operation == "createImage":
            source = (properties.get("sourceVirtualMachine") or {}).get("id")
            if source is None:
                storage = properties.get("storageProfile") or {}
                if not (storage.get("osDisk") or {}).get("osType"):
                    raise errors.invalid_parameter(
                        "Either sourceVirtualMachine or storageProfile.osDisk must be given.", "properties"
                    )
                return {
                    "storageProfile": storage,
                    "hyperVGeneration": properties.get("hyperVGeneration", "V2"),
                }
            vm = self._source_vm(source, rg)
            if not vm.generalized:
                raise errors.image_requires_generalized(vm.name)
            return {
                "sourceVirtualMachine": {"id": vm.id},
                "hyperVGeneration": "V2",
                "storageProfile": {
                    "osDisk": {
                        "osType": vm.os_type,
                        "osState": "Generalized",
                        "managedDisk": {"id": vm.os_disk_id},
                        "diskSizeGB": 30,
                        "storageAccountType": "Premium_LRS",
                    },
                    "dataDisks": [],
                    "zoneResilient": False,
                },
            }
        if operation == "createSnapshot":
            creation = properties.get("creationData") or {}
            disk = self.world.vm_by_disk(str(creation.get("sourceResourceId", "")))
            if disk is None:
                raise errors.resource_not_found(
                    "Microsoft.Compute/disks",
                    str(creation.get("sourceResourceId", "")).rsplit("/", 1)[-1],
                    rg,
                )
            return {
                "osType": disk.os_type,
                "creationData": {
                    "createOption": creation.get("createOption", "Copy"),
                    "sourceResourceId": disk.os_disk_id,
                },
                "diskSizeGB": 30,
                "timeCreated": now,
                "uniqueId": str(uuid.uuid4()),
                "incremental": bool(properties.get("incremental", False)),
            }
        if operation == "createGallery":
            return {"description": properties.get("description", "")}
        gallery = request.match_info["gallery"]
        gallery_id = (
            f"/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Compute/"
            f"galleries/{gallery}"
        )
        if operation == "createGalleryImage":
            if gallery_id.lower() not in self.world.resources:
                raise errors.parent_not_found(gallery)
            if (
                not isinstance(properties.get("identifier"), dict)
                or properties.get("osType") not in ("Linux", "Windows")
                or properties.get("osState") not in ("Generalized", "Specialized")
            ):
                raise errors.invalid_parameter(
                    "osType, osState and identifier {publisher, offer, sku} are required.", "properties"
                )
            return {
                key: properties[key]
                for key in ("osType", "osState", "identifier", "hyperVGeneration", "description")
                if key in properties
            }
        image = self.world.resources.get(f"{gallery_id}/images/{request.match_info['image']}".lower())
        if image is None:
            raise errors.parent_not_found(f"{gallery}/{request.match_info['image']}")
        source = (properties.get("storageProfile") or {}).get("source") or {}
        source_id = source.get("virtualMachineId") or source.get("id") or ""
        if "/virtualmachines/" in source_id.lower():
            vm = self._source_vm(source_id, rg)
            if image["properties"]["osState"] == "Generalized" and not vm.generalized:
                raise errors.image_requires_generalized(vm.name, "Create Gallery Image Version")
        elif source_id.lower() not in self.world.resources:
            raise errors.invalid_parameter(
                f"The source '{source_id}' was not found.", "storageProfile.source"
            )
        return {
            "publishingProfile": {"excludeFromLatest": False, "publishedDate": now},
            "storageProfile": {
                "source": dict(source),
                "osDiskImage": {"hostCaching": "ReadWrite", "sizeInGB": 30},
            },
        }

    def _source_vm(self, resource_id: str, rg: str) -> Vm:
        vm = self.world.vm_by_id(resource_id)
        if vm is None:
            raise errors.resource_not_found(
                "Microsoft.Compute/virtualMachines", resource_id.rsplit("/", 1)[-1], rg
            )
        return vm

    async def _finish_create(self, resource: dict[str, Any], job: Operation, method: str) -> None:
        await asyncio.sleep(self.world.seconds(job.name))
        with self.world.lock:
            fault = self.world.faults.take(job.name, method, failed_operation=True)
            resource["properties"]["provisioningState"] = "Failed" if fault else "Succeeded"
            if fault is not None:
                job.fail(fault.error_code, "An internal execution error occurred. Please retry later.")
            else:
                job.succeed()

    async def _operation(self, request: web.Request) -> web.Response:
        with self.world.lock:
            job = self.world.operations.get(request.match_info["operation"])
            if job is None or job.subscription_id.lower() != request.match_info["subscription"].lower():
                raise errors.ArmError(404, "NotFound", "The entity was not found in this Azure location.")
            if request.query.get("monitor") != "true":
                return web.json_response(job.status_body())
            if not job.done:
                return web.Response(
                    status=202,
                    headers={
                        "Location": str(request.url.with_scheme("https")),
                        "Retry-After": str(self.lro_retry_after),
                    },
                )
            if job.error is not None:
                raise errors.ArmError(500, job.error["code"], job.error["message"])
            return web.json_response(job.result) if job.result is not None else web.Response(status=200)

    def _begin(self, name: str, subscription_id: str, location: str) -> Operation:
        job = Operation(name=name, subscription_id=subscription_id, location=location)
        self.world.operations[job.id] = job
        return job

    def _accepted(self, job: Operation, request: web.Request) -> web.Response:
        async_url, location = job.urls(f"https://{request.host}", request.query["api-version"])
        return web.Response(
            status=202,
            headers={
                "Azure-AsyncOperation": async_url,
                "Location": location,
                "Retry-After": str(self.lro_retry_after),
            },
        )

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- HTTP control surface --------------------------------------------------------------------

    async def _control_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "base_url": self.base_url,
                "authority": self.authority,
                "ca_bundle": self.ca_bundle,
                "tenant_id": self.tenant_id,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        )

    async def _control_seed_vm(self, request: web.Request) -> web.Response:
        arguments = await request.json()
        self.seed_vm(**arguments)
        return web.json_response(
            self.vm_state(arguments["subscription_id"], arguments["resource_group"], arguments["name"]),
            status=201,
        )

    async def _control_vm(self, request: web.Request) -> web.Response:
        info = request.match_info
        return web.json_response(self.vm_state(info["subscription"], info["rg"], info["vm"]))

    async def _control_update_vm(self, request: web.Request) -> web.Response:
        info = request.match_info
        return web.json_response(
            self.update_vm(info["subscription"], info["rg"], info["vm"], **await request.json())
        )

    async def _control_gallery_image(self, request: web.Request) -> web.Response:
        self.seed_gallery_image(**await request.json())
        return web.Response(status=201)

    async def _control_service_principal(self, request: web.Request) -> web.Response:
        self.add_service_principal(**await request.json())
        return web.Response(status=201)

    async def _control_latency(self, request: web.Request) -> web.Response:
        arguments = await request.json()
        self.set_latency(str(arguments["operation"]), float(arguments["seconds"]))
        return web.Response(status=204)

    async def _control_faults(self, request: web.Request) -> web.Response:
        fault = Fault(**await request.json())
        self.inject(fault)
        return web.json_response(asdict(fault), status=201)

    async def _control_requests(self, request: web.Request) -> web.Response:
        return web.json_response([record.to_json() for record in self.requests()])

    async def _control_clear_requests(self, request: web.Request) -> web.Response:
        self.clear_requests()
        return web.Response(status=204)


async def _control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except KeyError as error:
        return web.json_response({"error": str(error)}, status=404)
    except (TypeError, ValueError) as error:
        return web.json_response({"error": str(error)}, status=400)


def _unauthorized(refusal: errors.ArmError, authority: str, tenant_id: str) -> errors.ArmError:
    refusal.headers["WWW-Authenticate"] = (
        f'Bearer authorization_uri="{authority}/{tenant_id}", error="invalid_token", '
        f'error_description="{refusal.message}"'
    )
    return refusal


def _resource(
    resource_id: str, name: str, arm_type: str, location: str, properties: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": resource_id,
        "name": name,
        "type": arm_type,
        "location": location,
        "tags": {},
        "properties": properties,
    }


def _gallery_body(
    resource_id: str, name: str, location: str, subscription_id: str, properties: dict[str, Any], state: str
) -> dict[str, Any]:
    return _resource(
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


def _run_command_result(shell: str, exit_code: int, stdout: str, stderr: str) -> dict[str, Any]:
    """Azure's RunCommandResult: Linux puts both streams in one message, Windows one status per stream."""
    stdout, stderr = stdout[-_OUTPUT_LIMIT:], stderr[-_OUTPUT_LIMIT:]
    if shell == "powershell":
        return {
            "value": [
                {
                    "code": "ComponentStatus/StdOut/succeeded",
                    "level": "Info",
                    "displayStatus": "Provisioning succeeded",
                    "message": stdout,
                },
                {
                    "code": "ComponentStatus/StdErr/succeeded",
                    "level": "Info",
                    "displayStatus": "Provisioning succeeded",
                    "message": stderr,
                },
            ]
        }
    if exit_code == 0:
        status = {
            "code": "ProvisioningState/succeeded",
            "level": "Info",
            "displayStatus": "Provisioning succeeded",
            "message": "Enable succeeded: ",
        }
    else:
        status = {
            "code": "ProvisioningState/failed",
            "level": "Error",
            "displayStatus": "Provisioning failed",
            "message": "Enable failed: failed to execute command: command terminated with exit "
            f"status={exit_code}",
        }
    status["message"] += f"\n[stdout]\n{stdout}\n[stderr]\n{stderr}"
    return {"value": [status]}


async def _json_body(request: web.Request) -> Any:
    if not request.body_exists:
        return None
    try:
        return json.loads(await request.read())
    except ValueError:
        return None


def _json_of(response: web.StreamResponse) -> Any:
    body = getattr(response, "body", None)
    if not isinstance(body, bytes) or not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
