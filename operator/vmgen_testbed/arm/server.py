"""The ARM Compute simulator: an HTTPS server that the real `azure-mgmt-compute` async client talks to.

`ArmSimulator.start()` runs an aiohttp server in its own thread and event loop, so that tests and the
demo may block (subprocesses, sync clients) while it keeps serving. It answers, over TLS from a CA made
at start (`ca_bundle`), the calls vmgen makes: VM get/instanceView, powerOff/deallocate/start as
long-running operations, synchronous generalize, runCommand (run inside the VM's `Guest`). The resources
of capture and copy register their own routes from their modules: `snapshots` (snapshots, disks),
`images` (managed images), `galleries` (galleries, definitions, replicating versions), `network`
(virtual networks, subnets, NICs) and `vm_lifecycle` (VM create from disks, delete), sharing the helpers
of `resources`. The same server is the fake Entra authority (`entra.py`) and, under `/_control/`, a JSON
control surface for other processes.

Every ARM request goes through one pipeline: bearer token (401 AuthenticationFailed /
InvalidAuthenticationToken) -> api-version (400 MissingApiVersionParameter, and for a version the type is
not served at NoRegisteredProviderFound / InvalidApiVersionParameter, `api_versions.py`) -> subscription
(404 SubscriptionNotFound) -> Compute throttling (429, `throttling.py`, off by default) -> injected fault
(429/5xx/drop) -> latency -> handler; every ARM response carries `x-ms-request-id`,
`x-ms-correlation-request-id` and `x-ms-ratelimit-remaining-subscription-reads|writes` (and, while
throttling is on, `x-ms-ratelimit-remaining-resource`). Every request but the control surface's is recorded
in the request log, unknown paths and tenant-level ones (`GET /subscriptions`, `/tenants`, the Azure CLI's
`/metadata/endpoints`, `cli_support.py`) included; the contract tests validate every logged body against
Azure's schema.

Traps avoided: LRO URLs are absolute and built from the request's own Host; Compute's 202s carry no
`Retry-After` (azure-sdk-for-python's recording sdk/compute/azure-mgmt-compute/tests/recordings/
test_mgmt_compute.test_virtual_machines_operations.yaml: powerOff, start, deallocate answer
`Azure-AsyncOperation`, `Location`, `x-ms-ratelimit-remaining-resource` and no Retry-After, nor do the
status polls), so the client's `polling_interval` paces polls; `lro_retry_after=N` adds the header for
clients that cannot be configured (the az CLI polls every 30 s otherwise). `Retry-After: 0`, sent until
now, was the same as no header: azure-core takes a falsy delay as absent. Generalize answers 200 with no
body; images answer 201 (the SDK accepts only 200/201 there), snapshots 202; guest callbacks run as tasks
in this loop, never under the world lock.
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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web
from yarl import URL

from vmgen_testbed.arm import (
    api_versions,
    errors,
    extensions,
    galleries,
    images,
    network,
    scope,
    snapshots,
    vm_lifecycle,
)
from vmgen_testbed.arm.cli_support import ANONYMOUS, TENANT_LEVEL, CliSupport
from vmgen_testbed.arm.entra import Entra, redacted
from vmgen_testbed.arm.faults import Fault
from vmgen_testbed.arm.lro import Operation
from vmgen_testbed.arm.lro import retry_after as lro_headers
from vmgen_testbed.arm.run_commands import RunCommands
from vmgen_testbed.arm.state import (
    LONG_RUNNING,
    POWER_OPERATIONS,
    POWER_STATES,
    RequestRecord,
    Vm,
    World,
    latency_key,
)
from vmgen_testbed.arm.throttling import Throttle
from vmgen_testbed.guest import Guest, GuestFactory, ShellNotSupported

__all__ = ["ArmSimulator", "Fault", "RequestRecord"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_VMS = "/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Compute"
_RUN_COMMANDS = {
    "RunShellScript": ("bash", "Linux", "RunCommandLinux"),
    "RunPowerShellScript": ("powershell", "Windows", "RunCommandWindows"),
}
_RATELIMIT = web.RequestKey("ratelimit", str)  # x-ms-ratelimit-remaining-resource of this request
_OUTPUT_LIMIT = 4096  # Run Command returns only the last 4,096 bytes of each stream


class _Dropped(Exception):
    """The injected fault closed the connection without an answer."""


class ArmSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: Path | None = None,
        *,
        lro_retry_after: int | None = None,
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
        self.throttle = Throttle()
        self.cli = CliSupport(tenant_id=self.tenant_id, subscriptions=self._subscriptions)
        self._ca = trustme.CA()
        self._ca_path = self.state_dir / "arm-ca.pem"
        self._ca.cert_pem.write_to_path(str(self._ca_path))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # operation path (lower) -> the request path that started it: poll faults match the starter
        self._started_by: dict[str, str] = {}
        self.guest_factory: GuestFactory | None = None  # boots guests of VMs created by PUT

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
        security_type: str | None = None,
        hyper_v_generation: str = "V2",
        data_disks: int = 0,
        extensions: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Create (or replace) a VM, its NIC in `<rg>-vnet/default`, and its subscription and resource
        group as needed. The guest is not called: it is expected to be in the state given (e.g. its
        sshd up for "running"). `security_type` is TrustedLaunch or ConfidentialVM (None: Standard);
        `data_disks` gives the VM that many managed data disks (luns 0..n-1); `extensions` are (publisher,
        type) of VM extensions, as GET shows them in `resources`."""
        if os_type not in ("Linux", "Windows"):
            raise ValueError(f"os_type must be Linux or Windows, not {os_type!r}")
        if power_state not in POWER_STATES:
            raise ValueError(f"power_state must be one of {', '.join(POWER_STATES)}, not {power_state!r}")
        vm = Vm(
            subscription_id=subscription_id,
            resource_group=resource_group,
            name=name,
            os_type=os_type,
            location=location,
            power_state=power_state,
            generalized=generalized,
            agent_ready=agent_ready,
            guest=guest,
            security_type=security_type,
            hyper_v_generation=hyper_v_generation,
            extensions=tuple(extensions),
        )
        vm.data_disks = [
            (lun, vm.os_disk_id.replace("_OsDisk_1_", f"_DataDisk_{lun}_")) for lun in range(data_disks)
        ]
        self.world.add_vm(vm)
        network.ensure_seeded_nic(self.world, vm, getattr(guest, "ip", None))

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

    def join_domain(
        self, subscription_id: str, resource_group: str, name: str, domain: str, *, extension: bool = False
    ) -> None:
        """Join the VM's guest to an AD domain; `extension`: as the JsonADDomainExtension does (visible on
        the VM's extensions). See arm/extensions.py."""
        with self.world.lock:
            vm = self._known_vm(subscription_id, resource_group, name)
        extensions.join_domain(self.world, vm, domain, extension=extension)

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
        hyper_v_generation: str = "V2",
        security_type: str | None = None,
    ) -> str:
        """Create a gallery (if needed) and an image definition in it, ready for image versions; returns
        the definition's id. `security_type` becomes the SecurityType feature (None: Standard)."""
        self.world.ensure_resource_group(subscription_id, resource_group)
        prefix = (
            f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Compute"
        )
        gallery_id, image_id = f"{prefix}/galleries/{gallery}", f"{prefix}/galleries/{gallery}/images/{image}"
        properties: dict[str, Any] = {
            "osType": os_type,
            "osState": os_state,
            "hyperVGeneration": hyper_v_generation,
            "identifier": {"publisher": "vmgen", "offer": gallery, "sku": image},
        }
        if security_type is not None:
            properties["features"] = [{"name": "SecurityType", "value": security_type}]
        with self.world.lock:
            self.world.resources.setdefault(
                gallery_id.lower(),
                galleries.gallery_body(gallery_id, gallery, location, subscription_id, {}, "Succeeded"),
            )
            self.world.resources[image_id.lower()] = galleries.definition_body(
                image_id, image, location, properties, "Succeeded"
            )
        return image_id

    def seed_subnet(
        self,
        *,
        subscription_id: str,
        resource_group: str,
        vnet: str,
        subnet: str,
        prefix: str = "10.1.0.0/24",
        location: str = "westeurope",
    ) -> str:
        """Create a virtual network (if needed) with this subnet; returns the subnet's id."""
        return network.seed_subnet(
            self.world,
            subscription_id=subscription_id,
            resource_group=resource_group,
            vnet=vnet,
            subnet=subnet,
            prefix=prefix,
            location=location,
        )

    def set_unavailable_sizes(self, sizes: list[str]) -> None:
        """VM sizes that a VM creation refuses with SkuNotAvailable (replaces the previous list)."""
        with self.world.lock:
            self.world.unavailable_sizes = {size.lower() for size in sizes}

    def set_cores_quota(self, subscription_id: str, location: str, cores: int | None) -> None:
        """The Total Regional Cores quota of a subscription in a region (None: unlimited)."""
        with self.world.lock:
            key = (subscription_id.lower(), location.lower())
            if cores is None:
                self.world.cores_quota.pop(key, None)
            else:
                self.world.cores_quota[key] = cores

    def set_guest_factory(self, factory: GuestFactory | None) -> None:
        """Boot guests for VMs created by PUT (None: such VMs are pure models)."""
        self.guest_factory = factory

    def resource(self, resource_id: str) -> dict[str, Any] | None:
        """The stored body of a PUT-created resource (snapshot, disk, NIC, image, ...), or None."""
        with self.world.lock:
            body = self.world.resources.get(resource_id.lower())
            return json.loads(json.dumps(body)) if body is not None else None

    def disk_content(self, resource_id: str) -> Path | None:
        """The guest filesystem state a snapshot or disk holds (a tar), None when it holds none."""
        with self.world.lock:
            return self.world.disk_contents.get(resource_id.lower())

    def set_latency(self, operation: str, seconds: float, *, vm: str | None = None) -> None:
        """Long-running operations stay InProgress this long; other operations answer this much later.
        With `vm`, only that VM's requests (and its power operations and Run Commands) are slowed, so
        concurrent jobs can each be held in their own step."""
        with self.world.lock:
            self.world.latency[latency_key(operation, vm)] = seconds

    def latency(self, operation: str, *, vm: str | None = None) -> float:
        """The latency an operation has now: the one set, or the simulator's default."""
        return self.world.seconds(operation, vm)

    def reset_latencies(self) -> None:
        """Back to the simulator's defaults (LROs take a moment; other answers come at once), which is
        not the same as setting 0.0: an instant deallocate would hide the polling a test relies on.
        Every hold is released too."""
        with self.world.lock:
            self.world.latency.clear()
            self.world.holds.clear()

    def hold(self, operation: str, *, name: str | None = None, after: int = 0) -> None:
        """Keep `operation` (on resources whose path has the segment `name`, if given) from going on
        after its latency: a request stays in flight, a long-running operation InProgress, until
        `release`; the first `after` matching requests still go through. The kill matrix holds each job
        at its point this way until one SIGKILL hits them all."""
        with self.world.lock:
            self.world.holds[(operation, None if name is None else name.lower())] = after

    def release(self, operation: str, *, name: str | None = None) -> None:
        with self.world.lock:
            self.world.holds.pop((operation, None if name is None else name.lower()), None)

    def inject(self, fault: Fault) -> None:
        with self.world.lock:
            self.world.faults.add(fault)

    def clear_faults(self) -> None:
        with self.world.lock:
            self.world.faults.clear()

    def configure_throttling(
        self,
        *,
        enabled: bool | None = None,
        time_scale: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Compute's token buckets (`throttling.py`): on/off, a time scale, a clock; every bucket refilled."""
        self.throttle.configure(enabled=enabled, time_scale=time_scale, clock=clock)

    def requests(self) -> list[RequestRecord]:
        with self.world.lock:
            return list(self.world.log)

    def clear_requests(self) -> None:
        with self.world.lock:
            self.world.log.clear()

    def _subscriptions(self) -> list[str]:
        with self.world.lock:
            return list(self.world.resource_groups)

    def _known_vm(self, subscription_id: str, resource_group: str, name: str) -> Vm:
        vm = self.world.vm(subscription_id, resource_group, name)
        if vm is None:
            raise KeyError(f"no VM {subscription_id}/{resource_group}/{name} in the simulator")
        return vm

    # ---- the application ------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._pipeline])
        self.entra.add_routes(app)
        self.cli.add_routes(app)
        add = app.router.add_route
        add("GET", f"{_VMS}/virtualMachines/{{vm}}", self._get_vm, name="get")
        add("GET", f"{_VMS}/virtualMachines/{{vm}}/instanceView", self._instance_view, name="instanceView")
        for operation in POWER_OPERATIONS:
            add("POST", f"{_VMS}/virtualMachines/{{vm}}/{operation}", self._power, name=operation)
        add("POST", f"{_VMS}/virtualMachines/{{vm}}/generalize", self._generalize, name="generalize")
        add("POST", f"{_VMS}/virtualMachines/{{vm}}/runCommand", self._run_command, name="runCommand")
        for module in (snapshots, images, galleries, network, vm_lifecycle, extensions):
            module.add_routes(app, self)
        add(
            "GET",
            r"/subscriptions/{subscription}/providers/{provider:Microsoft\.(?:Compute|Network)}/locations/"
            "{location}/operations/{operation}",
            self._operation,
            name="operationStatus",
        )
        RunCommands(self).add_routes(app)  # managed run commands (virtualMachines/{vm}/runCommands/{name})
        control = "/_control"
        app.router.add_get(f"{control}/info", self._control_info)
        app.router.add_post(f"{control}/vms", self._control_seed_vm)
        app.router.add_get(f"{control}/vms/{{subscription}}/{{rg}}/{{vm}}", self._control_vm)
        app.router.add_patch(f"{control}/vms/{{subscription}}/{{rg}}/{{vm}}", self._control_update_vm)
        app.router.add_post(f"{control}/vms/{{subscription}}/{{rg}}/{{vm}}/domain-join", self._control_join)
        app.router.add_post(f"{control}/gallery-images", self._control_gallery_image)
        app.router.add_post(f"{control}/image-definitions", self._control_gallery_image)
        app.router.add_post(f"{control}/subnets", self._control_subnet)
        app.router.add_post(f"{control}/service-principals", self._control_service_principal)
        app.router.add_post(f"{control}/latency", self._control_latency)
        app.router.add_delete(f"{control}/latency", self._control_reset_latencies)
        app.router.add_post(f"{control}/faults", self._control_faults)
        app.router.add_get(f"{control}/throttling", self._control_throttling)
        app.router.add_post(f"{control}/throttling", self._control_throttling)
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
        if operation in ANONYMOUS:
            version = request.query.get("api-version")
            refusal = (
                api_versions.refusal(operation, version, "") if version else errors.missing_api_version()
            )
            response = await handler(request) if refusal is None else _refused(refusal)
            self._record(request, operation, response.status, _json_of(response), api="metadata")
            return response
        if not request.path.startswith("/subscriptions") and operation not in TENANT_LEVEL:
            try:
                response = await handler(request)
            except web.HTTPException as error:  # an unknown path: aiohttp's 404, logged like any other
                self._record(request, operation, error.status, None)
                raise
            self._record(request, operation, response.status, None)
            return response
        if operation == "operationStatus" and request.query.get("monitor") == "true":
            operation = "operationResult"
        request_body = await _json_body(request)
        try:
            response = await self._arm(request, handler, operation, request_body)
        except _Dropped:
            self._record(request, operation, None, None, request_body=request_body)
            assert request.transport is not None
            request.transport.abort()  # aiohttp's write of the answer below fails quietly
            return web.Response(status=500)
        except errors.ArmError as refusal:
            response = web.json_response(refusal.body(), status=refusal.status, headers=refusal.headers)
        self._arm_headers(request, response)
        self._record(
            request,
            operation,
            response.status,
            _json_of(response),
            request_body=request_body,
            response_headers=response.headers,
        )
        return response

    async def _arm(
        self, request: web.Request, handler: Handler, operation: str, request_body: Any
    ) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            raise _unauthorized(errors.missing_authorization(), self.authority, self.tenant_id)
        if not self.entra.accepts(authorization.removeprefix("Bearer ").strip()):
            raise _unauthorized(errors.invalid_token(), self.authority, self.tenant_id)
        if not request.query.get("api-version"):
            raise errors.missing_api_version()
        where = scope.of(self.world, request, operation, request_body)
        refusal = api_versions.refusal(operation, request.query["api-version"], where.location)
        if refusal is not None:
            raise refusal
        if operation not in TENANT_LEVEL - {"getSubscription"} and not self.world.has_subscription(
            where.subscription
        ):
            raise errors.subscription_not_found(request.match_info.get("subscription") or where.subscription)
        if request.match_info.http_exception is not None:
            raise errors.invalid_resource_type(request.query["api-version"])
        remaining = self.throttle.admit(operation, where)  # raises Compute's 429 when a bucket is empty
        if remaining is not None:
            request[_RATELIMIT] = remaining
        subject = request.path
        if operation in ("operationStatus", "operationResult"):
            subject = self._started_by.get(request.path.lower(), request.path)
        with self.world.lock:
            fault = self.world.faults.take(operation, request.method, subject, failed_operation=False)
        if fault is not None:
            if fault.kind == "drop":
                raise _Dropped()
            refusal = errors.injected(int(fault.kind[:3]), fault.error_code)
            if fault.kind == "429-retry-after":
                refusal.headers["Retry-After"] = str(fault.retry_after)
            raise refusal
        if operation not in LONG_RUNNING:
            await self.world.pause(operation, vm=request.match_info.get("vm"), path=request.path)
        response = await handler(request)
        if "Azure-AsyncOperation" in response.headers:
            operation_path = URL(response.headers["Azure-AsyncOperation"]).path
            self.throttle.note_operation(operation_path, where.resource)
            self._started_by[operation_path.lower()] = request.path
        return response

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
        if _RATELIMIT in request and "x-ms-ratelimit-remaining-resource" not in response.headers:
            response.headers["x-ms-ratelimit-remaining-resource"] = request[_RATELIMIT]

    def _record(
        self,
        request: web.Request,
        operation: str,
        status: int | None,
        body: Any,
        *,
        api: str = "arm",
        request_body: Any = None,
        response_headers: Mapping[str, str] | None = None,
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
            response_headers=dict(response_headers or {}),
            connection=_peer(request),
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
        await self.world.pause(job.name, vm=vm.name, path=vm.id)
        with self.world.lock:
            fault = self.world.faults.take(job.name, method, vm.id, failed_operation=True)
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
            await self.world.pause(job.name, vm=vm.name, path=vm.id)
            with self.world.lock:
                fault = self.world.faults.take(job.name, method, vm.id, failed_operation=True)
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

    # ---- operations -----------------------------------------------------------------------------

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
                    headers={"Location": str(request.url.with_scheme("https")), **self._retry_after()},
                )
            if job.error is not None:
                raise errors.ArmError(500, job.error["code"], job.error["message"])
            return web.json_response(job.result) if job.result is not None else web.Response(status=200)

    def begin_operation(self, name: str, subscription_id: str, location: str, provider: str) -> Operation:
        """(For the resource modules; call under the world lock.) A new long-running operation."""
        job = Operation(name=name, subscription_id=subscription_id, location=location, provider=provider)
        self.world.operations[job.id] = job
        return job

    def accepted(self, job: Operation, request: web.Request) -> web.Response:
        return self._accepted(job, request)

    def spawn(self, work: Awaitable[None]) -> None:
        self._spawn(work)

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
                **self._retry_after(),
            },
        )

    def _retry_after(self) -> dict[str, str]:
        """Compute sends none on LROs (see the module docstring); the option is for clients like the CLI."""
        return lro_headers(self.lro_retry_after)

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

    async def _control_join(self, request: web.Request) -> web.Response:
        info, arguments = request.match_info, await request.json()
        self.join_domain(info["subscription"], info["rg"], info["vm"], **arguments)
        return web.json_response(self.vm_state(info["subscription"], info["rg"], info["vm"]))

    async def _control_gallery_image(self, request: web.Request) -> web.Response:
        return web.json_response({"id": self.seed_gallery_image(**await request.json())}, status=201)

    async def _control_subnet(self, request: web.Request) -> web.Response:
        return web.json_response({"id": self.seed_subnet(**await request.json())}, status=201)

    async def _control_service_principal(self, request: web.Request) -> web.Response:
        self.add_service_principal(**await request.json())
        return web.Response(status=201)

    async def _control_latency(self, request: web.Request) -> web.Response:
        arguments = await request.json()
        vm = arguments.get("vm")
        self.set_latency(
            str(arguments["operation"]), float(arguments["seconds"]), vm=None if vm is None else str(vm)
        )
        return web.Response(status=204)

    async def _control_reset_latencies(self, request: web.Request) -> web.Response:
        self.reset_latencies()
        return web.Response(status=204)

    async def _control_faults(self, request: web.Request) -> web.Response:
        fault = Fault(**await request.json())
        self.inject(fault)
        return web.json_response(asdict(fault), status=201)

    async def _control_throttling(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            arguments = await request.json()
            self.configure_throttling(
                enabled=arguments.get("enabled"), time_scale=arguments.get("time_scale")
            )
        return web.json_response(self.throttle.settings())

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


def _refused(refusal: errors.ArmError) -> web.Response:
    return web.json_response(refusal.body(), status=refusal.status, headers=refusal.headers)


def _unauthorized(refusal: errors.ArmError, authority: str, tenant_id: str) -> errors.ArmError:
    refusal.headers["WWW-Authenticate"] = (
        f'Bearer authorization_uri="{authority}/{tenant_id}", error="invalid_token", '
        f'error_description="{refusal.message}"'
    )
    return refusal


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


def _peer(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""
