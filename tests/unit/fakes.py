"""Small in-memory fakes of vmgen's ports, for unit tests of the workflow (kept out of the shipped package).

They model just enough behaviour to tell right from wrong: a VM with a power state that only the
calls a real Azure would accept can change, a guest that can be deprovisioned once, a status writer
that applies merge patches like the API server and keeps every patch for assertions, scripted
errors per call. Contract and e2e tests use the real adapters against the testbed instead.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from vmgen.domain import errors, images, model, policy, ports, secrets, windows, windows_spec


@dataclass
class FakeClock:
    current: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class Faults:
    """Errors to raise, per operation name, in order; each raised once."""

    def __init__(self) -> None:
        self._queued: dict[str, deque[Exception]] = {}

    def add(self, operation: str, *exceptions: Exception) -> None:
        self._queued.setdefault(operation, deque()).extend(exceptions)

    def check(self, operation: str) -> None:
        queue = self._queued.get(operation)
        if queue:
            raise queue.popleft()


@dataclass
class FakeGuest:
    """What the evidence script would see inside the guest."""

    user_present: bool = True
    host_keys: tuple[str, ...] = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfakefakefakefakefakefakefakefakefake",
    )
    ovf_env_present: bool = True
    waagent_running: bool = False
    deprovision_runs: int = 0

    def deprovision(self, *, delete_user: bool) -> None:
        self.deprovision_runs += 1
        self.host_keys = ()
        self.ovf_env_present = False
        if delete_user:
            self.user_present = False

    def evidence_output(self) -> str:
        return "\n".join(
            [
                f"vmgen-evidence user={'present' if self.user_present else 'absent'}",
                f"vmgen-evidence hostkeys={len(self.host_keys)}",
                f"vmgen-evidence ovfenv={'present' if self.ovf_env_present else 'absent'}",
                f"vmgen-evidence waagent={'running' if self.waagent_running else 'idle'}",
                *(f"{key} root@vm" for key in self.host_keys),
            ]
        )


@dataclass
class FakeVm:
    ref: model.VmRef
    os_type: model.OsType | None = model.OsType.LINUX
    power_state: model.PowerState = model.PowerState.RUNNING
    generalized: bool = False
    agent_ready: bool = True
    guest: FakeGuest = field(default_factory=FakeGuest)
    extensions: tuple[str, ...] = ()

    security_type: str = "Standard"
    address: str = "10.0.0.4"
    """Where SSH reaches its guest (a copy VM has its own)."""

    def observation(self) -> model.VmObservation:
        return model.VmObservation(
            id=self.ref.resource_id,
            os_type=self.os_type,
            power_state=self.power_state,
            generalized=self.generalized,
            agent_ready=self.agent_ready,
            location="westeurope",
            os_disk_id=f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/{self.ref.name}-os",
            data_disks=(
                (
                    0,
                    f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/{self.ref.name}-d0",
                ),
            ),
            hyper_v_generation="V2",
            security_type=self.security_type,
            extensions=self.extensions,
        )


DEFAULT_SUBNET = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/default"
)


class FakeCompute:
    """`ports.Compute` over a dict of FakeVm; deallocate completes when waited for."""

    def __init__(self, azure: FakeAzure) -> None:
        self._azure = azure

    async def __aenter__(self) -> FakeCompute:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._azure.closed += 1

    def _call(self, operation: str, vm: model.VmRef) -> FakeVm:
        self._azure.calls.append((operation, vm.name))
        self._azure.faults.check(operation)
        found = self._azure.vms.get(vm.name)
        if found is None:
            raise errors.VmNotFound(f"ResourceNotFound: VM {vm.name} was not found")
        return found

    async def observe(self, vm: model.VmRef) -> model.VmObservation | None:
        self._azure.calls.append(("observe", vm.name))
        self._azure.faults.check("observe")
        found = self._azure.vms.get(vm.name)
        return found.observation() if found else None

    async def begin_deallocate(self, vm: model.VmRef) -> model.ContinuationToken:
        found = self._call("begin_deallocate", vm)
        found.power_state = model.PowerState.DEALLOCATING
        return model.ContinuationToken(f"token-{vm.name}-{len(self._azure.calls)}")

    async def wait_deallocate(self, vm: model.VmRef, token: model.ContinuationToken) -> None:
        found = self._call("wait_deallocate", vm)
        found.power_state = model.PowerState.DEALLOCATED

    async def generalize(self, vm: model.VmRef) -> None:
        found = self._call("generalize", vm)
        if found.power_state not in (model.PowerState.DEALLOCATED, model.PowerState.STOPPED):
            raise errors.AzureOperationNotAllowed("OperationNotAllowed: the VM must be stopped to generalize")
        found.generalized = True

    async def run_shell_script(self, vm: model.VmRef, script: str) -> model.ScriptOutput:
        found = self._call("run_shell_script", vm)
        return model.ScriptOutput(stdout=found.guest.evidence_output(), stderr="")

    async def begin_shell_script(self, vm: model.VmRef, script: str) -> model.ContinuationToken:
        self._call("run_shell_script", vm)  # the same Run Command as above, only not waited for
        return model.ContinuationToken(f"run-command-{vm.name}-{len(self._azure.calls)}")

    async def wait_shell_script(self, vm: model.VmRef, token: model.ContinuationToken) -> model.ScriptOutput:
        self._azure.followed.append(token)
        found = self._call("wait_shell_script", vm)
        return model.ScriptOutput(stdout=found.guest.evidence_output(), stderr="")

    # -- images.ImageCapture: each creation is Creating for `settle_after` reads, then Succeeded -------

    def _record(self, operation: str, name: str) -> None:
        self._azure.calls.append((operation, name))
        self._azure.faults.check(operation)

    def _settle(self, key: str, found: FakeResource | None) -> FakeResource | None:
        if found is not None and found.state == "Creating":
            found.reads += 1
            if found.reads > self._azure.settle_after:
                found.state = self._azure.end_states.pop(key, "Succeeded")
        return found

    async def begin_snapshot(
        self,
        ref: images.ResourceRef,
        *,
        location: str,
        disk_id: str,
        incremental: bool,
        tags: images.Tags = (),
    ) -> model.ContinuationToken:
        self._record("begin_snapshot", ref.name)
        self._azure.snapshots[ref.name] = FakeResource(source=disk_id)
        return model.ContinuationToken(f"snap-{ref.name}")

    async def wait_snapshot(self, ref: images.ResourceRef, token: model.ContinuationToken) -> images.Snapshot:
        raise AssertionError("vmgen watches snapshots with get_snapshot")

    async def get_snapshot(self, ref: images.ResourceRef) -> images.Snapshot | None:
        self._record("get_snapshot", ref.name)
        found = self._settle(ref.name, self._azure.snapshots.get(ref.name))
        if found is None:
            return None
        return images.Snapshot(images.SnapshotId(ref.name), found.state, found.source, None, True)

    async def delete_snapshot(self, ref: images.ResourceRef) -> None:
        self._record("delete_snapshot", ref.name)
        self._azure.snapshots.pop(ref.name, None)

    async def begin_managed_image(
        self, ref: images.ResourceRef, request: images.ManagedImageRequest
    ) -> model.ContinuationToken:
        self._record("begin_managed_image", ref.name)
        if not self._azure.vms[request.source_vm.rsplit("/", 1)[-1]].generalized:
            raise errors.AzureOperationNotAllowed("OperationNotAllowed: the VM is not generalized")
        self._azure.managed_images[ref.name] = FakeResource(source=request.source_vm, tags=request.tags)
        return model.ContinuationToken(f"image-{ref.name}")

    async def wait_managed_image(
        self, ref: images.ResourceRef, token: model.ContinuationToken
    ) -> images.ManagedImage:
        raise AssertionError("vmgen watches images with get_managed_image")

    async def get_managed_image(self, ref: images.ResourceRef) -> images.ManagedImage | None:
        self._record("get_managed_image", ref.name)
        found = self._settle(f"image/{ref.name}", self._azure.managed_images.get(ref.name))
        if found is None:
            return None
        return images.ManagedImage(images.ImageId(ref.name), found.state, found.source, "V2", found.tags)

    async def delete_managed_image(self, ref: images.ResourceRef) -> None:
        self._record("delete_managed_image", ref.name)
        self._azure.managed_images.pop(ref.name, None)

    async def get_image_definition(self, ref: images.ImageDefinitionRef) -> images.ImageDefinition | None:
        self._record("get_image_definition", ref.image_definition)
        return self._azure.definitions.get(ref.image_definition)

    async def begin_image_version(
        self, ref: images.ImageVersionRef, request: images.ImageVersionRequest
    ) -> model.ContinuationToken:
        self._record("begin_image_version", ref.version)
        regions = tuple(r.name for r in request.target_regions)
        self._azure.versions[ref.version] = FakeResource(
            source=request.source_id, regions=regions, tags=request.tags
        )
        return model.ContinuationToken(f"version-{ref.version}")

    async def get_image_version(self, ref: images.ImageVersionRef) -> images.ImageVersion | None:
        self._record("get_image_version", ref.version)
        found = self._settle(f"version/{ref.version}", self._azure.versions.get(ref.version))
        if found is None:
            return None
        done = found.state == "Succeeded"
        state = images.ReplicationState.COMPLETED if done else images.ReplicationState.REPLICATING
        return images.ImageVersion(
            images.GalleryImageVersionId(ref.version),
            found.state,
            found.source,
            images.ReplicationState.COMPLETED if done else images.ReplicationState.IN_PROGRESS,
            tuple(images.RegionReplication(r, state, 100 if done else 50) for r in found.regions),
            found.tags,
        )

    async def delete_image_version(self, ref: images.ImageVersionRef) -> None:
        self._record("delete_image_version", ref.version)
        self._azure.versions.pop(ref.version, None)

    # -- images.VmCopier and start: disks, NICs and VMs made at once; a copy VM runs with its agent ready --

    async def start(self, vm: model.VmRef) -> None:
        found = self._call("start", vm)
        if found.generalized:
            raise errors.AzureOperationNotAllowed("OperationNotAllowed: a generalized VM cannot be started")
        found.power_state = model.PowerState.RUNNING

    async def read_layout(self, vm: model.VmRef) -> images.VmLayout | None:
        self._record("read_layout", vm.name)
        found = self._azure.vms.get(vm.name)
        if found is None:
            return None
        seen = found.observation()
        return images.VmLayout(
            id=seen.id,
            location=seen.location,
            size="Standard_D2s_v5",
            os_type=found.os_type,
            os_disk_id=seen.os_disk_id,
            data_disks=seen.data_disks,
            nic_ids=(f"/nic/{vm.name}-nic",),
            security_type=images.SecurityType.STANDARD,
        )

    async def get_subnet(self, subnet_id: str) -> images.Subnet | None:
        self._record("get_subnet", subnet_id)
        return (
            images.Subnet(images.SubnetId(subnet_id), "10.0.0.0/24")
            if subnet_id in self._azure.subnets
            else None
        )

    async def get_network_interface(self, nic_id: str) -> images.NetworkInterface | None:
        self._record("get_network_interface", nic_id)
        name = nic_id.rsplit("/", 1)[-1]
        if name.endswith("-nic") and name[: -len("-nic")] in self._azure.vms and name not in self._azure.nics:
            return images.NetworkInterface(
                images.NicId(nic_id), images.SubnetId(DEFAULT_SUBNET), "10.0.0.4", None, "Succeeded"
            )
        if name not in self._azure.nics:
            return None
        return images.NetworkInterface(
            images.NicId(nic_id),
            images.SubnetId(self._azure.nics[name].source),
            "10.0.0.9",
            None,
            "Succeeded",
        )

    async def begin_disk_from_snapshot(
        self, ref: images.ResourceRef, *, location: str, snapshot_id: str, tags: images.Tags = ()
    ) -> model.ContinuationToken:
        self._record("begin_disk", ref.name)
        self._azure.disks[ref.name] = FakeResource(source=snapshot_id, state="Succeeded")
        return model.ContinuationToken(f"disk-{ref.name}")

    async def wait_disk(self, ref: images.ResourceRef, token: model.ContinuationToken) -> images.DiskId:
        self._record("wait_disk", ref.name)
        return images.DiskId(ref.name)

    async def begin_network_interface(
        self, ref: images.ResourceRef, *, location: str, subnet_id: str, tags: images.Tags = ()
    ) -> model.ContinuationToken:
        self._record("begin_nic", ref.name)
        self._azure.nics[ref.name] = FakeResource(source=subnet_id, state="Succeeded")
        return model.ContinuationToken(f"nic-{ref.name}")

    async def wait_network_interface(
        self, ref: images.ResourceRef, token: model.ContinuationToken
    ) -> images.NetworkInterface:
        self._record("wait_nic", ref.name)
        return images.NetworkInterface(
            images.NicId(ref.name),
            images.SubnetId(self._azure.nics[ref.name].source),
            "10.0.0.9",
            None,
            "Succeeded",
        )

    async def begin_vm_from_disks(
        self, ref: images.ResourceRef, request: images.CopyVmRequest
    ) -> model.ContinuationToken:
        self._record("begin_vm", ref.name)
        source = next(iter(self._azure.vms.values()))
        self._azure.vms[ref.name] = FakeVm(
            model.VmRef(ref.subscription_id, ref.resource_group, ref.name),
            guest=replace(source.guest),
            address="10.0.0.9",
        )
        return model.ContinuationToken(f"vm-{ref.name}")

    async def wait_vm(self, ref: images.ResourceRef, token: model.ContinuationToken) -> model.VmResourceId:
        self._record("wait_vm", ref.name)
        return self._azure.vms[ref.name].ref.resource_id

    async def delete_vm(self, ref: images.ResourceRef) -> None:
        self._record("delete_vm", ref.name)
        self._azure.vms.pop(ref.name, None)

    async def delete_disk(self, ref: images.ResourceRef) -> None:
        self._record("delete_disk", ref.name)
        self._azure.disks.pop(ref.name, None)

    async def delete_network_interface(self, ref: images.ResourceRef) -> None:
        self._record("delete_nic", ref.name)
        self._azure.nics.pop(ref.name, None)


@dataclass
class FakeResource:
    """A snapshot, image or version: Creating, then (after enough reads) Succeeded or a scripted end."""

    source: str
    state: str = "Creating"
    reads: int = 0
    regions: tuple[str, ...] = ()
    tags: images.Tags = ()


class FakeAzure:
    """`ports.ComputeFactory`: one FakeCompute per call, all sharing the same VMs, calls and faults."""

    def __init__(self, *vms: FakeVm) -> None:
        self.vms = {vm.ref.name: vm for vm in vms}
        self.calls: list[tuple[str, str]] = []
        self.credentials: list[ports.AzureCredentials | None] = []
        self.faults = Faults()
        self.followed: list[model.ContinuationToken] = []
        """The Run Command tokens `wait_shell_script` followed, in order."""
        self.closed = 0
        self.settle_after = 1
        """Reads of a new snapshot/image/version that still see it Creating."""
        self.end_states: dict[str, str] = {}
        """Scripted end state per key (`<snapshot>`, `image/<name>`, `version/<n>`), e.g. "Failed"."""
        self.snapshots: dict[str, FakeResource] = {}
        self.managed_images: dict[str, FakeResource] = {}
        self.versions: dict[str, FakeResource] = {}
        self.definitions: dict[str, images.ImageDefinition] = {}
        self.disks: dict[str, FakeResource] = {}
        self.nics: dict[str, FakeResource] = {}
        self.subnets: set[str] = {DEFAULT_SUBNET}
        """Subnets that exist (spec.source Copy); every source's NIC is in DEFAULT_SUBNET."""

    def __call__(self, credentials: ports.AzureCredentials | None) -> FakeCompute:
        self.credentials.append(credentials)
        return FakeCompute(self)

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]


class FakeDeprovisioner:
    """`ports.Deprovisioner` that deprovisions a FakeGuest; `outcome_lost` simulates a dropped connection
    after waagent started (the guest is deprovisioned, the caller does not learn it)."""

    def __init__(self, azure: FakeAzure) -> None:
        self._azure = azure
        self.faults = Faults()
        self.targets: list[model.SshTarget] = []
        self.outcome_lost = False
        self.reached: list[tuple[str, int]] = []

    async def reach(self, host: str, port: int) -> None:
        self.reached.append((host, port))
        self.faults.check("reach")

    async def probe(self, target: model.SshTarget) -> None:
        self.targets.append(target)
        self.faults.check("probe")

    async def deprovision(self, target: model.SshTarget, *, delete_user: bool, timeout: float) -> str:  # noqa: ASYNC109
        self.targets.append(target)
        self.faults.check("deprovision")
        vm = next(
            vm
            for vm in self._azure.vms.values()
            if vm.address == target.host
            and target.host_keys
            and set(target.host_keys) & set(vm.guest.host_keys)
        )
        vm.guest.deprovision(delete_user=delete_user)
        if self.outcome_lost:
            raise errors.DeprovisionOutcomeUnknown("The SSH connection was lost while waagent was running.")
        return "WARNING! The waagent service will be stopped."


class FakeSecrets:
    def __init__(self, secrets: Mapping[tuple[str, str], Mapping[str, bytes]] | None = None) -> None:
        self.secrets = dict(secrets or {})
        self.reads: list[tuple[str, str]] = []

    async def ssh_private_key(self, namespace: str, name: str) -> bytes:
        return secrets.ssh_private_key(await self.read(namespace, name), namespace=namespace, name=name)

    async def azure_credentials(self, namespace: str, name: str) -> ports.AzureCredentials:
        return secrets.azure_credentials(await self.read(namespace, name), namespace=namespace, name=name)

    async def basic_auth(self, namespace: str, name: str) -> tuple[str, str]:
        return secrets.basic_auth(await self.read(namespace, name), namespace=namespace, name=name)

    async def ca_bundle(self, namespace: str, name: str) -> str:
        return secrets.ca_bundle(await self.read(namespace, name), namespace=namespace, name=name)

    async def read(self, namespace: str, name: str) -> Mapping[str, bytes]:
        self.reads.append((namespace, name))
        found = self.secrets.get((namespace, name))
        if found is None:
            raise errors.SecretNotFound(f"Secret {namespace}/{name} does not exist.")
        return found


class FakeLocks:
    def __init__(self) -> None:
        self.holders: dict[str, str] = {}
        self.faults = Faults()

    async def acquire(self, vm: model.VmResourceId, holder: str) -> str | None:
        self.faults.check("acquire")
        current = self.holders.setdefault(vm.lower(), holder)
        return None if current == holder else current

    async def release(self, vm: model.VmResourceId, holder: str) -> None:
        self.faults.check("release")
        if self.holders.get(vm.lower()) == holder:
            del self.holders[vm.lower()]


class FakePolicy:
    """`ports.NamespacePolicy` from in-memory annotations; `reads` counts the look-ups."""

    def __init__(
        self, *, identity_namespaces: tuple[str, ...] = (), scopes: dict[str, str] | None = None
    ) -> None:
        self.identity_namespaces = identity_namespaces
        self.scopes: dict[str, str] = dict(scopes or {})
        self.reads = 0
        self.faults = Faults()

    async def rules(self, namespace: str) -> policy.NamespaceRules:
        self.faults.check("rules")
        self.reads += 1
        return policy.rules(
            namespace, annotation=self.scopes.get(namespace), identity_namespaces=self.identity_namespaces
        )


@dataclass
class FakeMetrics:
    """`ports.Metrics` that keeps what it was told."""

    jobs: list[tuple[str, str, str]] = field(default_factory=list)
    steps: list[tuple[str, float]] = field(default_factory=list)
    phases: dict[str, str] = field(default_factory=dict)
    guest_errors: list[str] = field(default_factory=list)

    def job_finished(self, *, result: str, os: str, reason: str) -> None:
        self.jobs.append((result, os, reason))

    def step_finished(self, *, step: str, seconds: float) -> None:
        self.steps.append((step, seconds))

    def in_flight(self, resource: str, phase: str | None) -> None:
        if phase is None:
            self.phases.pop(resource, None)
        else:
            self.phases[resource] = phase

    def guest_connection_error(self, *, transport: str) -> None:
        self.guest_errors.append(transport)


class FakeStatusWriter:
    """Applies merge patches to `body` like the API server's status subresource does."""

    def __init__(self, body: Mapping[str, Any] | None = None) -> None:
        self.body: dict[str, Any] = dict(body or {})
        self.patches: list[dict[str, Any]] = []
        self.faults = Faults()

    async def patch_status(self, patch: Mapping[str, Any]) -> None:
        self.faults.check("patch_status")
        self.patches.append(dict(patch))
        self.body = _apply(self.body, patch)


def _apply(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            before = result.get(key)
            result[key] = _apply(before if isinstance(before, Mapping) else {}, value)
        else:
            result[key] = value
    return result


@dataclass(frozen=True)
class RecordedEvent:
    type: str
    reason: str
    message: str


class FakeEvents:
    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def normal(self, reason: str, message: str) -> None:
        self.events.append(RecordedEvent("Normal", reason, message))

    def warning(self, reason: str, message: str) -> None:
        self.events.append(RecordedEvent("Warning", reason, message))

    def reasons(self, type: str | None = None) -> list[str]:
        return [e.reason for e in self.events if type is None or e.type == type]


def linux_vm(name: str = "web-01", **changes: Any) -> FakeVm:
    vm = FakeVm(
        ref=model.VmRef(
            subscription_id="00000000-0000-0000-0000-000000000001", resource_group="rg-images", name=name
        )
    )
    return replace(vm, **changes) if changes else vm


@dataclass
class FakeWindows:
    """A Windows guest as the operator's three scripts see it (matched by their marker line).

    `outcome` is what sysprep does once started: "generalized", "appx" (ImageState stays COMPLETE),
    "undeployable" or "stuck" (SPECIALIZE_RESEAL_TO_OOBE for ever); it needs `sysprep_reads` state
    reads to get there. `findings` overrides preflight fields (e.g. {"roles": ["AD-Domain-Services"]}).
    """

    outcome: str = "generalized"
    sysprep_reads: int = 1
    findings: dict[str, Any] = field(default_factory=dict)
    image_state: str = windows.IMAGE_STATE_COMPLETE
    marker: bool = False
    running: bool = False
    sysprep_starts: int = 0
    exits: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    on_shutdown: Any = None

    def run(self, script: str) -> str:
        name = script.splitlines()[0].removeprefix(windows.MARKER_PREFIX).split()[0]
        self.scripts.append(name)
        self.faults.check(name)
        if name == "preflight":
            report: dict[str, Any] = {
                "imageState": self.image_state,
                "services": [{"name": n, "status": "Running"} for n in windows.AGENT_SERVICES],
                "volumes": [{"mountPoint": "C:", "volumeStatus": "FullyDecrypted"}],
                "pendingReboot": [],
                "generalizationState": 7,
                "cleanupState": 2,
                "roles": [],
                **self.findings,
            }
        elif name == "sysprep-start":
            report = {
                "started": not self.marker,
                "alreadyStarted": self.marker,
                "imageState": self.image_state,
            }
            if not self.marker:
                self.marker, self.running = True, True
                self.sysprep_starts += 1
                self.exits.append("shutdown" if "Exit = 'shutdown'" in script else "quit")
                self.image_state = windows.IMAGE_STATE_UNDEPLOYABLE
        else:
            self._progress()
            report = {
                "imageState": self.image_state,
                "sysprepStarted": self.marker,
                "sysprepRunning": self.running,
                "setupErrTail": ["Error SYSPRP Package Contoso.App_1.0 was installed for a user"]
                if self.outcome == "appx"
                else [],
                "setupActErrors": [],
            }
        return "some chatter\n" + windows.OUTPUT_PREFIX + json.dumps(report)

    def _progress(self) -> None:
        if not self.running:
            return
        self.sysprep_reads -= 1
        if self.sysprep_reads > 0:
            return
        if self.outcome == "generalized":
            self.image_state, self.running = windows.IMAGE_STATE_GENERALIZED, False
            if self.exits[-1] == "shutdown" and self.on_shutdown is not None:
                self.on_shutdown()
        elif self.outcome == "appx":
            self.image_state, self.running = windows.IMAGE_STATE_COMPLETE, False
        elif self.outcome == "undeployable":
            self.image_state, self.running = windows.IMAGE_STATE_UNDEPLOYABLE, False
        else:
            self.image_state = "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE"


class _FakeWindowsGuest:
    def __init__(self, machine: FakeWindows, transport: str) -> None:
        self._machine = machine
        self.transport = transport

    async def run(self, script: str, *, timeout: float) -> str:  # noqa: ASYNC109
        return self._machine.run(script)


class FakeWindowsGuests:
    """`ports.WindowsGuests` over one FakeWindows; records which transport each call took."""

    def __init__(self, machine: FakeWindows | None = None) -> None:
        self.machine = machine or FakeWindows()
        self.opened: list[str] = []
        self.connections: list[windows_spec.WinRmConnection] = []

    def winrm(self, connection: windows_spec.WinRmConnection) -> ports.WindowsGuest:
        self.opened.append("winrm")
        self.connections.append(connection)
        return _FakeWindowsGuest(self.machine, "winrm")

    def run_command(self, compute: ports.Compute, vm: model.VmRef, *, location: str) -> ports.WindowsGuest:
        self.opened.append("run-command")
        return _FakeWindowsGuest(self.machine, "run-command")
