"""pytest fixtures for the testbed's Windows guests: a modelled Windows machine behind a real WinRM endpoint.

`windows_vm` is a factory: each call builds a `WindowsMachine` (with the failure modes asked for), starts
its WinRM endpoint (HTTP and HTTPS, certificate from the session's `windows_ca`) and seeds it into the ARM
simulator (`arm` fixture) as a running Windows VM backed by that guest, so power operations, Run Command
and managed run commands reach the same machine. A sysprep /shutdown marks the VM stopped in the
simulator. `extensions` (publisher, type) put VM extensions on it, e.g. Azure Disk Encryption;
`domain` joins it to an Active Directory domain (in the guest, and with `domain_extension` also through
the JsonADDomainExtension that Azure shows on the VM).
`windows_copies` lets VMs created from disks of a Windows VM's snapshot boot a new modelled machine with
that disk's state and its own WinRM endpoint (recorded by VM name), as `linux_copies` does for sandboxes.
Endpoints are stopped after the test, also when it fails.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from vmgen_testbed.guest import Guest, GuestFactory, GuestRequest
from vmgen_testbed.windows.endpoint import WinRmEndpoint
from vmgen_testbed.windows.guest import WindowsGuest
from vmgen_testbed.windows.machine import FailureMode, WindowsMachine

__all__ = [
    "TestWindowsVm",
    "WindowsCa",
    "windows_ca",
    "windows_copies",
    "windows_guest_factory",
    "windows_vm",
]

WINDOWS_SUBSCRIPTION_ID = "7d3e1c2b-9a4f-4b6e-8c1d-0e2f3a4b5c6d"
WINDOWS_RESOURCE_GROUP = "rg-vmgen-windows-test"


@dataclass(frozen=True)
class WindowsCa:
    ca: trustme.CA
    path: Path

    @property
    def pem(self) -> str:
        return self.path.read_text()


@dataclass(frozen=True)
class TestWindowsVm:
    """A Windows guest seeded into the ARM simulator under (subscription_id, resource_group, name)."""

    __test__ = False  # not a test class, despite its name

    guest: WindowsGuest
    subscription_id: str
    resource_group: str
    name: str
    username: str
    password: str = field(repr=False)
    ca_path: Path

    @property
    def machine(self) -> WindowsMachine:
        return self.guest.machine

    @property
    def endpoint(self) -> WinRmEndpoint:
        return self.guest.endpoint


@pytest.fixture(scope="session")
def windows_ca(tmp_path_factory: pytest.TempPathFactory) -> WindowsCa:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("windows-ca") / "winrm-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return WindowsCa(ca, path)


def start_windows_guest(
    *,
    name: str,
    ca: trustme.CA,
    state_dir: Path,
    username: str = "azureuser",
    password: str | None = None,
    failures: Iterable[FailureMode | str] = (),
    sysprep_seconds: float = 0.3,
    allow_basic_http: bool = False,
) -> tuple[WindowsGuest, str]:
    """A started guest and its password (shared by the fixture and `python -m vmgen_testbed up`)."""
    password = password or secrets.token_urlsafe(18)
    machine = WindowsMachine(
        name, sysprep_seconds=sysprep_seconds, failures=frozenset(FailureMode(f) for f in failures)
    )
    endpoint = WinRmEndpoint(
        machine,
        ca=ca,
        state_dir=state_dir,
        username=username,
        password=password,
        allow_basic_http=allow_basic_http,
    ).start()
    return WindowsGuest(machine, endpoint), endpoint.password


def seed_windows_guest(
    arm: Any,
    guest: WindowsGuest,
    *,
    subscription_id: str,
    resource_group: str,
    extensions: tuple[tuple[str, str], ...] = (),
) -> None:
    name = guest.machine.name
    arm.seed_vm(
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        os_type="Windows",
        guest=guest,
        extensions=extensions,
    )
    guest.attach(lambda: arm.update_vm(subscription_id, resource_group, name, power_state="stopped"))


def windows_guest_factory(
    arm: Any,
    *,
    ca: trustme.CA,
    state_dir: Callable[[], Path],
    booted: dict[str, WindowsGuest],
    otherwise: GuestFactory | None = None,
) -> GuestFactory:
    """A `GuestFactory`: a Windows VM whose OS disk holds a machine's state boots a new machine from it,
    with a WinRM endpoint of its own that accepts the disk's account; any other VM goes to `otherwise`."""

    async def boot(request: GuestRequest) -> Guest | None:
        if request.os_type != "Windows" or request.os_disk is None:
            return await otherwise(request) if otherwise is not None else None
        disk = json.loads(request.os_disk.read_text())
        machine = WindowsMachine.from_disk_state(request.name, json.dumps(disk["machine"]))
        endpoint = WinRmEndpoint(
            machine,
            ca=ca,
            state_dir=state_dir(),
            username=disk["account"]["username"],
            password=disk["account"]["password"],
        ).start()
        guest = WindowsGuest(machine, endpoint)
        _, _, subscription, _, group, *_ = request.vm_id.split("/")
        guest.attach(lambda: arm.update_vm(subscription, group, request.name, power_state="stopped"))
        booted[request.name] = guest
        return guest

    return boot


@pytest.fixture
def windows_copies(
    arm: Any, windows_ca: WindowsCa, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, WindowsGuest]]:
    """Copies of Windows VMs boot machines of their own (by VM name); Linux copies still boot sandboxes
    when `linux_copies` was set up first."""
    booted: dict[str, WindowsGuest] = {}
    previous = arm.guest_factory
    arm.set_guest_factory(
        windows_guest_factory(
            arm,
            ca=windows_ca.ca,
            state_dir=lambda: tmp_path_factory.mktemp("winrm-copy"),
            booted=booted,
            otherwise=previous,
        )
    )
    yield booted
    arm.set_guest_factory(previous)
    for guest in booted.values():
        guest.endpoint.stop()


@pytest.fixture
def windows_vm(
    arm: Any, windows_ca: WindowsCa, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., TestWindowsVm]]:
    started: list[WindowsGuest] = []

    def make(
        name: str | None = None,
        *,
        failures: Iterable[FailureMode | str] = (),
        sysprep_seconds: float = 0.3,
        allow_basic_http: bool = False,
        username: str = "azureuser",
        extensions: tuple[tuple[str, str], ...] = (),
        domain: str | None = None,
        domain_extension: bool = False,
    ) -> TestWindowsVm:
        name = name or f"win-{uuid.uuid4().hex[:8]}"
        guest, password = start_windows_guest(
            name=name,
            ca=windows_ca.ca,
            state_dir=tmp_path_factory.mktemp("winrm"),
            username=username,
            failures=failures,
            sysprep_seconds=sysprep_seconds,
            allow_basic_http=allow_basic_http,
        )
        started.append(guest)
        seed_windows_guest(
            arm,
            guest,
            subscription_id=WINDOWS_SUBSCRIPTION_ID,
            resource_group=WINDOWS_RESOURCE_GROUP,
            extensions=extensions,
        )
        if domain is not None:
            arm.join_domain(
                WINDOWS_SUBSCRIPTION_ID, WINDOWS_RESOURCE_GROUP, name, domain, extension=domain_extension
            )
        return TestWindowsVm(
            guest=guest,
            subscription_id=WINDOWS_SUBSCRIPTION_ID,
            resource_group=WINDOWS_RESOURCE_GROUP,
            name=name,
            username=username,
            password=password,
            ca_path=windows_ca.path,
        )

    yield make
    for guest in started:
        guest.endpoint.stop()
