"""`spec.source` and `spec.copy` as frozen values: whether the job generalizes the VM itself or a copy of it.

`source: Copy` (issue 11) snapshots the VM, builds a second VM from those snapshots and generalizes that
one, so the original keeps running. Parsed like the rest of the spec (domain/spec.py): defaults filled here
too (a spec written before the field existed means InPlace), the offending field named in InvalidSpec.
A subnet id is only checked for its shape here; whether it exists is Azure's answer, read by the copy step
before any disk is created.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vmgen.domain import errors

__all__ = ["CopySpec", "Source", "copy", "source"]


class Source(enum.Enum):
    IN_PLACE = "InPlace"
    COPY = "Copy"


@dataclass(frozen=True)
class CopySpec:
    subnet_id: str | None = None
    """None: the subnet of the source's primary NIC."""
    stop_source_first: bool = False
    """Deallocate the source for the snapshots (application-consistent disks) and start it again."""
    keep_on_failure: bool = False
    """Leave a failed job's copy in place (named in status.outputs.copy) instead of deleting it."""


def source(spec: Mapping[str, Any]) -> Source:
    text = spec.get("source", Source.IN_PLACE.value)
    values = {member.value: member for member in Source}
    if text not in values:
        raise errors.InvalidSpec(f"spec.source must be InPlace or Copy, not {text!r}")
    return values[text]


def copy(spec: Mapping[str, Any]) -> CopySpec:
    body = spec.get("copy")
    if body is None:
        return CopySpec()
    if not isinstance(body, Mapping):
        raise errors.InvalidSpec("spec.copy must be an object")
    subnet = body.get("subnetId")
    if subnet is not None and (not isinstance(subnet, str) or "/subnets/" not in subnet.lower()):
        raise errors.InvalidSpec(
            "spec.copy.subnetId must be a subnet id (.../virtualNetworks/<vnet>/subnets/<name>),"
            f" not {subnet!r}"
        )
    return CopySpec(
        subnet_id=subnet or None,
        stop_source_first=bool(body.get("stopSourceFirst", False)),
        keep_on_failure=bool(body.get("keepOnFailure", False)),
    )
