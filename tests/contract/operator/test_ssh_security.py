"""SshDeprovisioner trusts only the pinned host keys and the given private key; refusals change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncssh
import pytest

from tests.contract.operator.guests import host_key_files, ssh_target, user_exists
from vmgen.adapters import ssh
from vmgen.domain import errors, model


def fresh_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


async def test_a_guest_presenting_an_unpinned_host_key_is_refused_and_left_untouched(
    deprovisioner: ssh.SshDeprovisioner, linux_vm: Callable[..., Any]
) -> None:
    sandbox = linux_vm().sandbox
    stranger = fresh_key().export_public_key().decode().strip()
    target = ssh_target(sandbox, host_keys=(stranger,))

    with pytest.raises(errors.HostKeyMismatch) as mismatch:
        await deprovisioner.deprovision(target, delete_user=True, timeout=120)

    assert sandbox.ip in mismatch.value.message and "ssh-ed25519" in mismatch.value.message
    assert sandbox.private_key.decode().strip().splitlines()[1] not in mismatch.value.message
    assert user_exists(sandbox) and host_key_files(sandbox)


async def test_a_guest_that_refuses_the_private_key_is_an_authentication_refusal_and_left_untouched(
    deprovisioner: ssh.SshDeprovisioner, linux_vm: Callable[..., Any]
) -> None:
    sandbox = linux_vm().sandbox
    target = ssh_target(sandbox, private_key=fresh_key().export_private_key())

    with pytest.raises(errors.AuthenticationRefused, match=sandbox.username):
        await deprovisioner.deprovision(target, delete_user=True, timeout=120)

    assert user_exists(sandbox) and host_key_files(sandbox)


async def test_a_target_without_pinned_host_keys_is_refused_before_connecting(
    deprovisioner: ssh.SshDeprovisioner,
) -> None:
    target = ssh_target_without_a_guest(host_keys=())

    with pytest.raises(errors.InvalidSpec, match="No SSH host keys are pinned"):
        await deprovisioner.deprovision(target, delete_user=True, timeout=1)


def ssh_target_without_a_guest(**changes: Any) -> model.SshTarget:
    return model.SshTarget(
        **{
            "host": "127.0.0.1",
            "port": 9,
            "username": "azureuser",
            "private_key": fresh_key().export_private_key(),
            "host_keys": (fresh_key().export_public_key().decode(),),
            **changes,
        }
    )
