"""Run Command runs the script inside the VM's guest and answers Azure's RunCommandResult."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from typing import Any

import pytest
from arm_test_support import error_code, error_message
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.mgmt.compute.models import RunCommandInput

from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.guest import ScriptResult, ShellNotSupported


class BashGuest:
    """This suite's own guest double: runs scripts with /bin/bash in a temporary directory."""

    async def power_on(self) -> None:
        return None

    async def power_off(self) -> None:
        return None

    async def run_script(self, script: str, *, shell: str, timeout: float) -> ScriptResult:  # noqa: ASYNC109 (the Guest protocol)
        if shell != "bash":
            raise ShellNotSupported(shell)
        with tempfile.TemporaryDirectory() as workdir:
            process = await asyncio.create_subprocess_exec(
                "/bin/bash",
                "-c",
                script,
                cwd=workdir,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
        assert process.returncode is not None
        return ScriptResult(process.returncode, stdout.decode(), stderr.decode())


def seed(arm: ArmSimulator, **state: Any) -> str:
    sub = str(uuid.uuid4())
    state.setdefault("guest", BashGuest())
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm", **state)
    return sub


async def run(compute_client: Any, sub: str, command_id: str, *script: str) -> Any:
    poller = await compute_client(sub).virtual_machines.begin_run_command(
        "rg", "vm", RunCommandInput(command_id=command_id, script=list(script))
    )
    return await poller.result()


async def test_a_shell_script_runs_in_the_guest_and_returns_both_streams(
    arm: ArmSimulator, compute_client: Any
) -> None:
    result = await run(compute_client, seed(arm), "RunShellScript", "echo hello", "echo oops >&2")
    [status] = result.value
    assert (status.code, status.level, status.display_status) == (
        "ProvisioningState/succeeded",
        "Info",
        "Provisioning succeeded",
    )
    assert status.message == "Enable succeeded: \n[stdout]\nhello\n\n[stderr]\noops\n"


async def test_a_failing_script_reports_enable_failed_with_its_exit_status(
    arm: ArmSimulator, compute_client: Any
) -> None:
    result = await run(compute_client, seed(arm), "RunShellScript", "echo partial; exit 3")
    [status] = result.value
    assert status.code == "ProvisioningState/failed"
    assert status.message.startswith(
        "Enable failed: failed to execute command: command terminated with exit status=3\n[stdout]\npartial\n"
    )


async def test_run_command_on_a_deallocated_vm_is_operation_not_allowed(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub = seed(arm, power_state="deallocated")
    with pytest.raises(ResourceExistsError) as raised:
        await run(compute_client, sub, "RunShellScript", "true")
    assert error_code(raised.value) == "OperationNotAllowed"


async def test_run_command_without_a_ready_agent_is_vm_agent_status_communication_error(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub = seed(arm, agent_ready=False)
    with pytest.raises(ResourceExistsError) as raised:
        await run(compute_client, sub, "RunShellScript", "true")
    assert error_code(raised.value) == "VMAgentStatusCommunicationError"


async def test_a_vm_without_a_guest_has_no_agent_to_run_commands(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub = seed(arm, guest=None)
    with pytest.raises(ResourceExistsError) as raised:
        await run(compute_client, sub, "RunShellScript", "true")
    assert error_code(raised.value) == "VMAgentStatusCommunicationError"


async def test_powershell_on_a_guest_that_cannot_run_it_fails_the_operation(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub = seed(arm, os_type="Windows")
    with pytest.raises(HttpResponseError) as raised:
        await run(compute_client, sub, "RunPowerShellScript", "Get-Date")
    assert error_code(raised.value) == "VMExtensionProvisioningError"
    assert "RunCommandWindows" in error_message(raised.value)


async def test_powershell_on_a_linux_vm_is_an_invalid_parameter(
    arm: ArmSimulator, compute_client: Any
) -> None:
    with pytest.raises(HttpResponseError) as raised:
        await run(compute_client, seed(arm), "RunPowerShellScript", "Get-Date")
    assert raised.value.status_code == 400
    assert error_code(raised.value) == "InvalidParameter"
