"""The ports the workflow and the steps drive. Adapters implement them; unit tests use small fakes
(tests/unit/fakes.py, outside the shipped package).

Every method raises only errors from `vmgen.domain.errors` (adapters translate SDK exceptions
through the classification table there), so the workflow never sees an SDK type.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from vmgen.domain import images, model, policy, windows_spec


@dataclass(frozen=True)
class AzureCredentials:
    """A service principal read from the resource's secret. Absent: the operator's own identity."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)


class Compute(images.ImageCapture, images.VmCopier, Protocol):
    """Azure Compute for one credential (kept for a resource's life, renewed when its Secret changes):
    VMs, Run Command, (from `images.ImageCapture`) snapshots, managed images and gallery versions, and
    (from `images.VmCopier`) the disks, NIC and VM of a copy."""

    async def observe(self, vm: model.VmRef) -> model.VmObservation | None:
        """GET the VM with its instance view; None when Azure says ResourceNotFound."""

    async def begin_deallocate(self, vm: model.VmRef) -> model.ContinuationToken:
        """Start the deallocate LRO and return its continuation token without waiting."""

    async def wait_deallocate(self, vm: model.VmRef, token: model.ContinuationToken) -> None:
        """Resume the LRO from `token` and wait until it succeeds (raises if it failed)."""

    async def generalize(self, vm: model.VmRef) -> None:
        """POST generalize (synchronous)."""

    async def start(self, vm: model.VmRef) -> None:
        """POST start and wait for it. Only for spec.copy.stopSourceFirst, on a VM that is not generalized
        (domain/copy_plan.py `may_start`); vmgen starts no other VM."""

    async def run_shell_script(self, vm: model.VmRef, script: str) -> model.ScriptOutput:
        """Run a read-only script through Run Command (RunShellScript), an authenticated channel.

        Used to read the guest's SSH host keys before connecting and to verify deprovision's effects
        after an uncertain outcome; never to deprovision (the agent kills its own runner)."""

    async def begin_shell_script(self, vm: model.VmRef, script: str) -> model.ContinuationToken:
        """Begin a read-only script through Run Command and return its continuation token at once, so
        the caller can record it before waiting (a restarted operator follows it instead of beginning
        another: a Run Command takes longer than an operator restarted every few seconds lives)."""

    async def wait_shell_script(self, vm: model.VmRef, token: model.ContinuationToken) -> model.ScriptOutput:
        """Follow a Run Command from `token` (also one begun by another process) until its output.
        Raises AzureOperationLost when the token can no longer be followed."""


class ComputeFactory(Protocol):
    """`async with factory(credentials) as compute:` -- the factory's object owns and closes the clients."""

    def __call__(self, credentials: AzureCredentials | None) -> AbstractAsyncContextManager[Compute]: ...


class Deprovisioner(Protocol):
    async def reach(self, host: str, port: int) -> None:
        """Resolve `host` and open (then close) a TCP connection to `port`; sends nothing, no Azure.
        Raises GuestHostUnresolvable (DNS has no address) or GuestUnreachable (refused, timed out)."""

    async def probe(self, target: model.SshTarget) -> None:
        """Connect with verified host keys and the key, check passwordless sudo; runs nothing else.
        Raises HostKeyMismatch / AuthenticationRefused / GuestUnreachable like `deprovision`."""

    async def deprovision(self, target: model.SshTarget, *, delete_user: bool, timeout: float) -> str:  # noqa: ASYNC109
        """Run `waagent -deprovision[+user] -force` over SSH with verified host keys; returns output.

        Raises InvalidSpec (no host keys or an unreadable key), HostKeyMismatch / AuthenticationRefused
        (permanent, nothing ran), GuestUnreachable (transient, nothing ran), DeprovisionFailed (waagent
        exited non-zero), DeprovisionOutcomeUnknown (the command may have started and the connection
        was lost, or it overran `timeout`, before its exit status came back)."""


class SecretReader(Protocol):
    """Secrets in the resource's own namespace, as the typed values vmgen needs (`domain/secrets.py`
    turns their data into these and words the errors). Raise SecretNotFound / SecretKeyMissing."""

    async def ssh_private_key(self, namespace: str, name: str) -> bytes:
        """`ssh-privatekey` of a kubernetes.io/ssh-auth Secret."""

    async def azure_credentials(self, namespace: str, name: str) -> AzureCredentials:
        """AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET of a service principal's Secret."""

    async def basic_auth(self, namespace: str, name: str) -> tuple[str, str]:
        """(username, password) of a kubernetes.io/basic-auth Secret (WinRM credentials)."""

    async def ca_bundle(self, namespace: str, name: str) -> str:
        """The PEM text under `ca.crt` (the CA of a guest's WinRM certificate)."""


class WindowsGuest(Protocol):
    """One Windows VM that runs the operator's PowerShell scripts (domain/windows.py), over WinRM or
    through Azure Run Command."""

    async def run(self, script: str, *, timeout: float) -> str:  # noqa: ASYNC109
        """Run `script`; its output (the `vmgen-win` report line among it).

        Raises GuestUnreachable (transient: nothing ran), AuthenticationRefused / InvalidSpec /
        PermanentError (nothing ran), DeprovisionFailed (the script ran and failed: its errors in the
        message), DeprovisionOutcomeUnknown (sent, then the connection was lost: it may have run)."""


class WindowsGuests(Protocol):
    """Opens a `WindowsGuest` per transport (spec.windows.transport)."""

    def winrm(self, connection: windows_spec.WinRmConnection) -> WindowsGuest: ...

    def run_command(self, compute: Compute, vm: model.VmRef, *, location: str) -> WindowsGuest:
        """Managed run commands on `vm` through the Azure client `compute` already holds."""


class VmLocks(Protocol):
    async def acquire(self, vm: model.VmResourceId, holder: str) -> str | None:
        """Claim the VM for `holder` (namespace/name). None on success, else the current holder."""

    async def release(self, vm: model.VmResourceId, holder: str) -> None:
        """Give up the claim if `holder` holds it."""


class NamespacePolicy(Protocol):
    """The cluster admin's policy for a namespace (domain/policy.py decides with it)."""

    async def rules(self, namespace: str) -> policy.NamespaceRules:
        """The Namespace's `vmgen.io/allowed-scopes` annotation plus the operator's identity setting.

        Raises KubernetesForbidden (the operator may not get Namespaces) or KubernetesUnavailable."""


class Metrics(Protocol):
    """What the operator counts for Prometheus (adapters/metrics.py); never raises."""

    def job_finished(self, *, result: str, os: str, reason: str) -> None:
        """A resource reached Succeeded or Failed (once per resource and process)."""

    def step_finished(self, *, step: str, seconds: float) -> None:
        """A step checkpointed: its duration from `startedAt` to `finishedAt`."""

    def in_flight(self, resource: str, phase: str | None) -> None:
        """`resource` (namespace/name) is now in `phase`; None: no longer driven by this process."""

    def guest_connection_error(self, *, transport: str) -> None:
        """An SSH or WinRM connection failed before anything ran (GuestUnreachable)."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class StatusWriter(Protocol):
    """The status subresource of one VMGeneralization."""

    async def patch_status(self, patch: Mapping[str, Any]) -> None:
        """Apply a JSON merge patch to `status`; returns once the API server has stored it."""


class EventRecorder(Protocol):
    """Kubernetes Events on one VMGeneralization (reasons are `reasons.Reason` members)."""

    def normal(self, reason: str, message: str) -> None: ...

    def warning(self, reason: str, message: str) -> None: ...
