"""Values of capture and copy (issues 8 and 11): snapshots, managed images, gallery image versions and
their replication, and the disks, NIC and VM of a copy -- plus the ports that adapters implement.

Pure like the rest of the domain: the adapters (`adapters/azure_images.py`, `adapters/azure_copy.py`)
turn SDK objects into these and never leak SDK types inward. Ids are `NewType`s so that a snapshot id
cannot be passed where a disk id is expected.

Traps these types keep visible:
- An image definition's security type comes from its `SecurityType` feature; no feature means
  `Standard`, and the `...Supported` values accept no VM as source (Azure refuses it).
- A definition created without a Hyper-V generation is V1 (Azure's default): compare generations, never
  assume V2.
- Replication is reported per region; a version is usable only when provisioning is Succeeded AND the
  aggregated replication state is Completed. A Failed version from an earlier attempt must be deleted
  before it is made again (PUT cannot change its source).
- Long-running operations return a `model.ContinuationToken` from `begin_*`, recorded in status before
  waiting, so a restarted operator resumes with `wait_*` instead of creating twice.

`ImageCapture` and `VmCopier` are the Protocols proposed for `domain/ports.py`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import NewType, Protocol

from vmgen.domain import model

__all__ = [
    "CopyVmRequest",
    "DiskId",
    "GalleryImageVersionId",
    "ImageCapture",
    "ImageDefinition",
    "ImageDefinitionRef",
    "ImageId",
    "ImageVersion",
    "ImageVersionRef",
    "ImageVersionRequest",
    "ManagedImage",
    "ManagedImageRequest",
    "NetworkInterface",
    "NicId",
    "OsState",
    "RegionReplication",
    "ReplicationState",
    "ResourceRef",
    "SecurityType",
    "Snapshot",
    "SnapshotId",
    "Subnet",
    "SubnetId",
    "Tags",
    "TargetRegion",
    "VmCopier",
    "VmLayout",
]

SnapshotId = NewType("SnapshotId", str)
DiskId = NewType("DiskId", str)
ImageId = NewType("ImageId", str)
GalleryImageVersionId = NewType("GalleryImageVersionId", str)
NicId = NewType("NicId", str)
SubnetId = NewType("SubnetId", str)
Tags = tuple[tuple[str, str], ...]


class OsState(enum.Enum):
    GENERALIZED = "Generalized"
    SPECIALIZED = "Specialized"


class SecurityType(enum.Enum):
    """A VM's `securityProfile.securityType`, or an image definition's SecurityType feature."""

    STANDARD = "Standard"
    TRUSTED_LAUNCH = "TrustedLaunch"
    CONFIDENTIAL_VM = "ConfidentialVM"
    TRUSTED_LAUNCH_SUPPORTED = "TrustedLaunchSupported"
    CONFIDENTIAL_VM_SUPPORTED = "ConfidentialVMSupported"
    TRUSTED_LAUNCH_AND_CONFIDENTIAL_VM_SUPPORTED = "TrustedLaunchAndConfidentialVmSupported"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: str | None) -> SecurityType:
        if not value:
            return cls.STANDARD
        return next((member for member in cls if member.value.lower() == value.lower()), cls.UNKNOWN)


class ReplicationState(enum.Enum):
    """Per region: Unknown | Replicating | Completed | Failed; aggregated: InProgress instead of
    Replicating."""

    UNKNOWN = "Unknown"
    REPLICATING = "Replicating"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"

    @classmethod
    def parse(cls, value: str | None) -> ReplicationState:
        return next((m for m in cls if m.value.lower() == (value or "").lower()), cls.UNKNOWN)


@dataclass(frozen=True)
class ResourceRef:
    """A resource named in a resource group (snapshot, image, disk, NIC, VM of a copy)."""

    subscription_id: str
    resource_group: str
    name: str


@dataclass(frozen=True)
class ImageDefinitionRef:
    subscription_id: str
    resource_group: str
    gallery: str
    image_definition: str


@dataclass(frozen=True)
class ImageVersionRef:
    definition: ImageDefinitionRef
    version: str


@dataclass(frozen=True)
class Snapshot:
    id: SnapshotId
    provisioning_state: str  # Creating | Succeeded | Failed
    source_disk_id: str
    os_type: model.OsType | None  # None for a data disk's snapshot
    incremental: bool


@dataclass(frozen=True)
class ManagedImageRequest:
    location: str
    source_vm: model.VmResourceId
    hyper_v_generation: str
    zone_resilient: bool = False
    tags: Tags = ()


@dataclass(frozen=True)
class ManagedImage:
    id: ImageId
    provisioning_state: str
    source_vm: str | None
    hyper_v_generation: str
    tags: Tags = ()


@dataclass(frozen=True)
class ImageDefinition:
    """What a version must match: checked before anything touches the VM."""

    id: str
    os_type: model.OsType | None
    os_state: OsState
    hyper_v_generation: str
    security_type: SecurityType


@dataclass(frozen=True)
class TargetRegion:
    name: str
    replica_count: int = 1
    storage_account_type: str | None = None  # None: the gallery's default


@dataclass(frozen=True)
class ImageVersionRequest:
    location: str
    source_id: str
    """A VM id (`storageProfile.source.virtualMachineId`) or a managed image id."""
    target_regions: tuple[TargetRegion, ...]
    exclude_from_latest: bool = False
    end_of_life: datetime | None = None
    tags: Tags = ()


@dataclass(frozen=True)
class RegionReplication:
    region: str
    state: ReplicationState
    progress: int | None
    details: str = ""


@dataclass(frozen=True)
class ImageVersion:
    id: GalleryImageVersionId
    provisioning_state: str  # Creating | Updating | Succeeded | Failed | Deleting
    source_id: str
    aggregated: ReplicationState
    regions: tuple[RegionReplication, ...]
    tags: Tags = ()

    @property
    def ready(self) -> bool:
        return self.provisioning_state == "Succeeded" and self.aggregated is ReplicationState.COMPLETED


@dataclass(frozen=True)
class VmLayout:
    """What a copy needs to know about its source VM."""

    id: model.VmResourceId
    location: str
    size: str
    os_type: model.OsType | None
    os_disk_id: str
    data_disks: tuple[tuple[int, str], ...]  # (lun, managed disk id)
    nic_ids: tuple[str, ...]
    security_type: SecurityType
    tags: Tags = ()


@dataclass(frozen=True)
class Subnet:
    id: SubnetId
    address_prefix: str


@dataclass(frozen=True)
class NetworkInterface:
    id: NicId
    subnet_id: SubnetId
    private_ip: str | None
    vm_id: str | None
    provisioning_state: str


@dataclass(frozen=True)
class CopyVmRequest:
    location: str
    size: str
    os_type: model.OsType
    os_disk_id: DiskId
    nic_id: NicId
    data_disks: tuple[tuple[int, DiskId], ...] = ()
    security_type: SecurityType = SecurityType.STANDARD
    tags: Tags = ()


class ImageCapture(Protocol):
    """Snapshots, managed images and gallery image versions (issue 8). Raises only `errors` classes.

    Creations are `begin_*` (returns once ARM accepted, with the token to record) and `wait_*` (resumes
    from the token in any process). Deletions begin and wait in one call: ARM's DELETE is idempotent (a
    missing resource answers 204), so a restarted operator simply deletes again."""

    async def begin_snapshot(
        self, ref: ResourceRef, *, location: str, disk_id: str, incremental: bool, tags: Tags = ()
    ) -> model.ContinuationToken: ...

    async def wait_snapshot(self, ref: ResourceRef, token: model.ContinuationToken) -> Snapshot: ...

    async def get_snapshot(self, ref: ResourceRef) -> Snapshot | None: ...

    async def delete_snapshot(self, ref: ResourceRef) -> None: ...

    async def begin_managed_image(
        self, ref: ResourceRef, request: ManagedImageRequest
    ) -> model.ContinuationToken: ...

    async def wait_managed_image(self, ref: ResourceRef, token: model.ContinuationToken) -> ManagedImage: ...

    async def get_managed_image(self, ref: ResourceRef) -> ManagedImage | None: ...

    async def delete_managed_image(self, ref: ResourceRef) -> None: ...

    async def get_image_definition(self, ref: ImageDefinitionRef) -> ImageDefinition | None: ...

    async def begin_image_version(
        self, ref: ImageVersionRef, request: ImageVersionRequest
    ) -> model.ContinuationToken:
        """Replication is then watched with `get_image_version` (its own step), not by waiting here."""

    async def get_image_version(self, ref: ImageVersionRef) -> ImageVersion | None:
        """With per-region replication state (`$expand=ReplicationStatus`)."""

    async def delete_image_version(self, ref: ImageVersionRef) -> None: ...


class VmCopier(Protocol):
    """Disks, NIC and VM of a copy (issue 11). Raises only `errors` classes; same begin/wait and
    delete conventions as `ImageCapture`."""

    async def read_layout(self, vm: model.VmRef) -> VmLayout | None: ...

    async def get_subnet(self, subnet_id: str) -> Subnet | None: ...

    async def get_network_interface(self, nic_id: str) -> NetworkInterface | None: ...

    async def begin_disk_from_snapshot(
        self, ref: ResourceRef, *, location: str, snapshot_id: str, tags: Tags = ()
    ) -> model.ContinuationToken: ...

    async def wait_disk(self, ref: ResourceRef, token: model.ContinuationToken) -> DiskId: ...

    async def begin_network_interface(
        self, ref: ResourceRef, *, location: str, subnet_id: str, tags: Tags = ()
    ) -> model.ContinuationToken: ...

    async def wait_network_interface(
        self, ref: ResourceRef, token: model.ContinuationToken
    ) -> NetworkInterface: ...

    async def begin_vm_from_disks(
        self, ref: ResourceRef, request: CopyVmRequest
    ) -> model.ContinuationToken: ...

    async def wait_vm(self, ref: ResourceRef, token: model.ContinuationToken) -> model.VmResourceId: ...

    async def delete_vm(self, ref: ResourceRef) -> None: ...

    async def delete_disk(self, ref: ResourceRef) -> None: ...

    async def delete_network_interface(self, ref: ResourceRef) -> None: ...
