"""SSH helpers for the Linux sandbox contract tests: strict host-key checking, always."""

from __future__ import annotations

import asyncssh

from vmgen_testbed.linux.sandbox import LinuxSandbox


def known_hosts(sandbox: LinuxSandbox, keys: list[str] | None = None) -> asyncssh.SSHKnownHosts:
    lines = [f"{sandbox.ip} {key}" for key in (sandbox.host_keys if keys is None else keys)]
    return asyncssh.import_known_hosts("\n".join(lines) + "\n")


async def connect(sandbox: LinuxSandbox, *, keys: list[str] | None = None) -> asyncssh.SSHClientConnection:
    """Log in as the provisioned user, trusting only `keys` (default: what the sandbox exposes)."""
    return await asyncssh.connect(
        sandbox.ip,
        port=sandbox.port,
        username=sandbox.username,
        client_keys=[asyncssh.import_private_key(sandbox.private_key)],
        known_hosts=known_hosts(sandbox, keys),
        connect_timeout=10,
    )


async def run(sandbox: LinuxSandbox, command: str) -> asyncssh.SSHCompletedProcess:
    async with await connect(sandbox) as connection:
        result = await connection.run(command, check=False, timeout=120)
    return result
