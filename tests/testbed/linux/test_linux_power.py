"""The Guest protocol: power operations stop and start the VM's sshd; Run Command runs inside the VM."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import asyncssh
import pytest
from linux_ssh import connect, run

from vmgen_testbed.guest import ShellNotSupported
from vmgen_testbed.linux.sandbox import LinuxSandbox, SandboxHost

pytestmark = pytest.mark.root


@pytest.fixture
def sandbox(sandboxes: SandboxHost) -> Iterator[LinuxSandbox]:
    created = sandboxes.create(f"power-{uuid.uuid4().hex[:6]}")
    yield created
    sandboxes.destroy(created)


def answers_on_ssh_port(sandbox: LinuxSandbox) -> bool:
    try:
        socket.create_connection((sandbox.ip, sandbox.port), timeout=2).close()
    except OSError:
        return False
    return True


class TestPower:
    async def test_power_off_makes_ssh_unreachable_and_power_on_brings_it_back_with_the_same_keys(
        self, sandbox: LinuxSandbox
    ) -> None:
        keys = list(sandbox.host_keys)

        await sandbox.power_off()

        assert not answers_on_ssh_port(sandbox)
        assert len(sandbox.pids()) == 1, "only the VM's PID 1 survives a power off"

        await sandbox.power_on()

        assert (await run(sandbox, "echo back")).stdout == "back\n"
        assert sandbox.host_keys == keys

    async def test_power_operations_are_idempotent(self, sandbox: LinuxSandbox) -> None:
        await sandbox.power_on()
        await sandbox.power_off()
        await sandbox.power_off()
        assert not answers_on_ssh_port(sandbox)
        await sandbox.power_on()
        await sandbox.power_on()
        assert (await run(sandbox, "true")).exit_status == 0

    async def test_power_off_ends_open_ssh_sessions(self, sandbox: LinuxSandbox) -> None:
        async with await connect(sandbox) as connection:
            await sandbox.power_off()
            # The connection itself is gone: asyncssh cannot open a channel on it (or reports it lost
            # mid-open). A ProcessError (the command ran and failed) or a timeout (it hung) would mean the
            # session survived, so those are not accepted.
            with pytest.raises((asyncssh.ChannelOpenError, asyncssh.DisconnectError)):
                await connection.run("true", check=True, timeout=10)

    async def test_a_restart_resets_the_hostname_from_etc_hostname_like_a_boot(
        self, sandbox: LinuxSandbox
    ) -> None:
        await sandbox.run_script(
            "hostname renamed; echo booted-name > /etc/hostname", shell="bash", timeout=30
        )
        await sandbox.power_off()
        await sandbox.power_on()
        assert (await sandbox.run_script("hostname", shell="bash", timeout=30)).stdout == "booted-name\n"

    async def test_after_deprovision_a_restart_leaves_ssh_down_like_azure(
        self, sandbox: LinuxSandbox
    ) -> None:
        assert (await run(sandbox, "sudo waagent -deprovision+user -force")).exit_status == 0
        await sandbox.power_off()

        await sandbox.power_on()

        assert not sandbox.running
        assert not answers_on_ssh_port(sandbox)
        assert "no hostkeys available" in sandbox.sshd_log()


class TestRunCommand:
    async def test_run_script_returns_stdout_stderr_and_exit_code_of_a_command_inside(
        self, sandbox: LinuxSandbox
    ) -> None:
        result = await sandbox.run_script(
            "id -un; cat /etc/hostname; echo oops >&2; exit 3", shell="bash", timeout=30
        )

        assert (result.exit_code, result.stdout, result.stderr) == (3, f"root\n{sandbox.name}\n", "oops\n")

    async def test_run_script_runs_in_the_vms_own_namespaces(self, sandbox: LinuxSandbox) -> None:
        script = "hostname; ip -4 -o addr show eth0; test -f /var/lib/waagent/ovf-env.xml"
        result = await sandbox.run_script(script, shell="bash", timeout=30)

        hostname, address = result.stdout.splitlines()
        assert result.exit_code == 0
        assert hostname == sandbox.name != socket.gethostname()
        assert f"inet {sandbox.ip}/24" in address

    async def test_run_script_still_works_after_deprovision_broke_ssh(self, sandbox: LinuxSandbox) -> None:
        assert (await run(sandbox, "sudo waagent -deprovision+user -force")).exit_status == 0

        result = await sandbox.run_script("ls /etc/ssh | grep -c ssh_host_ || true", shell="bash", timeout=30)

        assert result.stdout == "0\n"

    async def test_run_script_refuses_powershell(self, sandbox: LinuxSandbox) -> None:
        with pytest.raises(ShellNotSupported):
            await sandbox.run_script("Get-Date", shell="powershell", timeout=30)

    async def test_a_script_that_overruns_its_timeout_is_killed(self, sandbox: LinuxSandbox) -> None:
        started = time.monotonic()

        with pytest.raises(TimeoutError):
            await sandbox.run_script("sleep 300", shell="bash", timeout=0.5)

        assert time.monotonic() - started < 5
        survivors = await sandbox.run_script("pgrep -x sleep || true", shell="bash", timeout=30)
        assert survivors.stdout == ""
