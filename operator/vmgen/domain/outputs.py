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
class Outputs:
    snapshots: tuple[str, ...] = ()
    managed_image_id: str = ""
    gallery_image_version_id: str = ""
    replication: Mapping[str, str] = field(default_factory=dict)
    """Per target region: Unknown | Replicating | Completed | Failed."""
    findings: tuple[Mapping[str, str], ...] = ()
    """Preflight findings: {reason, message}, one per blocker."""

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
        return body

    def with_snapshot(self, snapshot_id: str) -> Outputs:
        if snapshot_id in self.snapshots:
            return self
        return replace(self, snapshots=(*self.snapshots, snapshot_id))
