"""Helpers that look at a Linux sandbox the way a person would: its files, its processes, its address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vmgen.domain import model


def vm_ref(test_vm: Any) -> model.VmRef:
    return model.VmRef(test_vm.subscription_id, test_vm.resource_group, test_vm.name)


def ssh_target(sandbox: Any, **changes: Any) -> model.SshTarget:
    target = {
        "host": sandbox.ip,
        "port": sandbox.port,
        "username": sandbox.username,
        "private_key": sandbox.private_key,
        "host_keys": tuple(sandbox.host_keys),
    }
    return model.SshTarget(**{**target, **changes})


def user_exists(sandbox: Any) -> bool:
    passwd = (Path(sandbox.rootfs) / "etc/passwd").read_text()
    return any(line.split(":", 1)[0] == sandbox.username for line in passwd.splitlines())


def host_key_files(sandbox: Any) -> list[str]:
    return sorted(path.name for path in (Path(sandbox.rootfs) / "etc/ssh").glob("ssh_host_*"))


def waagent_deprovisioning(sandbox: Any) -> bool:
    """Whether a `waagent -force -deprovision...` process runs in the sandbox's PID namespace."""
    for pid in sandbox.pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"waagent" in arg for arg in argv) and b"-force" in argv:
            return True
    return False


async def wait_until(condition: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting until {what}")
        await asyncio.sleep(0.05)
