"""SSH to a sandbox verifies host keys: the exposed keys are what sshd presents, others are refused."""

from __future__ import annotations

from collections.abc import Iterator

import asyncssh
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from linux_ssh import connect

from vmgen_testbed.linux import rootfs
from vmgen_testbed.linux.sandbox import LinuxSandbox, SandboxHost

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def sandbox(sandboxes: SandboxHost) -> Iterator[LinuxSandbox]:
    created = sandboxes.create("hostkeys")
    yield created
    sandboxes.destroy(created)


@pytest.mark.parametrize("key_type", ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"])
async def test_each_exposed_host_key_alone_is_enough_to_connect(sandbox: LinuxSandbox, key_type: str) -> None:
    keys = [key for key in sandbox.host_keys if key.startswith(f"{key_type} ")]
    assert len(keys) == 1

    async with await connect(sandbox, keys=keys) as connection:
        result = await connection.run("id -un", check=True)

    assert str(result.stdout).strip() == sandbox.username


async def test_a_wrong_host_key_is_refused(sandbox: LinuxSandbox) -> None:
    impostor = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )

    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await connect(sandbox, keys=[impostor])


def test_every_host_key_is_the_vms_own_rsa_included_as_on_azure(
    sandbox: LinuxSandbox, sandboxes: SandboxHost
) -> None:
    other = sandboxes.create("hostkeys-other")
    try:
        shared = set(sandbox.host_keys) & set(other.host_keys)
    finally:
        sandboxes.destroy(other)

    assert shared == set(), "no two VMs may share a host key"
    assert [key.split()[0] for key in sandbox.host_keys] == ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]


def test_the_rsa_pool_gives_the_same_key_for_an_index_and_a_different_one_per_index() -> None:
    first = rootfs.rsa_host_key(0)

    assert rootfs.rsa_host_key(0) == first
    assert rootfs.rsa_host_key(1) != first
    assert first.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
