"""The one place that decides what happens next to a VMGeneralization.

`plan(spec, status, observation, now=, confirmed=, claimed_by=)` is pure: from the checkpoints in
status and a fresh read of the VM it picks exactly one action; `vmgen.workflow` performs it. Keeping
the decision apart from the I/O (after Azure Service Operator's "Begin or Monitor" split) lets the
whole state machine be tested as a table.

Rules it enforces, every pass, against the fresh observation rather than cached status:
- never deprovision a VM that is not running, or one that is already generalized (adopt it instead);
- never generalize a VM that is not deallocated/stopped; never start anything;
- a deprovision found Running at the start of a pass was interrupted (restart, dropped connection):
  verify it through Run Command, never rerun it blindly; when it cannot be verified, wait for a person
  (annotation `vmgen.io/confirm-deprovisioned: "true"`) while still re-verifying now and then (read-only),
  so that Run Command coming back resolves it without anyone;
- a deallocate with a continuation token is resumed, not begun again;
- an explicit osType that contradicts Azure fails before anything touches the VM;
- Windows runs sysprep (over WinRM or through Run Command) instead of waagent: its validation and its
  deprovision step are decided in domain/windows_plan.py (a generalized Windows VM is adopted too);
- `spec.source: Copy` has its own rows in domain/copy_plan.py (stop/start the source, build the copy,
  delete it); the rows here then act on the copy (`copy_plan.target`);
- a stopped VM that is not generalized is only generalized when a person confirms, with the same
  annotation, that its guest was deprovisioned already.
"""

from __future__ import annotations

from datetime import datetime

from vmgen.domain import api, copy_plan, model, windows_plan
from vmgen.domain.actions import (
    TRANSITION_RECHECK_SECONDS,
    Action,
    Adopt,
    Approve,
    AwaitApproval,
    AwaitConfirmation,
    BeginDeallocate,
    CaptureImage,
    Checkpoint,
    ConfirmDeprovision,
    Deprovision,
    Done,
    Fail,
    Generalize,
    MarkDeprovisionUnknown,
    PublishVersion,
    ResumeDeallocate,
    RunPreflight,
    Succeed,
    TakeSnapshots,
    Validate,
    VerifyDeprovision,
    Wait,
    transitioning,
)
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import Phase, Status, StepName, StepState

__all__ = [
    "AGENT_RECHECK_SECONDS",
    "APPROVAL_RECHECK_SECONDS",
    "APPROVE_ANNOTATION",
    "CLAIM_RECHECK_SECONDS",
    "CONFIRMATION_RECHECK_SECONDS",
    "CONFIRM_ANNOTATION",
    "TRANSITION_RECHECK_SECONDS",
    "Action",
    "Adopt",
    "Approve",
    "AwaitApproval",
    "AwaitConfirmation",
    "BeginDeallocate",
    "CaptureImage",
    "Checkpoint",
    "ConfirmDeprovision",
    "Deprovision",
    "Done",
    "Fail",
    "Generalize",
    "MarkDeprovisionUnknown",
    "PublishVersion",
    "ResumeDeallocate",
    "RunPreflight",
    "Succeed",
    "TakeSnapshots",
    "Validate",
    "VerifyDeprovision",
    "Wait",
    "check_vm",
    "plan",
]

CLAIM_RECHECK_SECONDS = 15.0
AGENT_RECHECK_SECONDS = 15.0
CONFIRMATION_RECHECK_SECONDS = 60.0
"""An annotation change also wakes the resource at once; this is only the fallback cadence."""

CONFIRM_ANNOTATION = api.CONFIRM_ANNOTATION
APPROVE_ANNOTATION = api.APPROVE_ANNOTATION
APPROVAL_RECHECK_SECONDS = 60.0
"""An annotation change wakes the resource at once; this is the fallback cadence."""


_STOPPED = (model.PowerState.DEALLOCATED, model.PowerState.STOPPED)


def plan(
    spec: Spec,
    status: Status,
    observation: model.VmObservation | None,
    *,
    now: datetime,
    confirmed: bool,
    claimed_by: str | None = None,
    approved: bool = False,
) -> Action:
    """The next action. `observation` is None when Azure has no such VM; it is not read (and ignored)
    when `claimed_by` names another VMGeneralization holding the VM's lease."""
    if status.phase.terminal:
        return Done()
    step = status.current_step
    if step is None:
        return Succeed()
    if claimed_by is not None:
        return Wait(
            Reason.VM_CLAIMED_BY_ANOTHER,
            f"VM {spec.vm.name} is claimed by VMGeneralization {claimed_by}; this resource waits for it to"
            " finish and does not touch the VM until then.",
            CLAIM_RECHECK_SECONDS,
            Phase.PENDING,
        )
    if step is StepName.PREFLIGHT:  # collects every finding itself, a missing VM included
        return RunPreflight()
    if spec.copied and (copying := copy_plan.plan(spec, status, observation)) is not None:
        return copying
    if observation is None:
        return Fail(
            Reason.VM_NOT_FOUND,
            f"Azure has no VM {spec.vm.name} in resource group {spec.vm.resource_group} of subscription"
            f" {spec.vm.subscription_id}. Check spec.vm (it cannot be edited: create a new"
            " VMGeneralization), or delete this resource if the VM is gone.",
        )
    if step is StepName.VALIDATE:
        return _validate(spec, observation, confirmed=confirmed)
    if step is StepName.CAPTURE:
        return CaptureImage()
    if step is StepName.PUBLISH:
        return PublishVersion()
    if observation.generalized:
        if step is StepName.GENERALIZE:
            return Checkpoint(StepName.GENERALIZE, Reason.VM_GENERALIZED, "Azure reports the VM generalized.")
        return Adopt()
    if step is StepName.SNAPSHOT:
        return TakeSnapshots()
    if step is StepName.APPROVAL:
        return Approve() if approved else AwaitApproval()
    if step is StepName.DEPROVISION and (observation.os_type or spec.os_type) is model.OsType.WINDOWS:
        return windows_plan.deprovision(spec, status, observation, now=now, confirmed=confirmed)
    if step is StepName.DEPROVISION:
        return _deprovision(spec, status, observation, confirmed=confirmed)
    if step is StepName.SHUTDOWN:
        return _shutdown(spec, status, observation, now=now)
    return _generalize(spec, status, observation, now=now)


def check_vm(spec: Spec, vm: model.VmObservation) -> Action:
    """Validation's judgement of what Azure shows (Preflight reports it as a finding instead of failing)."""
    return _validate(spec, vm, confirmed=False)


def _validate(spec: Spec, vm: model.VmObservation, *, confirmed: bool) -> Action:
    if spec.os_type is not None and vm.os_type is not None and spec.os_type is not vm.os_type:
        return Fail(
            Reason.OS_TYPE_MISMATCH,
            f"spec.osType is {spec.os_type.value} but Azure reports VM {spec.vm.name} as {vm.os_type.value}."
            f" Set spec.osType to {vm.os_type.value} or Auto if this is the right VM."
            " The VM was not touched.",
        )
    if vm.generalized:  # adopting only reads, whatever the OS
        return Adopt()
    os_type = vm.os_type or spec.os_type
    if os_type is model.OsType.WINDOWS:
        return windows_plan.validate(spec, vm, confirmed=confirmed)
    if os_type is None:
        return Fail(
            Reason.INVALID_SPEC,
            f"Azure reports no OS type for VM {spec.vm.name}; set spec.osType to Linux or Windows.",
        )
    if spec.ssh is None:
        return Fail(Reason.INVALID_SPEC, _no_ssh(spec))
    if vm.power_state in _STOPPED:
        if confirmed:  # a person says the guest is deprovisioned already: deallocate and generalize it
            return Validate()
        return Fail(Reason.VM_NOT_RUNNING, _not_running(spec, vm, "is"))
    if vm.power_state is not model.PowerState.RUNNING:
        return transitioning(spec.vm.name, vm.power_state, Phase.VALIDATING)
    if not spec.ssh.host_keys and not vm.agent_ready:
        return _agent_not_ready(spec, Phase.VALIDATING)
    return Validate()


def _deprovision(spec: Spec, status: Status, vm: model.VmObservation, *, confirmed: bool) -> Action:
    if spec.ssh is None:  # removed after validation (osType Auto allows it)
        return ConfirmDeprovision() if confirmed else Fail(Reason.INVALID_SPEC, _no_ssh(spec))
    state = status.step(StepName.DEPROVISION).state
    inspectable = vm.power_state is model.PowerState.RUNNING and vm.agent_ready
    if state is StepState.UNKNOWN:
        if confirmed:
            return ConfirmDeprovision()
        return VerifyDeprovision() if inspectable else AwaitConfirmation()
    if state is StepState.RUNNING:
        if vm.power_state is not model.PowerState.RUNNING:
            return MarkDeprovisionUnknown(
                f"Deprovision was interrupted and VM {spec.vm.name} is now {vm.power_state.value}, so Run"
                " Command cannot inspect it"
            )
        if not vm.agent_ready:
            return MarkDeprovisionUnknown(
                "Deprovision was interrupted and the VM agent is not ready (waagent stops it while"
                " deprovisioning), so Run Command cannot inspect the guest"
            )
        return VerifyDeprovision()
    if vm.power_state in _STOPPED:
        if confirmed:
            return ConfirmDeprovision()
        return Fail(Reason.VM_NOT_RUNNING, _not_running(spec, vm, "was"))
    if vm.power_state is not model.PowerState.RUNNING:
        return transitioning(spec.vm.name, vm.power_state, Phase.DEPROVISIONING)
    if not spec.ssh.host_keys and not vm.agent_ready:
        return _agent_not_ready(spec, Phase.DEPROVISIONING)
    return Deprovision(inspect=vm.agent_ready)


def _shutdown(spec: Spec, status: Status, vm: model.VmObservation, *, now: datetime) -> Action:
    step = status.step(StepName.SHUTDOWN)
    if vm.power_state is model.PowerState.DEALLOCATED:
        return Checkpoint(StepName.SHUTDOWN, Reason.VM_DEALLOCATED, "Azure reports the VM deallocated.")
    if step.state is StepState.RUNNING:
        if step.started_at is not None and now - step.started_at > spec.timeouts.shutdown:
            return Fail(
                Reason.TIMEOUT,
                f"VM {spec.vm.name} was not deallocated within spec.timeouts.shutdown"
                f" ({_minutes(spec.timeouts.shutdown.total_seconds())}); it is {vm.power_state.value}."
                " Check the VM's activity log in Azure and deallocate it there; then, since its guest is"
                f" already deprovisioned, recreate this resource with the annotation {CONFIRM_ANNOTATION}:"
                ' "true" and vmgen generalizes it.',
            )
        if step.continuation_token:
            return ResumeDeallocate(model.ContinuationToken(step.continuation_token))
    if vm.power_state is model.PowerState.DEALLOCATING:
        return transitioning(spec.vm.name, vm.power_state, Phase.SHUTTING_DOWN)
    return BeginDeallocate()


def _generalize(spec: Spec, status: Status, vm: model.VmObservation, *, now: datetime) -> Action:
    step = status.step(StepName.GENERALIZE)
    overdue = step.started_at is not None and now - step.started_at > spec.timeouts.generalize
    if step.state is StepState.RUNNING and overdue and vm.power_state in _STOPPED:
        return Fail(
            Reason.TIMEOUT,
            f"Azure did not generalize VM {spec.vm.name} within spec.timeouts.generalize"
            f" ({_minutes(spec.timeouts.generalize.total_seconds())}); it is {vm.power_state.value} and not"
            " generalized. Check the VM's activity log in Azure and run `az vm generalize` there; then"
            " recreate this resource, which adopts the generalized VM.",
        )
    if vm.power_state in _STOPPED:
        return Generalize()
    if vm.power_state in (model.PowerState.STOPPING, model.PowerState.DEALLOCATING, model.PowerState.UNKNOWN):
        return Wait(
            Reason.VM_TRANSITIONING,
            f"The VM is {vm.power_state.value}; generalize waits until it is deallocated.",
            TRANSITION_RECHECK_SECONDS,
            Phase.GENERALIZING,
        )
    return Fail(
        Reason.VM_NOT_DEALLOCATED,
        f"The VM is {vm.power_state.value} although vmgen deallocated it: someone started it after its guest"
        " was deprovisioned. vmgen never generalizes a VM that is not deallocated. Deallocate the VM (do not"
        " use it: its guest has no user and no host keys any more), then recreate this resource with the"
        f' annotation {CONFIRM_ANNOTATION}: "true" so that vmgen generalizes it without deprovisioning'
        " again.",
    )


def _no_ssh(spec: Spec) -> str:
    return (
        f"VM {spec.vm.name} runs Linux: set spec.ssh (host, username, privateKeySecretRef) so that it can be"
        " deprovisioned over SSH."
    )


def _not_running(spec: Spec, vm: model.VmObservation, tense: str) -> str:
    return (
        f"VM {spec.vm.name} {tense} {vm.power_state.value} but not generalized, so vmgen cannot deprovision"
        " it over SSH (and never starts a VM itself). Start the VM, then delete and recreate this resource;"
        " or, if its guest was already deprovisioned, recreate this resource with the annotation"
        f' {CONFIRM_ANNOTATION}: "true" and vmgen deallocates and generalizes it as it is.'
    )


def _agent_not_ready(spec: Spec, phase: Phase) -> Wait:
    return Wait(
        Reason.AGENT_NOT_READY,
        f"The VM agent of {spec.vm.name} is not ready, and the SSH host keys must be read through Run Command"
        " (which needs it) before connecting. Waiting for the agent; or pin spec.ssh.hostKeys.",
        AGENT_RECHECK_SECONDS,
        phase,
    )


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}m"
