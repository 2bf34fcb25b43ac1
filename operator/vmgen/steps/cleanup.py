"""Clean-up on deletion (spec.deletionPolicy: Delete): what this resource created goes, the VM never does.
Also the copy of spec.source Copy (its VM, NIC and disks): at the end of the job, after a failure unless
spec.copy.keepOnFailure, and on deletion whatever is left of it.

The list comes from status.outputs only (ids vmgen itself wrote), newest first: the gallery version, the
managed image, the snapshots. Each delete is idempotent (ARM answers 204 for a missing resource), so the
kopf deletion handler may retry after a partial clean-up. Retain (the default) never reaches this module.
"""

from __future__ import annotations

from vmgen.domain import capture, copy_plan, errors
from vmgen.domain.reasons import Reason
from vmgen.steps.base import Pass

_GONE = ("", "Deleted")


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
    count += await delete_copy(p)
    p.events.normal(
        Reason.RESOURCES_DELETED, f"deletionPolicy Delete: removed {count} resource(s); the VM is kept."
    )


def copy_ids(p: Pass) -> tuple[str, ...]:
    copy = p.status.outputs.copy
    return tuple(i for i in (copy.vm_id, copy.nic_id, *copy.disk_ids) if i)


async def delete_copy(p: Pass) -> int:
    """The copy's VM first (Azure refuses to delete a NIC or disk that a VM holds), then its NIC and disks;
    outputs.copy.state Deleted afterwards. Returns how many resources were deleted (0: no copy)."""
    copy = p.status.outputs.copy
    if copy.state in _GONE:
        return 0
    azure = p.azure()
    if copy.vm_id:
        await azure.delete_vm(copy_plan.ref_of(copy.vm_id))
    if copy.nic_id:
        await azure.delete_network_interface(copy_plan.ref_of(copy.nic_id))
    for disk in copy.disk_ids:
        await azure.delete_disk(copy_plan.ref_of(disk))
    count = len(copy_ids(p))
    await p.save(p.status.with_outputs(p.status.outputs.with_copy(state="Deleted")))
    return count


async def after_failure(p: Pass) -> str:
    """A failed job's copy is deleted, or kept with spec.copy.keepOnFailure; the sentence for the message."""
    copy = p.status.outputs.copy
    if not p.spec.copied or copy.state in (*_GONE, "Kept") or p.compute is None:
        return ""
    if p.spec.copy.keep_on_failure:
        await p.save(p.status.with_outputs(p.status.outputs.with_copy(state="Kept")))
        p.events.warning(Reason.COPY_KEPT, f"The copy is kept (spec.copy.keepOnFailure): {copy.vm_id}.")
        return (
            f" The copy VM {copy.vm_id} is kept (spec.copy.keepOnFailure), with its NIC and disks"
            " (status.outputs.copy); delete them when done."
        )
    try:
        await delete_copy(p)
    except errors.VmgenError as exc:
        p.events.warning(Reason.COPY_CLEANUP_FAILED, f"Could not delete the copy: {exc.message}")
        return f" The copy could not be deleted ({exc.message}): delete {', '.join(copy_ids(p))} by hand."
    p.events.normal(Reason.COPY_DELETED, "The failed job's copy is deleted; the source VM is untouched.")
    return " The copy's VM, NIC and disks are deleted."
