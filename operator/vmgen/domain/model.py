"""Values the core reasons about: which VM, what Azure says about it, where its guest is.

These are the vocabulary shared by the planner (pure) and the adapters (I/O). Adapters translate
SDK objects into these and never leak SDK types inward.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NewType

VmResourceId = NewType("VmResourceId", str)
"""ARM id, `/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<vm>`."""

ContinuationToken = NewType("ContinuationToken", str)
"""An azure-core long-running-operation continuation token, kept in status to resume after restart."""


class OsType(enum.Enum):
    LINUX = "Linux"
    WINDOWS = "Windows"


class PowerState(enum.Enum):
    """`PowerState/<code>` from the instance view; UNKNOWN when Azure reports none."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DEALLOCATING = "deallocating"
    DEALLOCATED = "deallocated"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class VmRef:
    subscription_id: str
    resource_group: str
    name: str

    @property
    def resource_id(self) -> VmResourceId:
        return VmResourceId(
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{self.name}"
        )


@dataclass(frozen=True)
class VmObservation:
    """One fresh read of a VM (GET with instanceView). A VM that does not exist is `None`, not this."""

    id: VmResourceId
    os_type: OsType | None
    power_state: PowerState
    generalized: bool
    agent_ready: bool
    location: str = ""
    os_disk_id: str = ""
    """The managed OS disk's ARM id (what a snapshot copies)."""
    data_disks: tuple[tuple[int, str], ...] = ()
    """(lun, managed disk id) of each data disk."""
    hyper_v_generation: str = ""
    """`V1` or `V2` from the instance view; empty when Azure does not say."""
    security_type: str = "Standard"
    """`securityProfile.securityType`: Standard, TrustedLaunch or ConfidentialVM."""
    extensions: tuple[str, ...] = ()
    """`<publisher>.<type>` of each VM extension (e.g. Microsoft.Azure.Security.AzureDiskEncryption)."""


@dataclass(frozen=True)
class SshTarget:
    host: str
    port: int
    username: str
    private_key: bytes = field(repr=False)
    host_keys: tuple[str, ...]
    """OpenSSH public keys (`ssh-ed25519 AAAA...`) the server must present one of."""


@dataclass(frozen=True)
class ScriptOutput:
    """What Run Command returned (Azure reports stdout and stderr, not an exit code)."""

    stdout: str
    stderr: str
