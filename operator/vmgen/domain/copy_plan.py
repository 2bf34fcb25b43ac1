"""The planner rows of `spec.source: Copy` (issue 11): stop the source (optional), snapshot it, start it
again, build a copy VM from the snapshots, run the normal path on the copy, delete the copy.

`plan()` is called by `planner.plan` with one dispatch line; it returns None for the steps the normal
rows decide (snapshot, deprovision, ..., publish), which then act on `target()`: the copy's VmRef once the
copy step succeeded, spec.vm before. Everything here is pure (names, targets, readiness and deadlines),
so the copy's state machine is table-tested like the rest (tests/unit/test_copy_plan.py).

Rules it keeps:
- the source sees only reads and snapshot reads -- except with `stopSourceFirst`, the one case where
  vmgen deallocates and starts a VM, and it never starts a generalized one (`may_start`, asserted again
  by the executor against a fresh read);
- the copy's names are derived from the resource (`<vm[:40]>-vmgen-<hash>`, its NIC `-nic`, its disks
  `-os`/`-lun<N>`), so a restarted operator PUTs the same names again (create-or-update: nothing twice)
  and can never collide with the source's name;
- every copy step is bounded by spec.timeouts.copy, each with its own reason (CopyNotReady,
  CopyCleanupFailed); a subnet that does not exist fails before any disk is created (SubnetNotFound);
- a Windows copy runs sysprep through Run Command on the copy (transport WinRM fails in validation,
  untouched: CopyNotSupported); whether it may boot in its subnet at all (a domain-joined copy beside
  the original can break the original's domain trust) is decided in domain/copy_safety.py, during
  Windows validation, before any snapshot or disk exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from vmgen.domain import capture, images, model
from vmgen.domain.actions import Action, Checkpoint, Fail, Wait
from vmgen.domain.copy_actions import BuildCopy, DeleteCopy, StartSource, StopSource
from vmgen.domain.outputs import CopyOutputs
from vmgen.domain.phases import Phase, StepName, StepState
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import Status
from vmgen.domain.windows_spec import Transport

__all__ = [
    "COPY_RECHECK_SECONDS",
    "ON_COPY",
    "BuildCopy",
    "CopyDisk",
    "CopyNames",
    "DeleteCopy",
    "StartSource",
    "StopSource",
    "copy_disks",
    "deadline_passed",
    "may_start",
    "names",
    "outputs_for",
    "plan",
    "readiness",
    "ref_of",
    "ssh_host",
    "target",
    "windows_transport",
]

COPY_RECHECK_SECONDS = 3.0
"""How often a booting copy is looked at again."""

ON_COPY = frozenset(
    {StepName.APPROVAL, StepName.DEPROVISION, StepName.SHUTDOWN, StepName.GENERALIZE, StepName.CAPTURE,
     StepName.PUBLISH}
)  # fmt: skip
"""The steps that act on the copy once it exists."""

_STOPPED = (model.PowerState.DEALLOCATED, model.PowerState.STOPPED)


@dataclass(frozen=True)
class CopyNames:
    vm: images.ResourceRef
    nic: images.ResourceRef


@dataclass(frozen=True)
class CopyDisk:
    ref: images.ResourceRef
    snapshot_id: str
    lun: int | None
    """None for the OS disk."""


def plan(spec: Spec, status: Status, vm: model.VmObservation | None) -> Action | None:
    """The copy's own rows; None: the normal rows decide (and, after the copy step, act on the copy).
    No clock: these rows depend on the step and the source's power state only; the copy's own deadline is
    judged by `readiness`, called by the steps."""
    step = status.current_step
    if step is StepName.DELETE_COPY:
        return DeleteCopy()
    if vm is None:
        return None  # VMNotFound, decided by the normal rows
    if step is StepName.VALIDATE and (refused := windows_transport(spec, vm)) is not None:
        return refused
    if step is StepName.STOP_SOURCE and not vm.generalized:
        if vm.power_state is model.PowerState.DEALLOCATED:
            return Checkpoint(StepName.STOP_SOURCE, Reason.SOURCE_STOPPED, "The source VM is deallocated.")
        return StopSource()
    if step is StepName.START_SOURCE:
        if not may_start(vm):
            return Fail(
                Reason.SOURCE_NOT_RESTARTED,
                f"VM {spec.vm.name} is generalized, and vmgen never starts a generalized VM: it stays"
                " deallocated. Its snapshots are in status.outputs.snapshots.",
            )
        if vm.power_state is model.PowerState.RUNNING:
            return Checkpoint(StepName.START_SOURCE, Reason.SOURCE_STARTED, "The source VM runs again.")
        if vm.power_state in (model.PowerState.STARTING, model.PowerState.DEALLOCATING):
            return Wait(
                Reason.VM_TRANSITIONING,
                f"VM {spec.vm.name} is {vm.power_state.value}; waiting for Azure to finish that first.",
                COPY_RECHECK_SECONDS,
                Phase.COPYING,
            )
        return StartSource()
    if step is StepName.COPY:
        return BuildCopy()
    return None


def windows_transport(spec: Spec, vm: model.VmObservation) -> Fail | None:
    """A Windows copy runs sysprep only through Run Command: spec.winrm names the source, not the copy."""
    if (vm.os_type or spec.os_type) is not model.OsType.WINDOWS:
        return None
    if spec.windows.transport is Transport.RUN_COMMAND:
        return None
    return Fail(
        Reason.COPY_NOT_SUPPORTED,
        f"VM {spec.vm.name} runs Windows, and vmgen runs sysprep on a Windows copy only through Azure"
        " Run Command (spec.winrm names the source's listener, not the copy's). Set"
        " spec.windows.transport: RunCommand; spec.winrm may stay, it is then used only to ask the"
        " source, read-only, whether it is domain-joined (docs/copy.md). The VM was not touched.",
    )


def may_start(vm: model.VmObservation) -> bool:
    """The only VM vmgen ever starts is a source it deallocated for stopSourceFirst: never a generalized
    one (Azure refuses it anyway; a generalized VM must never run again)."""
    return not vm.generalized


def names(spec: Spec, *, owner: str) -> CopyNames:
    """In the source's resource group; `-vmgen-<hash>` keeps the copy from colliding with the source."""
    base = f"{spec.vm.name[:40]}-vmgen-{capture.owner_hash(owner)}"
    group = (spec.vm.subscription_id, spec.vm.resource_group)
    return CopyNames(vm=images.ResourceRef(*group, base), nic=images.ResourceRef(*group, f"{base}-nic"))


def copy_disks(spec: Spec, vm: model.VmObservation, *, owner: str) -> tuple[CopyDisk, ...]:
    """One disk per snapshot the snapshot step took (capture.snapshots), in the same order."""
    base = names(spec, owner=owner).vm
    # The same filter as capture.snapshots (a disk without an id has no snapshot), so that the pairs
    # below line up: a missing OS disk id must not make lun 0's snapshot the copy's OS disk.
    luns: list[int | None] = [None] if vm.os_disk_id else []
    if spec.preserve_source.include_data_disks:
        luns += [lun for lun, disk in vm.data_disks if disk]
    shots = capture.snapshots(spec, vm, owner=owner)
    return tuple(
        CopyDisk(
            ref=images.ResourceRef(
                base.subscription_id,
                base.resource_group,
                f"{base.name}-{'os' if lun is None else f'lun{lun}'}",
            ),
            snapshot_id=capture.snapshot_id(shot.ref),
            lun=lun,
        )
        for lun, shot in zip(luns, shots, strict=True)
    )


def target(spec: Spec, status: Status) -> model.VmRef:
    """The VM this pass acts on: the copy once it is ready and the step is one of ON_COPY, else spec.vm."""
    current = status.current_step
    copy = status.outputs.copy
    if spec.copied and copy.vm_id and current in ON_COPY:
        if status.step(StepName.COPY).state is StepState.SUCCEEDED:
            ref = ref_of(copy.vm_id)
            return model.VmRef(ref.subscription_id, ref.resource_group, ref.name)
    return spec.vm


def ssh_host(spec: Spec, status: Status) -> str:
    """The copy is reached at its own private address; spec.ssh.host names the source."""
    if target(spec, status) != spec.vm:
        return status.outputs.copy.address
    return spec.ssh.host if spec.ssh else ""


def readiness(
    spec: Spec, copy: model.VmObservation | None, *, started: datetime | None, now: datetime
) -> Action | None:
    """None when the copy runs with its agent ready; a Wait while it boots; Fail once spec.timeouts.copy
    has passed."""
    if copy is not None and copy.power_state is model.PowerState.RUNNING and copy.agent_ready:
        return None
    state = "missing" if copy is None else copy.power_state.value
    if deadline_passed(started, now, spec.timeouts.copy):
        return Fail(
            Reason.COPY_NOT_READY,
            f"The copy of VM {spec.vm.name} did not run with its agent ready within spec.timeouts.copy"
            f" ({_minutes(spec.timeouts.copy)}); it is {state}. Look at its boot diagnostics in Azure;"
            " the source VM was not touched.",
        )
    return Wait(
        Reason.COPY_CREATING,
        f"The copy of VM {spec.vm.name} is {state}; waiting for it to run with its agent ready.",
        COPY_RECHECK_SECONDS,
        Phase.COPYING,
    )


def deadline_passed(started: datetime | None, now: datetime, limit: timedelta) -> bool:
    return started is not None and now - started > limit


def ref_of(resource_id: str) -> images.ResourceRef:
    """`/subscriptions/s/resourceGroups/rg/providers/<ns>/<type>/<name>` -> its ResourceRef."""
    parts = [part for part in resource_id.split("/") if part]
    return images.ResourceRef(parts[1], parts[3], parts[-1])


def outputs_for(spec: Spec, vm: model.VmObservation, *, owner: str) -> CopyOutputs:
    """The ids the copy will have, recorded before anything is created."""
    copy = names(spec, owner=owner)
    return CopyOutputs(
        vm_id=_id(copy.vm, "Microsoft.Compute/virtualMachines"),
        nic_id=_id(copy.nic, "Microsoft.Network/networkInterfaces"),
        disk_ids=tuple(_id(d.ref, "Microsoft.Compute/disks") for d in copy_disks(spec, vm, owner=owner)),
        state="Creating",
    )


def _id(ref: images.ResourceRef, kind: str) -> str:
    group = f"/subscriptions/{ref.subscription_id}/resourceGroups/{ref.resource_group}"
    return f"{group}/providers/{kind}/{ref.name}"


def _minutes(limit: timedelta) -> str:
    return f"{limit.total_seconds() / 60:g}m"
