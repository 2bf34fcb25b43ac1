"""pytest fixtures for the Linux guests of the testbed: the cached Debian rootfs and per-test sandboxes.

`linux_vm` is a factory: each call creates a sandbox (real sshd + waagent) and seeds it into the ARM
simulator (`arm` fixture) as a running Linux VM backed by that guest, so power operations and Run
Command reach it. Sandboxes are torn down by finalizers, also when the test fails; the session host
removes anything left at the end and, at start, what crashed earlier runs left behind.
`linux_copies` makes VMs that the simulator creates from disks (PUT virtualMachines, issue 11) boot a
new sandbox from the disk's captured filesystem state; it yields the sandboxes so booted, by VM name.
These fixtures need root, network namespaces and overlayfs; without them they fail (never skip) with
a message saying what is missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vmgen_testbed.linux import rootfs, sandbox

__all__ = [
    "TEST_RESOURCE_GROUP",
    "TEST_SUBSCRIPTION_ID",
    "TestVm",
    "linux_copies",
    "linux_rootfs",
    "linux_vm",
    "sandboxes",
]

TEST_SUBSCRIPTION_ID = "3f2c6a1e-8b4d-4e7f-9a05-6c1d2e3f4a5b"
TEST_RESOURCE_GROUP = "rg-vmgen-test"


@dataclass(frozen=True)
class TestVm:
    """A sandbox seeded into the ARM simulator under (subscription_id, resource_group, name)."""

    __test__ = False  # not a test class, despite its name

    sandbox: sandbox.LinuxSandbox
    subscription_id: str
    resource_group: str
    name: str


@pytest.fixture(scope="session")
def linux_rootfs() -> Path:
    return rootfs.ensure_rootfs()


@pytest.fixture(scope="session")
def sandboxes(linux_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sandbox.SandboxHost]:
    host = sandbox.SandboxHost(tmp_path_factory.mktemp("sandboxes"))
    yield host
    host.close()


@pytest.fixture
def linux_vm(sandboxes: sandbox.SandboxHost, arm: Any) -> Iterator[Callable[..., TestVm]]:
    created: list[sandbox.LinuxSandbox] = []

    def make(name: str | None = None, username: str = "azureuser") -> TestVm:
        name = name or f"vm-{uuid.uuid4().hex[:8]}"
        guest = sandboxes.create(name, username=username)
        created.append(guest)
        arm.seed_vm(
            subscription_id=TEST_SUBSCRIPTION_ID,
            resource_group=TEST_RESOURCE_GROUP,
            name=name,
            os_type="Linux",
            guest=guest,
        )
        return TestVm(
            sandbox=guest, subscription_id=TEST_SUBSCRIPTION_ID, resource_group=TEST_RESOURCE_GROUP, name=name
        )

    yield make
    for guest in created:
        sandboxes.destroy(guest)


@pytest.fixture
def linux_copies(sandboxes: sandbox.SandboxHost, arm: Any) -> Iterator[dict[str, sandbox.LinuxSandbox]]:
    booted: dict[str, sandbox.LinuxSandbox] = {}
    arm.set_guest_factory(sandboxes.guest_factory(booted))
    yield booted
    arm.set_guest_factory(None)
    for guest in booted.values():
        sandboxes.destroy(guest)
