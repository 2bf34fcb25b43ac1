"""PowerShell through Azure managed run commands: the RunCommand transport of the Windows guest step.

`RunCommandGuest(compute, vm, location=...)` implements `ports.WindowsGuest` with the child resource
`virtualMachines/{vm}/runCommands/{name}`: PUT with `asyncExecution: true` and `timeoutInSeconds`, poll
its instance view (`$expand=instanceView`: executionState, exitCode, output, error) until the script
ended, then DELETE the resource. It reuses the subscription's `ComputeManagementClient` of the pass's
`AzureCompute` (adapters/azure.py), so the credential and its tokens are shared.

Traps avoided:
- The action Run Command (`POST .../runCommand`) blocks one call for the whole script and keeps only the
  last 4,096 bytes of each stream; a managed run command with asyncExecution answers at once and is
  polled, so a slow guest never holds a request open.
- The run command's name is derived from the script's marker (`vmgen-sysprep-state`, ...), not random:
  a SIGKILLed operator leaves at most one resource per script behind, and the next PUT of that name
  replaces it (then deletes it) instead of piling up resources on the VM.
- Once the PUT was accepted the script may run: a lost poll or a script that overran its bound is
  DeprovisionOutcomeUnknown, never success or failure (the start script is idempotent through its
  marker, and the state script is read-only, so the step may simply read again). Before the PUT is
  accepted, Azure's errors are translated as usual (adapters/azure.translate).
- executionState Failed (exit code 1 after a terminating error, or the error stream) counts as the
  script failing, with the error lines in the message; Succeeded with error lines too, as over WinRM.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

import aiohttp
from azure.core.exceptions import AzureError
from azure.mgmt.compute import models as azmodels
from azure.mgmt.compute.aio import ComputeManagementClient

from vmgen.adapters import azure
from vmgen.domain import errors, model, ports, windows
from vmgen.domain.reasons import Reason

__all__ = ["RunCommandGuest", "run_command_name"]

_TERMINAL = frozenset({"Succeeded", "Failed", "TimedOut", "Canceled"})
_ERROR_LINES = 10
_GRACE_SECONDS = 60.0
"""Beyond timeoutInSeconds, how long to wait for Azure to report the end before calling it unknown."""
_MARKER = re.compile(re.escape(windows.MARKER_PREFIX) + r"([a-z0-9-]+)")


def run_command_name(script: str) -> str:
    found = _MARKER.match(script)
    return f"vmgen-{found.group(1)}" if found else "vmgen-script"


class RunCommandGuest:
    def __init__(
        self, compute: ports.Compute, vm: model.VmRef, *, location: str, poll_interval: float
    ) -> None:
        if not isinstance(compute, azure.AzureCompute):
            raise TypeError("RunCommandGuest needs the AzureCompute of adapters/azure.py")
        self._client: ComputeManagementClient = compute.management_client(vm)
        self._vm = vm
        self._location = location
        self._poll = poll_interval

    async def run(self, script: str, *, timeout: float) -> str:  # noqa: ASYNC109 (the port's bound)
        name = run_command_name(script)
        where = f"Run Command {name} on VM {self._vm.name}"
        operations = self._client.virtual_machine_run_commands
        body = azmodels.VirtualMachineRunCommand(
            location=self._location,
            properties=azmodels.VirtualMachineRunCommandProperties(
                source=azmodels.VirtualMachineRunCommandScriptSource(script=script),
                async_execution=True,
                timeout_in_seconds=int(timeout),
            ),
        )
        try:
            poller = await operations.begin_create_or_update(
                self._vm.resource_group, self._vm.name, name, body, polling_interval=self._poll
            )
        except (AzureError, aiohttp.ClientError, OSError) as exc:
            raise azure.translate(exc) from exc
        try:
            try:
                await poller.result()
                view = await self._wait(name, deadline=time.monotonic() + timeout + _GRACE_SECONDS)
            except (AzureError, aiohttp.ClientError, OSError) as exc:
                raise errors.DeprovisionOutcomeUnknown(
                    f"{where}: Azure accepted the script, then following it failed"
                    f" ({azure.translate(exc).message}); it may still be running in the guest"
                ) from exc
        finally:
            await self._delete(name)
        return _outcome(where, view)

    async def _wait(self, name: str, *, deadline: float) -> azmodels.VirtualMachineRunCommandInstanceView:
        operations = self._client.virtual_machine_run_commands
        while True:
            found = await operations.get_by_virtual_machine(
                self._vm.resource_group, self._vm.name, name, expand="instanceView"
            )
            view = found.properties.instance_view if found.properties else None
            if view is not None and _state(view) in _TERMINAL:
                return view
            if time.monotonic() > deadline:
                state = _state(view) if view else "unknown"
                raise errors.DeprovisionOutcomeUnknown(
                    f"Run Command {name} on VM {self._vm.name} did not end in time (executionState"
                    f" {state}); it may still be running in the guest"
                )
            await asyncio.sleep(self._poll)

    async def _delete(self, name: str) -> None:
        """Best effort: a run command left behind is replaced by the next PUT of its name."""
        with contextlib.suppress(AzureError, aiohttp.ClientError, OSError):
            poller = await self._client.virtual_machine_run_commands.begin_delete(
                self._vm.resource_group, self._vm.name, name, polling_interval=self._poll
            )
            await poller.result()


def _state(view: azmodels.VirtualMachineRunCommandInstanceView) -> str:
    """The SDK's enums mix in str but print as `ExecutionState.SUCCEEDED` on Python 3.11: use the value."""
    state = view.execution_state
    return str(getattr(state, "value", state))


def _outcome(where: str, view: azmodels.VirtualMachineRunCommandInstanceView) -> str:
    state = _state(view)
    failures = [line for line in (view.error or "").splitlines() if line.strip()]
    if state == "TimedOut":
        raise errors.DeprovisionOutcomeUnknown(
            f"{where}: the script overran timeoutInSeconds and was stopped; it may have done part of its work"
        )
    if state != "Succeeded" or failures:
        shown = " | ".join(failures[-_ERROR_LINES:]) or view.execution_message or f"executionState {state}"
        raise errors.DeprovisionFailed(
            f"{where}: the PowerShell script failed (exit code {view.exit_code}): {shown}",
            reason=Reason.WINDOWS_SCRIPT_FAILED,
        )
    return view.output or ""
