"""`spec.capture`, `spec.preserveSource`, `spec.approval`, `spec.mode` and `spec.deletionPolicy` as frozen
values: what the job makes of the generalized VM, how it keeps the source recoverable, and who says go.

Parsed like the rest of the spec (domain/spec.py): the CRD validates at admission, the parser still fills
defaults and names the offending field in InvalidSpec. `preserveSource.snapshot` defaults to false so that
a spec written before it existed keeps meaning what it meant; the examples and docs turn it on.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vmgen.domain import errors

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class Mode(enum.Enum):
    GENERALIZE = "Generalize"
    PREFLIGHT = "Preflight"


class Approval(enum.Enum):
    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


class DeletionPolicy(enum.Enum):
    RETAIN = "Retain"
    DELETE = "Delete"


@dataclass(frozen=True)
class PreserveSource:
    snapshot: bool = False
    include_data_disks: bool = True
    incremental: bool = True


@dataclass(frozen=True)
class ManagedImageSpec:
    name: str
    resource_group: str | None
    """None: the VM's resource group."""
    location: str | None
    """None: the VM's location."""
    zone_resilient: bool = False


@dataclass(frozen=True)
class TargetRegionSpec:
    name: str
    replica_count: int = 1
    storage_account_type: str | None = None


@dataclass(frozen=True)
class GalleryVersionSpec:
    resource_group: str
    gallery: str
    image_definition: str
    version: str
    target_regions: tuple[TargetRegionSpec, ...]
    exclude_from_latest: bool = False
    end_of_life_date: str | None = None


@dataclass(frozen=True)
class CaptureSpec:
    managed_image: ManagedImageSpec | None = None
    gallery_image_version: GalleryVersionSpec | None = None

    @property
    def wanted(self) -> bool:
        return self.managed_image is not None or self.gallery_image_version is not None


def _enum(spec: Mapping[str, Any], key: str, kind: type[enum.Enum], default: enum.Enum) -> Any:
    text = spec.get(key, default.value)
    values = {member.value: member for member in kind}
    if text not in values:
        raise errors.InvalidSpec(f"spec.{key} must be one of {', '.join(values)}, not {text!r}")
    return values[text]


def mode(spec: Mapping[str, Any]) -> Mode:
    chosen: Mode = _enum(spec, "mode", Mode, Mode.GENERALIZE)
    return chosen


def approval(spec: Mapping[str, Any]) -> Approval:
    chosen: Approval = _enum(spec, "approval", Approval, Approval.AUTOMATIC)
    return chosen


def deletion_policy(spec: Mapping[str, Any]) -> DeletionPolicy:
    chosen: DeletionPolicy = _enum(spec, "deletionPolicy", DeletionPolicy, DeletionPolicy.RETAIN)
    return chosen


def preserve_source(spec: Mapping[str, Any]) -> PreserveSource:
    body = _object(spec.get("preserveSource"), "spec.preserveSource")
    return PreserveSource(
        snapshot=bool(body.get("snapshot", False)),
        include_data_disks=bool(body.get("includeDataDisks", True)),
        incremental=bool(body.get("incremental", True)),
    )


def capture(spec: Mapping[str, Any]) -> CaptureSpec:
    body = _object(spec.get("capture"), "spec.capture")
    image, version = body.get("managedImage"), body.get("galleryImageVersion")
    return CaptureSpec(  # an empty block is an error (it names no image), not "no capture"
        managed_image=None if image is None else _managed_image(_object(image, "spec.capture.managedImage")),
        gallery_image_version=None
        if version is None
        else _gallery_version(_object(version, "spec.capture.galleryImageVersion")),
    )


def _managed_image(body: Mapping[str, Any]) -> ManagedImageSpec:
    where = "spec.capture.managedImage"
    return ManagedImageSpec(
        name=_text(body, "name", where),
        resource_group=_optional(body, "resourceGroup"),
        location=_optional(body, "location"),
        zone_resilient=bool(body.get("zoneResilient", False)),
    )


def _gallery_version(body: Mapping[str, Any]) -> GalleryVersionSpec:
    where = "spec.capture.galleryImageVersion"
    version = _text(body, "version", where)
    if not _VERSION.match(version):
        raise errors.InvalidSpec(f"{where}.version must be a semantic version N.N.N, not {version!r}")
    regions = body.get("targetRegions") or []
    if not isinstance(regions, list) or not regions:
        raise errors.InvalidSpec(f"{where}.targetRegions must list at least one region")
    return GalleryVersionSpec(
        resource_group=_text(body, "resourceGroup", where),
        gallery=_text(body, "gallery", where),
        image_definition=_text(body, "imageDefinition", where),
        version=version,
        target_regions=tuple(_region(r, f"{where}.targetRegions") for r in regions),
        exclude_from_latest=bool(body.get("excludeFromLatest", False)),
        end_of_life_date=_optional(body, "endOfLifeDate"),
    )


def _region(body: Any, where: str) -> TargetRegionSpec:
    if not isinstance(body, Mapping):
        raise errors.InvalidSpec(f"{where} entries must be objects with a name")
    count = body.get("replicaCount", 1)
    if not isinstance(count, int) or count < 1:
        raise errors.InvalidSpec(f"{where}.replicaCount must be a whole number of at least 1")
    return TargetRegionSpec(
        name=_text(body, "name", where),
        replica_count=count,
        storage_account_type=_optional(body, "storageAccountType"),
    )


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise errors.InvalidSpec(f"{where} must be an object")
    return value


def _text(body: Mapping[str, Any], key: str, where: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise errors.InvalidSpec(f"{where}.{key} is required")
    return value


def _optional(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None
