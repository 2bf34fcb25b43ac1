"""The copy's I/O (spec.source Copy, issue 11): stop and start the source for stopSourceFirst, build the
copy from the snapshots one stage per pass, delete it at the end.

Traps it avoids:
- The subnet is read before anything is created: a subnet that does not exist fails (SubnetNotFound)
  with nothing to clean up. Azure's NIC PUT would say the same, but only after the disks exist.
- A creation resumed after a restart is looked up first (the NIC, the VM): a repeated PUT of an existing
  VM answers 200 at once, and azure-core cannot resume such an operation from its token (the SDK's
  `_ContinuationTokenHttpResponse` has no body), so the lookup, not the token, says it is done.
- Ids are recorded in status.outputs.copy before Azure is asked for them (they are derived from the
  resource's name), so a SIGKILL at any point leaves status naming everything that may exist: a restart
  PUTs the same names again (create-or-update makes nothing twice), and failure and deletion know what to
  delete. `outputs.copy.state` says which stage comes next.
- The source is re-read before it is started, and a generalized source is never started
  (copy_plan.may_start); the source otherwise sees only reads and snapshot reads.
- Each stage is bounded by spec.timeouts.copy from the step's start, with its own reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from typing import Any

from vmgen.domain import capture, copy_plan, errors, images, model
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName, StepState
from vmgen.steps import cleanup, record
from vmgen.steps.base import Executor, Pass


async def stop_source(p: Pass, action: copy_plan.StopSource) -> float:
    step = p.status.step(StepName.STOP_SOURCE)
    azure = p.azure()
    if step.state is not StepState.RUNNING or not step.continuation_token:
        message = (
            f"Deallocating the source VM {p.spec.vm.name} for its snapshots (spec.copy.stopSourceFirst)."
        )
        p.events.normal(Reason.COPYING, message)
        status = p.status.begin(StepName.STOP_SOURCE, message=message, at=p.at)
        await p.save(status)
        token = await azure.begin_deallocate(p.spec.vm)
        await p.save(p.status.with_token(StepName.STOP_SOURCE, token))
    token = model.ContinuationToken(p.status.step(StepName.STOP_SOURCE).continuation_token or "")
    await _within(p, StepName.STOP_SOURCE, azure.wait_deallocate(p.spec.vm, token), Reason.TIMEOUT)
    message = "The source VM is deallocated; its disks are snapshotted next."
    p.events.normal(Reason.SOURCE_STOPPED, message)
    await p.save(
        p.status.finish(StepName.STOP_SOURCE, reason=Reason.SOURCE_STOPPED, message=message, at=p.at)
    )
    return 0.0


async def start_source(p: Pass, action: copy_plan.StartSource) -> float:
    fresh = await p.azure().observe(p.spec.vm)  # the precondition against a fresh read, not the plan's
    if fresh is None or not copy_plan.may_start(fresh):
        raise errors.PermanentError(
            f"VM {p.spec.vm.name} is missing or generalized, and vmgen never starts a generalized VM.",
            reason=Reason.SOURCE_NOT_RESTARTED,
        )
    message = f"Starting the source VM {p.spec.vm.name} again: its snapshots are taken."
    p.events.normal(Reason.COPYING, message)
    await p.save(p.status.begin(StepName.START_SOURCE, message=message, at=p.at))
    await _within(p, StepName.START_SOURCE, p.azure().start(p.spec.vm), Reason.TIMEOUT)
    message = f"The source VM {p.spec.vm.name} runs again."
    p.events.normal(Reason.SOURCE_STARTED, message)
    await p.save(
        p.status.finish(StepName.START_SOURCE, reason=Reason.SOURCE_STARTED, message=message, at=p.at)
    )
    return 0.0


async def build(p: Pass, action: copy_plan.BuildCopy) -> float | None:
    stage = p.status.outputs.copy.state
    if p.status.step(StepName.COPY).state is StepState.RUNNING and copy_plan.deadline_passed(
        p.status.step(StepName.COPY).started_at, p.now(), p.spec.timeouts.copy
    ):
        raise errors.PermanentError(
            f"The copy of VM {p.spec.vm.name} was not built within spec.timeouts.copy"
            f" (stage {stage or 'none'}); the source VM was not touched.",
            reason=Reason.COPY_NOT_READY,
        )
    if stage in ("", "Deleted"):
        return await _begin(p)
    if stage == "Creating":
        return await _disks(p)
    if stage == "DisksCreated":
        return await _nic(p)
    if stage == "NicCreated":
        return await _vm(p)
    return await _ready(p)


async def _begin(p: Pass) -> float:
    subnet = await _subnet(p)
    found = await p.azure().get_subnet(subnet)
    if found is None:
        raise errors.PermanentError(
            f"Subnet {subnet} does not exist, so no copy of VM {p.spec.vm.name} was made (no disk was"
            " created). Fix spec.copy.subnetId (or leave it out for the source's subnet) and recreate this"
            " resource.",
            reason=Reason.SUBNET_NOT_FOUND,
        )
    outputs = copy_plan.outputs_for(p.spec, p.observed(), owner=p.resource.holder)
    message = f"Building a copy of VM {p.spec.vm.name} as {outputs.vm_id.rsplit('/', 1)[-1]} in {subnet}."
    p.events.normal(Reason.COPY_CREATING, message)
    status = p.status.begin(StepName.COPY, message=message, at=p.at)
    await p.save(status.with_outputs(dataclasses.replace(status.outputs, copy=outputs)))
    return 0.0


async def _disks(p: Pass) -> float:
    azure = p.azure()
    for disk in copy_plan.copy_disks(p.spec, p.observed(), owner=p.resource.holder):
        token = await azure.begin_disk_from_snapshot(
            disk.ref, location=p.observed().location, snapshot_id=disk.snapshot_id, tags=_tags(p)
        )
        await _within(p, StepName.COPY, azure.wait_disk(disk.ref, token), Reason.COPY_NOT_READY)
    await _stage(p, "DisksCreated", "The copy's disks exist; its network interface is next.")
    return 0.0


async def _nic(p: Pass) -> float:
    azure = p.azure()
    nic = copy_plan.names(p.spec, owner=p.resource.holder).nic
    found = await azure.get_network_interface(p.status.outputs.copy.nic_id)
    if found is not None and found.provisioning_state == "Succeeded":  # made before a restart
        await _stage(p, "NicCreated", "The copy's network interface exists (no public IP); its VM is next.")
        return 0.0
    token = await azure.begin_network_interface(
        nic, location=p.observed().location, subnet_id=await _subnet(p), tags=_tags(p)
    )
    await _within(p, StepName.COPY, azure.wait_network_interface(nic, token), Reason.COPY_NOT_READY)
    await _stage(p, "NicCreated", "The copy's network interface exists (no public IP); its VM is next.")
    return 0.0


async def _vm(p: Pass) -> float:
    azure = p.azure()
    layout = await azure.read_layout(p.spec.vm)
    if layout is None:
        raise errors.PermanentError(
            f"VM {p.spec.vm.name} is gone; no copy was made of it.", reason=Reason.VM_NOT_FOUND
        )
    names = copy_plan.names(p.spec, owner=p.resource.holder)
    ref = model.VmRef(names.vm.subscription_id, names.vm.resource_group, names.vm.name)
    if await azure.observe(ref) is not None:  # an earlier pass's PUT was accepted before a restart
        await _stage(p, "VmCreated", f"The copy VM {names.vm.name} exists; waiting for it to run.")
        return 0.0
    disks = copy_plan.copy_disks(p.spec, p.observed(), owner=p.resource.holder)
    ids = dict(zip([d.lun for d in disks], p.status.outputs.copy.disk_ids, strict=False))
    request = images.CopyVmRequest(
        location=layout.location,
        size=layout.size,
        os_type=layout.os_type or model.OsType.LINUX,
        os_disk_id=images.DiskId(ids[None]),
        nic_id=images.NicId(p.status.outputs.copy.nic_id),
        data_disks=tuple((lun, images.DiskId(i)) for lun, i in ids.items() if lun is not None),
        security_type=layout.security_type,
        tags=_tags(p),
    )
    token = await azure.begin_vm_from_disks(names.vm, request)
    await _within(p, StepName.COPY, azure.wait_vm(names.vm, token), Reason.COPY_NOT_READY)
    await _stage(
        p, "VmCreated", f"The copy VM {names.vm.name} exists; waiting for it to run with its agent ready."
    )
    return 0.0


async def _ready(p: Pass) -> float | None:
    names = copy_plan.names(p.spec, owner=p.resource.holder)
    azure = p.azure()
    copy = await azure.observe(model.VmRef(names.vm.subscription_id, names.vm.resource_group, names.vm.name))
    step = p.status.step(StepName.COPY)
    verdict = copy_plan.readiness(p.spec, copy, started=step.started_at, now=p.now())
    if verdict is not None:
        return await record.EXECUTORS[type(verdict)](p, verdict)
    nic = await azure.get_network_interface(p.status.outputs.copy.nic_id)
    address = nic.private_ip if nic is not None else None
    if not address:
        raise errors.TransientError(
            "The copy's network interface reports no private address yet.", reason=Reason.COPY_CREATING
        )
    message = f"The copy VM {names.vm.name} runs at {address} with its agent ready; it is generalized next."
    p.events.normal(Reason.COPY_READY, message)
    outputs = p.status.outputs.with_copy(address=address, state="Ready")
    status = p.status.with_outputs(outputs)
    await p.save(status.finish(StepName.COPY, reason=Reason.COPY_READY, message=message, at=p.at))
    return 0.0


async def delete(p: Pass, action: copy_plan.DeleteCopy) -> float:
    step = p.status.step(StepName.DELETE_COPY)
    if step.state is not StepState.RUNNING:
        message = "Deleting the copy's VM, network interface and disks."
        p.events.normal(Reason.CLEANING_UP, message)
        await p.save(p.status.begin(StepName.DELETE_COPY, message=message, at=p.at))
    elif copy_plan.deadline_passed(step.started_at, p.now(), p.spec.timeouts.copy):
        raise errors.PermanentError(
            f"The copy of VM {p.spec.vm.name} was not deleted within spec.timeouts.copy; the image is made."
            f" Delete {', '.join(cleanup.copy_ids(p))} in Azure by hand.",
            reason=Reason.COPY_CLEANUP_FAILED,
        )
    count = await cleanup.delete_copy(p)
    message = f"The copy's {count} resource(s) are deleted; the source VM kept running."
    p.events.normal(Reason.COPY_DELETED, message)
    await p.save(p.status.finish(StepName.DELETE_COPY, reason=Reason.COPY_DELETED, message=message, at=p.at))
    return 0.0


async def _stage(p: Pass, state: str, message: str) -> None:
    status = p.status.with_outputs(p.status.outputs.with_copy(state=state))
    await p.save(status.with_step(StepName.COPY, message=message))


async def _subnet(p: Pass) -> str:
    """spec.copy.subnetId, or the subnet of the source's primary NIC (a read of the source)."""
    if p.spec.copy.subnet_id:
        return p.spec.copy.subnet_id
    layout = await p.azure().read_layout(p.spec.vm)
    nic = await p.azure().get_network_interface(layout.nic_ids[0]) if layout and layout.nic_ids else None
    if nic is None or not nic.subnet_id:
        raise errors.InvalidSpec(
            f"VM {p.spec.vm.name} has no network interface with a subnet to put its copy in;"
            " set spec.copy.subnetId."
        )
    return nic.subnet_id


def _tags(p: Pass) -> images.Tags:
    return capture.tags(p.resource.holder)


async def _within(p: Pass, name: StepName, operation: Awaitable[Any], reason: Reason) -> Any:
    """Wait for an Azure operation, bounded by spec.timeouts.copy from the step's start."""
    started = p.status.step(name).started_at or p.now()
    remaining = max(1.0, (started + p.spec.timeouts.copy - p.now()).total_seconds())
    try:
        return await asyncio.wait_for(operation, timeout=remaining)
    except TimeoutError:
        raise errors.PermanentError(
            f"Step {name.value} of the copy of VM {p.spec.vm.name} did not finish within spec.timeouts.copy"
            f" ({p.spec.timeouts.copy.total_seconds() / 60:g}m). Check the activity log in Azure.",
            reason=reason,
        ) from None


EXECUTORS: dict[type, Executor] = {
    copy_plan.StopSource: stop_source,
    copy_plan.StartSource: start_source,
    copy_plan.BuildCopy: build,
    copy_plan.DeleteCopy: delete,
}
