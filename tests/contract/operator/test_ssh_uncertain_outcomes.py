"""Whether anything ran is told apart honestly: an unreachable guest ran nothing, a connection lost
while waagent runs is an unknown outcome, and waagent finishes in the guest regardless."""

from __future__ import annotations

import asyncio
from asyncio.subprocess import PIPE
from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.operator.guests import ssh_target, user_exists, vm_ref, waagent_deprovisioning, wait_until
from vmgen.adapters import azure, ssh
from vmgen.domain import errors


async def test_a_powered_off_guest_is_unreachable_and_nothing_runs(
    compute: azure.AzureCompute, deprovisioner: ssh.SshDeprovisioner, linux_vm: Callable[..., Any]
) -> None:
    test_vm = linux_vm()
    await compute.wait_deallocate(vm_ref(test_vm), await compute.begin_deallocate(vm_ref(test_vm)))

    with pytest.raises(errors.GuestUnreachable, match=test_vm.sandbox.ip):
        await deprovisioner.deprovision(ssh_target(test_vm.sandbox), delete_user=True, timeout=120)

    assert user_exists(test_vm.sandbox)


async def test_a_connection_dropped_while_waagent_runs_is_an_unknown_outcome_and_waagent_still_finishes(
    deprovisioner: ssh.SshDeprovisioner, linux_vm: Callable[..., Any]
) -> None:
    sandbox = linux_vm().sandbox
    running = asyncio.create_task(
        deprovisioner.deprovision(ssh_target(sandbox), delete_user=True, timeout=120)
    )
    await wait_until(lambda: waagent_deprovisioning(sandbox), within=30, what="waagent runs in the guest")

    # Destroy the client's TCP socket (the kernel aborts it and resets the peer): the network vanished.
    killer = await asyncio.create_subprocess_exec(
        "ss", "-K", "dst", sandbox.ip, "dport", "=", str(sandbox.port), stdout=PIPE, stderr=PIPE
    )
    killed, complaint = await killer.communicate()
    assert killer.returncode == 0 and sandbox.ip in killed.decode(), complaint.decode()

    with pytest.raises(errors.DeprovisionOutcomeUnknown, match="was lost"):
        await running
    await wait_until(lambda: not user_exists(sandbox), within=60, what="waagent removed the user")
    await wait_until(lambda: not waagent_deprovisioning(sandbox), within=60, what="waagent exited")


async def test_a_deprovision_that_outlasts_its_timeout_is_an_unknown_outcome(
    deprovisioner: ssh.SshDeprovisioner, linux_vm: Callable[..., Any]
) -> None:
    sandbox = linux_vm().sandbox

    with pytest.raises(errors.DeprovisionOutcomeUnknown, match=r"did not finish within 0\.05s"):
        await deprovisioner.deprovision(ssh_target(sandbox), delete_user=True, timeout=0.05)
