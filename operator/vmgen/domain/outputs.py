"""`status.outputs`: what the job created, so that a person (and deletionPolicy) can find it.

Written as soon as Azure accepted each creation, before anything waits on it, so a restarted operator
knows what exists (and never creates it twice) and a deletion with `deletionPolicy: Delete` knows what to
remove. Ids only, never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class CopyOutputs:
    """source Copy: the copy VM and what it is made of. The ids are written (they are derived from the
    resource's name) before Azure is asked to create anything, so that a restarted operator, a failure
    and deletionPolicy all know what to delete; `state` says how far the copy got."""

    vm_id: str = ""
    nic_id: str = ""
    disk_ids: tuple[str, ...] = ()
    address: str = ""
    state: str = ""
    """Creating | DisksCreated | NicCreated | VmCreated | Ready | Deleted | Kept."""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> CopyOutputs:
        return cls(
            vm_id=str(body.get("vmId") or ""),
            nic_id=str(body.get("nicId") or ""),
            disk_ids=tuple(str(d) for d in body.get("diskIds") or () if isinstance(d, str)),
            address=str(body.get("address") or ""),
            state=str(body.get("state") or ""),
        )

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key, value in (
            ("vmId", self.vm_id),
            ("nicId", self.nic_id),
            ("address", self.address),
            ("state", self.state),
        ):
            if value:
                body[key] = value
        if self.disk_ids:
            body["diskIds"] = list(self.disk_ids)
        return body


@dataclass(frozen=True)
class Outputs:
    snapshots: tuple[str, ...] = ()
    managed_image_id: str = ""
    gallery_image_version_id: str = ""
    replication: Mapping[str, str] = field(default_factory=dict)
    """Per target region: Unknown | Replicating | Completed | Failed."""
    findings: tuple[Mapping[str, str], ...] = ()
    """Preflight findings: {reason, message}, one per blocker."""
    copy: CopyOutputs = field(default_factory=CopyOutputs)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Outputs:
        replication = body.get("replication")
        return cls(
            snapshots=tuple(str(s) for s in body.get("snapshots") or () if isinstance(s, str)),
            managed_image_id=str(body.get("managedImageId") or ""),
            gallery_image_version_id=str(body.get("galleryImageVersionId") or ""),
            replication={str(k): str(v) for k, v in replication.items()}
            if isinstance(replication, Mapping)
            else {},
            findings=tuple(
                {"reason": str(f.get("reason", "")), "message": str(f.get("message", ""))}
                for f in body.get("findings") or ()
                if isinstance(f, Mapping)
            ),
            copy=CopyOutputs.from_body(body["copy"] if isinstance(body.get("copy"), Mapping) else {}),
        )

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.snapshots:
            body["snapshots"] = list(self.snapshots)
        if self.managed_image_id:
            body["managedImageId"] = self.managed_image_id
        if self.gallery_image_version_id:
            body["galleryImageVersionId"] = self.gallery_image_version_id
        if self.replication:
            body["replication"] = dict(self.replication)
        if self.findings:
            body["findings"] = [dict(f) for f in self.findings]
        if copy := self.copy.to_body():
            body["copy"] = copy
        return body

    def with_copy(self, **changes: Any) -> Outputs:
        return replace(self, copy=replace(self.copy, **changes))

    def with_snapshot(self, snapshot_id: str) -> Outputs:
        if snapshot_id in self.snapshots:
            return self
        return replace(self, snapshots=(*self.snapshots, snapshot_id))
