"""Azure Compute through the real async SDK, spoken in vmgen's vocabulary and error tree.

`ComputeFactory(settings)(credentials)` gives an `AzureCompute` (an async context manager) that implements
`ports.Compute`: it owns one `AzureSession` (one credential and, lazily, one Compute and one Network client
per subscription) and turns SDK objects into `model` values and SDK exceptions into `errors` classes
(`translate`, the one place that does it). The capture and copy adapters (`azure_images.AzureImages`,
`azure_copy.AzureCopies`) share that session: `AzureImages(compute.session)`. Nothing from azure-* leaves the
adapters.

Traps it avoids:
- Long-running operations: azure-core waits 30 s between polls by default; `poll_interval` is set on
  the client and passed to every `begin_*`. `begin_deallocate` returns the continuation token right
  after ARM's 202, so the workflow can record it before waiting; `wait_deallocate` resumes from it
  in any process.
- TLS is always verified, for ARM and for Entra alike, by one `ssl.SSLContext` per session (the CA
  bundle or the system's trust store) held by the session's one aiohttp connector
  (`azure_transport.SharedTransport`, which says why not azure-core's per-request `connection_verify`).
  A custom `arm_endpoint` still needs its own scope and authority (sovereign clouds); instance
  discovery is disabled for authorities that are not a public Azure cloud.
- A failed asynchronous operation raises `HttpResponseError` with the poll's status 200: errors are
  classified by ARM's `error.code` first (`errors.AZURE_CODES`), by HTTP status second.
  ARM's 401 arrives as `ClientAuthenticationError`, exactly like Entra refusing the secret.
- Retries: azure-core retries 408/429/500/502/503/504 (a POST only 500/503/504, or anything with Retry-
  After) up to 10 times with backoff up to 120 s, honouring Retry-After. That would hide throttling inside
  one handler call for minutes with nothing in status. We keep the SDK policy, so a single blip costs
  nothing, but lower `retry_total` to 2 (`AzureSettings.retry_total`): anything that lasts surfaces quickly
  as AzureThrottled/AzureUnavailable (with `retry_after` from the header) and the workflow's own backoff
  shows in status and events. The credential gets the same limit, since every ARM attempt may also ask Entra
  for a token.
- Messages stay quiet and safe: ARM's code and message only, request/correlation/trace ids and
  timestamps stripped, the client secret masked should a server ever echo it.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlparse

import aiohttp
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies._utils import get_retry_after
from azure.identity import AzureAuthorityHosts
from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.compute import models as azmodels
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.compute.aio.operations import VirtualMachinesOperations

from vmgen import config
from vmgen.adapters import azure_answers, azure_transport, lro_polling
from vmgen.domain import errors, model, polling, ports

__all__ = ["AzureCompute", "AzureSession", "AzureSettings", "ComputeFactory", "translate"]

_PUBLIC_AUTHORITIES = frozenset(
    {
        AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        AzureAuthorityHosts.AZURE_CHINA,
        AzureAuthorityHosts.AZURE_GOVERNMENT,
    }
)
_MISSING_VM_CODES = frozenset({"ResourceNotFound", "ResourceGroupNotFound", "NotFound"})
_PREFIXES: dict[type[errors.VmgenError], str] = {
    errors.AzureThrottled: "Azure is throttling requests: ",
    errors.AzureUnavailable: "Azure failed temporarily: ",
    errors.VmNotFound: "Azure cannot find the VM: ",
    errors.AzureOperationFailed: "The Azure operation failed: ",
    errors.AzureOperationNotAllowed: "Azure refused the operation: ",
}
_ROLE_HINT = " The identity lacks an action of the role in docs/azure-role.md on the VM's resource group."
_NOISE = re.compile(
    r"\s*\b(?:trace|correlation|client[ -]?request|request|tracking|activity)[ -]?id\s*[:=]?\s*"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.?"
    r"|\s*\btimestamp:\s*\d{4}-\d\d-\d\d[ T][\d:.]+Z?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AzureSettings:
    arm_endpoint: str = config.PUBLIC_ARM_ENDPOINT
    credential_scope: str = config.PUBLIC_CREDENTIAL_SCOPE
    authority: str = config.PUBLIC_AUTHORITY
    ca_bundle: str | None = None
    """PEM file trusted for ARM and Entra; None: the system's trust store. Never unverified."""
    poll_interval: float = config.DEFAULT_POLL_INTERVAL
    """Seconds between long-running-operation polls at most (the SDK's default is 30)."""
    latencies: polling.Latencies = field(default_factory=polling.Latencies, compare=False)  # lro_polling.py
    retry_total: int = 2
    """azure-core's own retries per request before an error reaches the workflow."""
    max_connections: int = 64
    """Connections a session keeps to ARM and Entra at most (the Pacer's global limit, `wiring.build`)."""
    request_policies: tuple[Any, ...] = ()
    """azure-core policies run on every attempt, after the retry policy (adapters/metrics.py counts)."""
    per_retry_policies: tuple[Callable[[], Any], ...] = ()
    """Makers of azure-core per-retry policies, one new policy per client (the shared ARM budget)."""


@dataclass(frozen=True)
class ComputeFactory:
    """`ports.ComputeFactory`: one `AzureCompute` per credential; use it with `async with`."""

    settings: AzureSettings

    def __call__(self, credentials: ports.AzureCredentials | None) -> AzureCompute:
        return AzureCompute(self.settings, credentials)


class AzureSession:
    """One credential and its clients (Compute and Network, one per subscription), closed together."""

    def __init__(self, settings: AzureSettings, credentials: ports.AzureCredentials | None) -> None:
        self.settings = settings
        self.secret = credentials.client_secret if credentials else None
        self.transport = azure_transport.SharedTransport(settings.ca_bundle, limit=settings.max_connections)
        self._credential = _credential(settings, credentials, self.transport)
        self._compute: dict[str, ComputeManagementClient] = {}
        self._network: dict[str, Any] = {}  # NetworkManagementClient, imported on first use

    async def aclose(self) -> None:
        clients: list[ComputeManagementClient | Any] = [
            *self._compute.values(),
            *self._network.values(),
        ]
        self._compute, self._network = {}, {}
        for client in clients:
            await client.close()
        await self._credential.close()
        await self.transport.shut()

    def _options(self) -> dict[str, Any]:
        return {
            "base_url": self.settings.arm_endpoint,
            "credential_scopes": [self.settings.credential_scope],
            "transport": self.transport,
            "polling_interval": self.settings.poll_interval,
            "retry_total": self.settings.retry_total,
            "per_retry_policies": [
                *self.settings.request_policies,
                *(make() for make in self.settings.per_retry_policies),
            ],
        }

    def compute(self, subscription_id: str) -> ComputeManagementClient:
        client = self._compute.get(subscription_id)
        if client is None:
            client = ComputeManagementClient(self._credential, subscription_id, **self._options())
            self._compute[subscription_id] = client
        return client

    def network(self, subscription_id: str) -> Any:
        """The NetworkManagementClient (copies only; imported by the first copy: ~40 MiB of RSS)."""
        client = self._network.get(subscription_id)
        if client is None:
            from azure.mgmt.network.aio import NetworkManagementClient

            client = NetworkManagementClient(self._credential, subscription_id, **self._options())
            self._network[subscription_id] = client
        return client

    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        """SDK and transport exceptions become vmgen's errors (`translate`) inside this block."""
        try:
            yield
        except (AzureError, aiohttp.ClientError, OSError) as exc:
            raise translate(exc, secret=self.secret) from exc


class AzureCompute:
    """`ports.Compute` for one credential; closes its clients and credential on exit."""

    def __init__(self, settings: AzureSettings, credentials: ports.AzureCredentials | None) -> None:
        self._settings = settings
        self.session = AzureSession(settings, credentials)
        self._secret = self.session.secret
        self._polling = functools.partial(lro_polling.learned, settings)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.session.aclose()

    async def observe(self, vm: model.VmRef) -> model.VmObservation | None:
        with self._translated():
            try:
                found = await self._vms(vm).get(vm.resource_group, vm.name, expand="instanceView")
            except ResourceNotFoundError as exc:
                if exc.error is not None and exc.error.code in _MISSING_VM_CODES:
                    return None
                raise
        return azure_answers.observation(vm, found)

    async def begin_deallocate(self, vm: model.VmRef) -> model.ContinuationToken:
        with self._translated():
            poller = await self._vms(vm).begin_deallocate(
                vm.resource_group, vm.name, polling=self._polling("deallocate")
            )
            return model.ContinuationToken(poller.continuation_token())

    async def wait_deallocate(self, vm: model.VmRef, token: model.ContinuationToken) -> None:
        with self._translated():
            try:
                poller = await self._vms(vm).begin_deallocate(
                    vm.resource_group,
                    vm.name,
                    continuation_token=token,
                    polling=self._polling("deallocate"),
                )
            except ValueError as exc:
                raise errors.AzureOperationLost(
                    f"The deallocate operation saved in status.steps.shutdown cannot be resumed ({exc});"
                    " vmgen reads the VM again and begins deallocate again unless Azure is already at it."
                ) from exc
            try:
                await poller.result()
            except HttpResponseError as exc:
                failed = translate(exc, secret=self._secret)
                ended = exc.status_code is not None and exc.status_code < 400  # the operation ended Failed
                if ended and isinstance(failed, errors.TransientError):
                    raise errors.AzureOperationLost(
                        f"Azure ended the deallocate operation Failed ({failed.message}); vmgen reads the VM"
                        " again and begins deallocate again unless Azure is already at it."
                    ) from exc
                raise

    async def start(self, vm: model.VmRef) -> None:
        with self._translated():
            poller = await self._vms(vm).begin_start(
                vm.resource_group, vm.name, polling=self._polling("start")
            )
            await poller.result()

    async def generalize(self, vm: model.VmRef) -> None:
        with self._translated():
            await self._vms(vm).generalize(vm.resource_group, vm.name)

    async def run_shell_script(self, vm: model.VmRef, script: str) -> model.ScriptOutput:
        command = azmodels.RunCommandInput(command_id="RunShellScript", script=script.splitlines())
        with self._translated():
            poller = await self._vms(vm).begin_run_command(
                vm.resource_group, vm.name, command, polling=self._polling("runCommand")
            )
            result = await poller.result()
        return _script_output(result)

    async def begin_shell_script(self, vm: model.VmRef, script: str) -> model.ContinuationToken:
        command = azmodels.RunCommandInput(command_id="RunShellScript", script=script.splitlines())
        with self._translated():
            poller = await self._vms(vm).begin_run_command(
                vm.resource_group, vm.name, command, polling_interval=self._settings.poll_interval
            )
            return model.ContinuationToken(poller.continuation_token())

    async def wait_shell_script(self, vm: model.VmRef, token: model.ContinuationToken) -> model.ScriptOutput:
        unused = azmodels.RunCommandInput(command_id="RunShellScript")  # the token carries the request
        with self._translated():
            try:
                poller = await self._vms(vm).begin_run_command(
                    vm.resource_group,
                    vm.name,
                    unused,
                    continuation_token=token,
                    polling_interval=self._settings.poll_interval,
                )
            except ValueError as exc:
                raise errors.AzureOperationLost(
                    f"The Run Command saved in status.steps.deprovision cannot be followed ({exc});"
                    " vmgen runs the read-only check again."
                ) from exc
            result = await poller.result()
        return _script_output(result)

    def management_client(self, vm: model.VmRef) -> ComputeManagementClient:
        """The subscription's client, shared with adapters/azure_runcommand.py (managed run commands)."""
        return self.session.compute(vm.subscription_id)

    def _vms(self, vm: model.VmRef) -> VirtualMachinesOperations:
        return self.session.compute(vm.subscription_id).virtual_machines

    def _translated(self) -> contextlib.AbstractContextManager[None]:
        return self.session.translated()


def _credential(
    settings: AzureSettings,
    credentials: ports.AzureCredentials | None,
    transport: azure_transport.SharedTransport,
) -> ClientSecretCredential | DefaultAzureCredential:
    options: dict[str, Any] = {
        "authority": settings.authority,
        "transport": transport,
        "retry_total": settings.retry_total,
    }
    if credentials is None:
        return DefaultAzureCredential(**options)
    host = urlparse(settings.authority).hostname or settings.authority
    try:
        return ClientSecretCredential(
            credentials.tenant_id,
            credentials.client_id,
            credentials.client_secret,
            disable_instance_discovery=host not in _PUBLIC_AUTHORITIES,
            **options,
        )
    except ValueError as exc:  # empty or malformed tenant/client id; never carries the secret
        raise errors.AzureAuthenticationFailed(f"The Azure credentials are unusable: {exc}") from exc


def translate(exc: BaseException, *, secret: str | None = None) -> errors.VmgenError:
    """The one mapping from an Azure SDK / transport exception to vmgen's error tree."""
    if isinstance(exc, ClientAuthenticationError):
        status = exc.response.status_code if exc.response is not None else None
        if status is not None and (status == 429 or status >= 500):  # Entra itself is in trouble
            return errors.AzureUnavailable(f"Microsoft Entra ID failed temporarily: {_text(exc, secret)}")
        return errors.AzureAuthenticationFailed(f"Azure refused the credential: {_text(exc, secret)}")
    if not isinstance(exc, HttpResponseError):  # ServiceRequest/ResponseError, aiohttp, OSError, timeouts
        detail = _clean(str(exc), secret) or type(exc).__name__
        return errors.AzureUnavailable(f"Azure Resource Manager is unreachable: {detail}")
    code = exc.error.code if exc.error else None
    status = exc.status_code
    text = _text(exc, secret)
    kind = errors.classify_azure(code, status)
    if issubclass(kind, errors.TransientError):
        retry_after = _retry_after(exc.response) if status is not None and status >= 400 else None
        return kind(f"{_PREFIXES.get(kind, '')}{text}", retry_after=retry_after)
    if kind is errors.AzureAuthenticationFailed:
        hint = _ROLE_HINT if status == 403 or code == "AuthorizationFailed" else ""
        return kind(f"Azure refused the request: {text.rstrip('.')}.{hint}")
    return kind(f"{_PREFIXES.get(kind, '')}{text}")


def _text(exc: HttpResponseError, secret: str | None) -> str:
    if exc.error is not None and exc.error.code:
        return _clean(f"{exc.error.code}: {exc.error.message or ''}", secret)
    return _clean(str(exc.message or exc.reason or exc), secret)


def _clean(message: str, secret: str | None) -> str:
    if secret:
        message = message.replace(secret, "***")
    return " ".join(_NOISE.sub("", message).split()).rstrip(": ")


def _retry_after(response: object) -> float | None:
    """Retry-After (seconds or an HTTP date) or retry-after-ms of an error answer, read as azure-core does."""
    if getattr(response, "headers", None) is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return get_retry_after(PipelineResponse(None, response, None))  # type: ignore[arg-type]
    return None


_STREAMS = re.compile(r"\[stdout\]\n(?P<stdout>.*?)\n?\[stderr\]\n(?P<stderr>.*)\Z", re.DOTALL)


def _script_output(result: azmodels.RunCommandResult) -> model.ScriptOutput:
    """Azure reports RunShellScript as one message: `Enable succeeded: \\n[stdout]\\n...\\n[stderr]\\n...`."""
    message = "".join(status.message or "" for status in result.value or [])
    streams = _STREAMS.search(message)
    if streams is None:
        raise errors.AzureOperationFailed(f"Run Command returned no script output: {_clean(message, None)}")
    return model.ScriptOutput(stdout=streams["stdout"], stderr=streams["stderr"])
