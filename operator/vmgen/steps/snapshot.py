"""Snapshot: keep the source recoverable before anything irreversible (spec.preserveSource).

One snapshot per disk, named after the resource (domain/capture.py), so a pass after a restart finds what
an earlier pass began with a GET instead of creating it twice. A pass begins what is missing (and begins
again what Azure ended Failed), records the ids in status.outputs.snapshots as soon as Azure accepted them,
and checkpoints once every snapshot is Succeeded; until then it looks again every few seconds, bounded by
spec.timeouts.capture. The VM keeps running: snapshots of a running VM are crash-consistent (docs/restore.md).
"""

from __future__ import annotations

from vmgen.domain import capture, errors, planner
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName, StepState
from vmgen.steps.base import Executor, Pass


async def take(p: Pass, action: planner.TakeSnapshots) -> float:
    disks = capture.snapshots(p.spec, p.observed(), owner=p.resource.holder)
    if not disks:
        raise errors.InvalidSpec(f"Azure reports no managed disk on VM {p.spec.vm.name} to snapshot.")
    step = p.status.step(StepName.SNAPSHOT)
    if step.state is not StepState.RUNNING:
        p.events.normal(Reason.SNAPSHOTTING, f"Snapshotting {len(disks)} disk(s) of VM {p.spec.vm.name}.")
        await p.save(
            p.status.begin(StepName.SNAPSHOT, message=f"Snapshotting {len(disks)} disk(s).", at=p.at)
        )
    azure = p.azure()
    pending = 0
    for disk in disks:
        found = await azure.get_snapshot(disk.ref)
        if found is not None and found.provisioning_state == "Succeeded":
            continue
        pending += 1
        if found is not None and found.provisioning_state != "Failed":
            continue  # Creating: Azure is on it
        if found is not None:
            await azure.delete_snapshot(disk.ref)
        await azure.begin_snapshot(
            disk.ref,
            location=p.observed().location,
            disk_id=disk.disk_id,
            incremental=p.spec.preserve_source.incremental,
            tags=capture.tags(p.resource.holder),
        )
        outputs = p.status.outputs.with_snapshot(capture.snapshot_id(disk.ref))
        await p.save(p.status.with_outputs(outputs))
    if pending:
        _check_deadline(p)
        return capture.POLL_SECONDS
    ids = ", ".join(capture.snapshot_id(d.ref).rsplit("/", 1)[-1] for d in disks)
    message = (
        f"Snapshots of every disk taken ({ids}); the original can be restored from them (docs/restore.md)."
    )
    p.events.normal(Reason.SNAPSHOTS_TAKEN, message)
    outputs = p.status.outputs
    for disk in disks:
        outputs = outputs.with_snapshot(capture.snapshot_id(disk.ref))
    status = p.status.with_outputs(outputs)
    await p.save(status.finish(StepName.SNAPSHOT, reason=Reason.SNAPSHOTS_TAKEN, message=message, at=p.at))
    return 0.0


def _check_deadline(p: Pass) -> None:
    started = p.status.step(StepName.SNAPSHOT).started_at
    if started is not None and p.now() - started > p.spec.timeouts.capture:
        raise errors.PermanentError(
            f"The snapshots of VM {p.spec.vm.name} did not finish within spec.timeouts.capture; nothing"
            " irreversible happened. Check the snapshots in Azure, then recreate this resource.",
            reason=Reason.TIMEOUT,
        )


EXECUTORS: dict[type, Executor] = {planner.TakeSnapshots: take}
