"""waagent deprovision, run over real SSH in a sandbox, removes what Azure documents it removes."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import asyncssh
import pytest
from linux_ssh import connect, run

from vmgen_testbed.linux.sandbox import LinuxSandbox, SandboxHost

pytestmark = pytest.mark.root


def users(sandbox: LinuxSandbox, table: str) -> set[str]:
    return {line.split(":")[0] for line in (sandbox.rootfs / "etc" / table).read_text().splitlines() if line}


@pytest.fixture
def sandbox(sandboxes: SandboxHost) -> Iterator[LinuxSandbox]:
    created = sandboxes.create(f"deprov-{uuid.uuid4().hex[:6]}")
    yield created
    sandboxes.destroy(created)


async def test_deprovision_plus_user_removes_user_host_keys_agent_state_dns_leases_and_hostname(
    sandbox: LinuxSandbox,
) -> None:
    root = sandbox.rootfs
    assert sandbox.username in users(sandbox, "passwd") and (root / "home/azureuser").is_dir()
    assert list((root / "etc/ssh").glob("ssh_host_*")) and list((root / "var/lib/waagent").iterdir())

    result = await run(sandbox, "sudo waagent -deprovision+user -force")

    assert result.exit_status == 0, result.stderr
    assert "azureuser account and entire home directory will be deleted" in str(result.stdout)
    assert sandbox.username not in users(sandbox, "passwd")
    assert sandbox.username not in users(sandbox, "shadow")
    assert not (root / "home/azureuser").exists()
    assert not list((root / "etc/ssh").glob("ssh_host_*"))
    assert list((root / "var/lib/waagent").iterdir()) == []
    assert not (root / "etc/resolv.conf").exists()
    assert not (root / "var/lib/dhcp/dhclient.eth0.leases").exists()
    assert not (root / "root/.bash_history").exists()
    assert "azureuser" not in (root / "etc/sudoers.d/waagent").read_text()
    assert (root / "etc/shadow").read_text().startswith("root:*LOCK*:")
    assert (root / "etc/hostname").read_text().strip() == "localhost.localdomain"
    uts = await sandbox.run_script("hostname", shell="bash", timeout=30)
    assert uts.stdout.strip() == "localhost.localdomain"
    assert socket.gethostname() != "localhost.localdomain", "the host itself must keep its name"


async def test_deprovision_without_user_keeps_the_user_but_removes_host_keys(sandbox: LinuxSandbox) -> None:
    result = await run(sandbox, "sudo waagent -deprovision -force")

    assert result.exit_status == 0, result.stderr
    assert sandbox.username in users(sandbox, "passwd")
    assert (sandbox.rootfs / "home/azureuser/.ssh/authorized_keys").exists()
    assert not list((sandbox.rootfs / "etc/ssh").glob("ssh_host_*"))
    assert not (sandbox.rootfs / "etc/resolv.conf").exists()


async def test_after_deprovision_the_open_session_survives_but_sudo_and_new_connections_fail(
    sandbox: LinuxSandbox,
) -> None:
    async with await connect(sandbox) as connection:
        deprovision = await connection.run("sudo waagent -deprovision+user -force", check=False)
        assert deprovision.exit_status == 0, deprovision.stderr

        after = await connection.run("sudo -n true", check=False)

        assert after.exit_status != 0
        assert "do not exist in the passwd database" in str(after.stderr)
    with pytest.raises((asyncssh.Error, OSError)):
        await connect(sandbox)
