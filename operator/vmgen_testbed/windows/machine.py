"""A model of one Windows machine: the state the operator's scripts read and change, and how sysprep moves it.

No PowerShell can run here, so the testbed's Windows guest is this plain object: the registry values
(ImageState, SysprepStatus), C:\\Windows\\Panther and the unattend files, sysprep's setupact/setuperr
logs, the Azure agent services, BitLocker per volume, pending-reboot keys and server roles. The WinRM
endpoint and Azure Run Command both act on it through `scripts.run()`, so the two transports see one
machine.

Sysprep takes `sysprep_seconds` (during that time ImageState reads IMAGE_STATE_UNDEPLOYABLE and
sysprep.exe runs, as on Windows), then reaches IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE, unless a failure
mode says otherwise. A sysprep started with /shutdown powers the machine off by itself and tells the ARM
simulator (`on_power_off`). Progress is computed from the clock on every read, and a timer drives the
/shutdown case, so no test sleeps for a state that a read would produce.

Copies (issue 11): the machine's state is what its OS disk holds. `disk_state()` is that state as JSON
(computer name, domain membership, users, ImageState, Panther, logs, services, volumes, roles...), which a
snapshot of the VM's OS disk keeps; `from_disk_state()` boots a new machine from it, so a copy starts as
the same Windows (same computer name and domain membership: the reason copies of domain-joined machines
are dangerous). `join_domain()` models an Active Directory join (Win32_ComputerSystem PartOfDomain and
Domain); the ARM side (the JsonADDomainExtension) is the simulator's (`ArmSimulator.join_domain`).

Thread safety: the endpoint's thread, the ARM simulator's thread and tests all touch a machine; every
read and write holds `lock`.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FailureMode", "WindowsMachine"]

IMAGE_STATE_COMPLETE = "IMAGE_STATE_COMPLETE"
IMAGE_STATE_UNDEPLOYABLE = "IMAGE_STATE_UNDEPLOYABLE"
IMAGE_STATE_GENERALIZED = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
IMAGE_STATE_SPECIALIZE = "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE"
SERVICES = ("RdAgent", "WindowsAzureGuestAgent", "WindowsAzureTelemetryService")
APPX_PACKAGE = "Microsoft.BingWeather_4.53.52331.0_x64__8wekyb3d8bbwe"
UNATTEND_FILES = (r"C:\Windows\System32\Sysprep\unattend.xml", r"C:\Windows\Panther\unattend.xml")
WORKGROUP = "WORKGROUP"
# What a copy carries over from its source's disk (sysprep's duration too: the same installed machine);
# the failure modes of the transport do not belong to it.
_DISK_FIELDS = (
    "computer_name", "domain", "part_of_domain", "users", "image_state", "panther_present",
    "unattend_files", "temp_files", "setupact", "setuperr", "services", "volumes", "pending_reboot",
    "generalization_state", "cleanup_state", "roles", "sysprep_seconds",
)  # fmt: skip


class FailureMode(enum.StrEnum):
    SYSPREP_FAILS_AT_ONCE = "sysprep-fails-at-once"  # AppX package: ImageState stays COMPLETE
    UNDEPLOYABLE = "undeployable"  # a provider failed: ImageState stays UNDEPLOYABLE
    STUCK_SPECIALIZE = "stuck-specialize"  # SPECIALIZE_RESEAL_TO_OOBE, waiting for a reboot
    SYSPREP_STATUS_REFUSES = "sysprep-status-refuses"  # GeneralizationState 4 instead of 7
    BITLOCKER_ON = "bitlocker-on"
    UNSUPPORTED_ROLE = "unsupported-role"  # AD-Domain-Services installed
    AGENT_STOPPED = "agent-stopped"  # RdAgent stopped
    PENDING_REBOOT = "pending-reboot"
    CONNECTION_DROPPED = "connection-dropped"  # the WinRM connection drops during sysprep start


def _stamp(now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))


@dataclass
class WindowsMachine:
    name: str
    sysprep_seconds: float = 0.5
    script_seconds: float = 0.0  # how long Run Command takes to run a script (the WinRM path is instant)
    failures: frozenset[FailureMode] = frozenset()
    clock: Callable[[], float] = time.time
    on_power_off: Callable[[], None] | None = None  # sysprep /shutdown powered the machine off
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    image_state: str = IMAGE_STATE_COMPLETE
    panther_present: bool = True
    unattend_files: set[str] = field(default_factory=lambda: set(UNATTEND_FILES))
    temp_files: dict[str, str] = field(default_factory=dict)
    setupact: list[str] = field(default_factory=list)
    setuperr: list[str] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)  # mount point -> VolumeStatus
    pending_reboot: list[str] = field(default_factory=list)
    generalization_state: int = 7
    cleanup_state: int = 2
    roles: list[str] = field(default_factory=lambda: ["FileAndStorage-Services", "Web-Server"])
    powered: bool = True
    computer_name: str = ""  # NetBIOS name, at most 15 characters; "" -> from `name`
    domain: str = WORKGROUP  # Win32_ComputerSystem.Domain: the workgroup, or the AD domain once joined
    part_of_domain: bool = False
    users: list[str] = field(default_factory=lambda: ["Administrator", "azureuser"])
    sysprep_starts: int = 0
    sysprep_command_lines: list[str] = field(default_factory=list)
    _sysprep_started_at: float | None = None
    _sysprep_shutdown: bool = False
    _sysprep_done: bool = False

    def __post_init__(self) -> None:
        self.failures = frozenset(FailureMode(failure) for failure in self.failures)
        self.computer_name = self.computer_name or self.name.upper()[:15]
        self.services = self.services or {name: "Running" for name in SERVICES}
        self.volumes = self.volumes or {"C:": "FullyDecrypted", "D:": "FullyDecrypted"}
        if FailureMode.SYSPREP_STATUS_REFUSES in self.failures:
            self.generalization_state = 4
        if FailureMode.BITLOCKER_ON in self.failures:
            self.volumes["C:"] = "FullyEncrypted"
        if FailureMode.UNSUPPORTED_ROLE in self.failures:
            self.roles.append("AD-Domain-Services")
        if FailureMode.AGENT_STOPPED in self.failures:
            self.services["RdAgent"] = "Stopped"
        if FailureMode.PENDING_REBOOT in self.failures:
            self.pending_reboot.append(
                r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending"
            )

    # ---- sysprep ---------------------------------------------------------------------------------

    def start_sysprep(self, command_line: str) -> int:
        """What `Win32_Process.Create` of sysprep.exe does: returns the new process id."""
        with self.lock:
            self._advance()
            now = self.clock()
            self.sysprep_starts += 1
            self.sysprep_command_lines.append(command_line)
            self._sysprep_started_at, self._sysprep_done = now, False
            self._sysprep_shutdown = "/shutdown" in command_line.lower()
            self.setupact.append(
                f"{_stamp(now)}, Info                  SYSPRP ========= Sysprep started ====="
            )
            if FailureMode.SYSPREP_FAILS_AT_ONCE in self.failures:
                self._fail_at_once(now)
            else:
                self.image_state = IMAGE_STATE_UNDEPLOYABLE
                if self._sysprep_shutdown:
                    timer = threading.Timer(self.sysprep_seconds, self._shutdown_when_done)
                    timer.daemon = True
                    timer.start()
            return 4000 + self.sysprep_starts

    def _fail_at_once(self, now: float) -> None:
        self._sysprep_done = True
        self.setuperr.append(
            f"{_stamp(now)}, Error                 SYSPRP Package {APPX_PACKAGE} was installed for a user, "
            "but not provisioned for all users. This package will not function properly in the sysprep image."
        )
        self.setuperr.append(
            f"{_stamp(now)}, Error                 SYSPRP Failed to remove apps for the current user: "
            "0x80073cf2."
        )
        self.setupact.append(
            f"{_stamp(now)}, Error                 SYSPRP ActionPlatform::LaunchModule: Failure occurred "
            "while executing 'SysprepGeneralizeValidate' from C:\\Windows\\System32\\AppxSysprep.dll; "
            "dwRet = 0x3cf2"
        )

    def _advance(self) -> None:
        """Bring the model up to the clock: sysprep finishes `sysprep_seconds` after it started."""
        if self._sysprep_started_at is None or self._sysprep_done:
            return
        now = self.clock()
        if now - self._sysprep_started_at < self.sysprep_seconds:
            return
        self._sysprep_done = True
        if FailureMode.UNDEPLOYABLE in self.failures:
            self.setuperr.append(
                f"{_stamp(now)}, Error      [0x0f0082] SYSPRP ActionPlatform::LaunchModule: Failure occurred "
                "while executing 'Sysprep_Generalize_MSDTC' from C:\\Windows\\System32\\msdtcprx.dll"
            )
            self.setupact.append(
                f"{_stamp(now)}, Error                 SYSPRP Sysprep_Generalize_MSDTC failed"
            )
            return
        if FailureMode.STUCK_SPECIALIZE in self.failures:
            self.image_state = IMAGE_STATE_SPECIALIZE
            self.setupact.append(f"{_stamp(now)}, Info                  SYSPRP Waiting for a reboot")
            return
        self.image_state = IMAGE_STATE_GENERALIZED
        self.setupact.append(f"{_stamp(now)}, Info                  SYSPRP Sysprep_Generalize completed")
        if self._sysprep_shutdown:
            self.powered = False

    def finish_sysprep(self) -> None:
        """End a running sysprep now: a test holds sysprep with a long `sysprep_seconds` until the moment
        it chooses (tests/e2e/test_kill_matrix.py), then lets it finish (and power off, for /shutdown)."""
        with self.lock:
            self.sysprep_seconds = 0.0
        self._shutdown_when_done()

    def _shutdown_when_done(self) -> None:
        with self.lock:
            self._advance()
            powered_off = self._sysprep_shutdown and not self.powered
        if powered_off and self.on_power_off is not None:
            self.on_power_off()

    @property
    def sysprep_running(self) -> bool:
        with self.lock:
            self._advance()
            return self._sysprep_started_at is not None and not self._sysprep_done

    def read_image_state(self) -> str:
        with self.lock:
            self._advance()
            return self.image_state

    # ---- domain membership and the OS disk -------------------------------------------------------

    def join_domain(self, domain: str) -> None:
        """What `Add-Computer -DomainName` (or the JsonADDomainExtension) leaves behind after its reboot."""
        with self.lock:
            self.domain, self.part_of_domain = domain, True

    def disk_state(self) -> str:
        """The OS disk's content as JSON (what a snapshot of it holds)."""
        with self.lock:
            self._advance()
            state: dict[str, Any] = {key: getattr(self, key) for key in _DISK_FIELDS}
            state["unattend_files"] = sorted(self.unattend_files)
            state["failures"] = sorted(f for f in self.failures if f is not FailureMode.CONNECTION_DROPPED)
            return json.dumps(state)

    @classmethod
    def from_disk_state(cls, name: str, text: str, **settings: Any) -> WindowsMachine:
        """A new machine booted from a disk holding `disk_state()`: the same Windows, powered on."""
        state = json.loads(text)
        failures = frozenset(FailureMode(f) for f in state.pop("failures", ()))
        state["unattend_files"] = set(state["unattend_files"])
        machine = cls(name, failures=frozenset(), **settings)
        for key, value in state.items():  # after __post_init__: the disk's values win over the defaults
            setattr(machine, key, value)
        machine.failures = failures
        return machine

    # ---- power -----------------------------------------------------------------------------------

    def power_on(self) -> None:
        with self.lock:
            self._advance()
            self.powered = True
            if self._sysprep_started_at is not None and not self._sysprep_done:
                # A reboot kills a running sysprep; Windows then boots into whatever state it reached.
                self._sysprep_done = True

    def power_off(self) -> None:
        with self.lock:
            self._advance()
            self.powered = False

    def snapshot(self) -> dict[str, Any]:
        """The test's view of the machine."""
        with self.lock:
            self._advance()
            return {
                "name": self.name,
                "computerName": self.computer_name,
                "domain": self.domain,
                "partOfDomain": self.part_of_domain,
                "users": list(self.users),
                "imageState": self.image_state,
                "pantherPresent": self.panther_present,
                "unattendFiles": sorted(self.unattend_files),
                "sysprepStarts": self.sysprep_starts,
                "sysprepRunning": self._sysprep_started_at is not None and not self._sysprep_done,
                "sysprepCommandLines": list(self.sysprep_command_lines),
                "powered": self.powered,
                "setuperr": list(self.setuperr),
                "failures": sorted(self.failures),
            }
