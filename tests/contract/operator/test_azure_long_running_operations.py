"""Deallocate, generalize and Run Command through the real SDK: tokens that survive a restart,
Azure's refusals, and the guest's output."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.contract.operator.guests import vm_ref
from vmgen.adapters import azure
from vmgen.domain import errors, model, polling, ports
from vmgen_testbed.arm.server import Fault


def requests_for(arm: Any, vm: model.VmRef) -> list[Any]:
    return [record for record in arm.requests() if record.is_for_vm(vm.name)]


def polls_of(arm: Any, begun: Any) -> list[Any]:
    """The requests that followed the operation `begun` (a logged POST) answered with."""
    operation = urlparse(begun.response_headers["Azure-AsyncOperation"]).path
    return [
        record
        for record in arm.requests()
        if record.operation in ("operationStatus", "operationResult") and record.path == operation
    ]


async def test_begin_deallocate_returns_a_token_as_soon_as_azure_accepts_without_polling(
    arm: Any,
    azure_settings: azure.AzureSettings,
    compute: azure.AzureCompute,
    seed_vm: Callable[..., model.VmRef],
) -> None:
    vm = seed_vm()

    token = await compute.begin_deallocate(vm)
    # A poll started in the background would run in this event loop: give it ten poll intervals.
    await asyncio.sleep(10 * azure_settings.poll_interval)

    assert token
    (begun,) = requests_for(arm, vm)
    assert (begun.method, begun.operation, begun.status) == ("POST", "deallocate", 202)
    assert polls_of(arm, begun) == [], "nothing may poll the operation before the token is saved"


async def test_a_new_client_resumes_the_deallocation_from_the_token_until_the_vm_is_deallocated(
    arm: Any,
    azure_settings: azure.AzureSettings,
    service_principal: ports.AzureCredentials,
    seed_vm: Callable[..., model.VmRef],
) -> None:
    vm = seed_vm()
    arm.set_latency("deallocate", 0.5)  # still running when the first client is gone (reset after the test)
    async with azure.ComputeFactory(azure_settings)(service_principal) as before_restart:
        token = await before_restart.begin_deallocate(vm)
    assert arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["powerState"] == "deallocating"
    (begun,) = requests_for(arm, vm)

    async with azure.ComputeFactory(azure_settings)(service_principal) as after_restart:
        await after_restart.wait_deallocate(vm, token)
        observed = await after_restart.observe(vm)

    polls = [poll for poll in polls_of(arm, begun) if poll.operation == "operationStatus"]
    assert polls, "the resumed client never polled the operation"
    assert polls[-1].response_body["status"] == "Succeeded"
    assert [r.operation for r in requests_for(arm, vm)].count("deallocate") == 1, "begun again, not resumed"
    assert observed is not None and observed.power_state is model.PowerState.DEALLOCATED
    assert arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["powerState"] == "deallocated"


async def test_the_duration_learnt_from_a_deallocation_is_between_its_last_running_and_first_done_poll(
    arm: Any,
    azure_settings: azure.AzureSettings,
    service_principal: ports.AzureCredentials,
    seed_vm: Callable[..., model.VmRef],
) -> None:
    # Learning when the end was *seen* drifted upwards poll after poll; learning the last "running"
    # answer erred low by an interval and flooded the tail (domain/polling.py, adapters/lro_polling.py).
    settings = replace(azure_settings, poll_interval=0.4, latencies=polling.Latencies())
    arm.set_latency("deallocate", 1.0)  # from the POST to the end (reset after the test)
    vm = seed_vm()

    async with azure.ComputeFactory(settings)(service_principal) as compute:
        await compute.wait_deallocate(vm, await compute.begin_deallocate(vm))

    learnt = settings.latencies.typical("deallocate")
    (begun,) = [r for r in requests_for(arm, vm) if r.operation == "deallocate"]
    polls = [poll for poll in polls_of(arm, begun) if poll.operation == "operationStatus"]
    running = [
        poll.timestamp - begun.timestamp for poll in polls if poll.response_body["status"] == "InProgress"
    ]
    done = [poll.timestamp - begun.timestamp for poll in polls if poll.response_body["status"] == "Succeeded"]
    assert learnt is not None and running and done
    last_running, first_done = max(running), min(done)
    assert first_done - last_running >= 0.3  # polls at the 0.4 s interval: nothing was learnt before
    assert last_running + 0.1 < learnt < first_done - 0.1  # about the middle, as polling.observed says


@pytest.mark.parametrize(
    ("error_code", "expected"),
    [
        pytest.param(
            "InternalExecutionError",
            errors.AzureOperationLost,
            id="a retryable code is a lost operation to begin again",
        ),
        pytest.param(
            "AnotherOperationInProgress",
            errors.AzureOperationLost,
            id="a competing operation is a lost operation to begin again",
        ),
        pytest.param("OperationNotAllowed", errors.AzureOperationNotAllowed, id="a refusal is not allowed"),
        pytest.param(
            "BadRequest", errors.AzureOperationFailed, id="any other final code fails the operation"
        ),
    ],
)
async def test_a_deallocation_that_ends_failed_in_azure_is_classified_by_its_error_code(
    arm: Any,
    compute: azure.AzureCompute,
    seed_vm: Callable[..., model.VmRef],
    error_code: str,
    expected: type[errors.VmgenError],
) -> None:
    vm = seed_vm()
    arm.inject(Fault(kind="failed-operation", operation="deallocate", error_code=error_code))
    token = await compute.begin_deallocate(vm)

    with pytest.raises(expected, match=error_code) as raised:
        await compute.wait_deallocate(vm, token)

    assert type(raised.value) is expected


async def test_generalizing_a_running_vm_is_refused_with_azures_message_and_changes_nothing(
    arm: Any, compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()

    with pytest.raises(errors.AzureOperationNotAllowed) as refused:
        await compute.generalize(vm)

    assert f"Operation 'generalize' is not allowed on VM '{vm.name}' since the VM is running" in str(
        refused.value
    )
    assert arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["generalized"] is False


async def test_generalizing_a_deallocated_vm_marks_it_generalized(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm(power_state="deallocated")

    await compute.generalize(vm)

    observed = await compute.observe(vm)
    assert observed is not None and observed.generalized


async def test_deallocating_a_vm_that_does_not_exist_is_vm_not_found(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()
    missing = model.VmRef(vm.subscription_id, vm.resource_group, "adapter-vm-gone")

    with pytest.raises(errors.VmNotFound, match="ResourceNotFound"):
        await compute.begin_deallocate(missing)


async def test_run_shell_script_returns_what_the_guest_wrote_to_stdout_and_stderr(
    compute: azure.AzureCompute, linux_vm: Callable[..., Any]
) -> None:
    test_vm = linux_vm()

    output = await compute.run_shell_script(
        vm_ref(test_vm), "echo \"user=$(id -un)\"\necho 'to stderr' >&2\ngrep -c . /etc/hostname"
    )

    assert output.stdout.splitlines() == ["user=root", "1"]
    assert output.stderr.strip() == "to stderr"


async def test_run_command_on_a_vm_whose_agent_does_not_report_is_transient(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm(agent_ready=False)

    with pytest.raises(errors.AzureUnavailable, match="VMAgentStatusCommunicationError"):
        await compute.run_shell_script(vm, "true")


async def test_a_token_that_cannot_be_resumed_is_a_lost_operation_to_begin_again(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()

    with pytest.raises(errors.AzureOperationLost, match=r"cannot be resumed.*begins deallocate again"):
        await compute.wait_deallocate(vm, model.ContinuationToken("not-a-continuation-token"))


async def test_a_new_client_follows_a_run_command_from_its_token_to_the_scripts_output(
    arm: Any,
    azure_settings: azure.AzureSettings,
    service_principal: ports.AzureCredentials,
    linux_vm: Callable[..., Any],
) -> None:
    vm = vm_ref(linux_vm())
    async with azure.ComputeFactory(azure_settings)(service_principal) as before_restart:
        token = await before_restart.begin_shell_script(vm, "echo followed")

    async with azure.ComputeFactory(azure_settings)(service_principal) as after_restart:
        output = await after_restart.wait_shell_script(vm, token)

    assert output.stdout.splitlines() == ["followed"]
    operations = [r.operation for r in requests_for(arm, vm)]
    assert operations.count("runCommand") == 1, "followed, not begun again"


async def test_a_run_command_token_that_cannot_be_followed_is_a_lost_operation(
    compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()

    with pytest.raises(errors.AzureOperationLost, match=r"cannot be followed.*read-only check again"):
        await compute.wait_shell_script(vm, model.ContinuationToken("not-a-continuation-token"))
