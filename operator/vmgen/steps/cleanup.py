"""Clean-up on deletion (spec.deletionPolicy: Delete): what this resource created goes, the VM never does.

The list comes from status.outputs only (ids vmgen itself wrote), newest first: the gallery version, the
managed image, the snapshots. Each delete is idempotent (ARM answers 204 for a missing resource), so the
kopf deletion handler may retry after a partial clean-up. Retain (the default) never reaches this module.
"""

from __future__ import annotations

from vmgen.domain import capture
from vmgen.domain.reasons import Reason
from vmgen.steps.base import Pass


async def delete_created(p: Pass) -> None:
    outputs = p.status.outputs
    made = capture.created(outputs.snapshots, outputs.managed_image_id, outputs.gallery_image_version_id)
    azure = p.azure()
    if made.version is not None:
        await azure.delete_image_version(made.version)
    if made.managed_image is not None:
        await azure.delete_managed_image(made.managed_image)
    for snapshot in made.snapshots:
        await azure.delete_snapshot(snapshot)
    count = len(made.snapshots) + (made.version is not None) + (made.managed_image is not None)
    p.events.normal(
        Reason.RESOURCES_DELETED, f"deletionPolicy Delete: removed {count} resource(s); the VM is kept."
    )
