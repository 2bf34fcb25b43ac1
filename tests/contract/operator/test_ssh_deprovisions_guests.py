"""SshDeprovisioner runs the real waagent in a real Debian guest over real SSH, and the guest shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.contract.operator.guests import host_key_files, ssh_target, user_exists, vm_ref
from vmgen.adapters import azure, ssh
from vmgen.domain import errors


async def test_deprovision_with_the_user_removes_the_user_host_keys_and_agent_state(
    deprovisioner: ssh.SshDeprovisioner, linux_vm: Callable[..., Any]
) -> None:
    sandbox = linux_vm().sandbox
    assert user_exists(sandbox) and host_key_files(sandbox), "the guest starts provisioned"

    await deprovisioner.deprovision(ssh_target(sandbox), delete_user=True, timeout=120)

    rootfs = Path(sandbox.rootfs)
    assert not user_exists(sandbox)
    assert not (rootfs / "home" / sandbox.username).exists()
    assert host_key_files(sandbox) == []
    assert not (rootfs / "var/lib/waagent/ovf-env.xml").exists()


async def test_deprovision_without_the_user_keeps_the_user_but_removes_the_host_keys(
    deprovisioner: ssh.SshDeprovisioner, linux_vm: Callable[..., Any]
) -> None:
    sandbox = linux_vm().sandbox

    await deprovisioner.deprovision(ssh_target(sandbox), delete_user=False, timeout=120)

    assert user_exists(sandbox)
    assert host_key_files(sandbox) == []


async def test_run_command_still_reads_the_guest_after_deprovision(
    compute: azure.AzureCompute, deprovisioner: ssh.SshDeprovisioner, linux_vm: Callable[..., Any]
) -> None:
    test_vm = linux_vm()
    await deprovisioner.deprovision(ssh_target(test_vm.sandbox), delete_user=True, timeout=120)

    output = await compute.run_shell_script(
        vm_ref(test_vm), f"getent passwd {test_vm.sandbox.username} || echo no-such-user"
    )

    assert output.stdout.strip() == "no-such-user"


async def test_a_user_without_passwordless_sudo_fails_with_sudos_complaint_and_nothing_changes(
    deprovisioner: ssh.SshDeprovisioner, linux_vm: Callable[..., Any]
) -> None:
    sandbox = linux_vm().sandbox
    (Path(sandbox.rootfs) / "etc/sudoers.d/waagent").unlink()

    with pytest.raises(errors.DeprovisionFailed, match="sudo: a password is required"):
        await deprovisioner.deprovision(ssh_target(sandbox), delete_user=True, timeout=120)

    assert user_exists(sandbox) and host_key_files(sandbox)
