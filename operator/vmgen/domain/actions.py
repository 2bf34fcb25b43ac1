"""The actions the planner can choose: one per pass, performed by one step executor (vmgen/steps).

Plain frozen values; the planner (domain/planner.py) picks one, `steps.EXECUTORS` maps its type to the
function that performs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmgen.domain import copy_actions, model, windows_actions
from vmgen.domain.phases import Phase, StepName
from vmgen.domain.reasons import Reason


@dataclass(frozen=True)
class Validate:
    """Check the guest's Secret and checkpoint validation (Azure already said: a running Linux VM, or a
    stopped one that a person confirmed as deprovisioned)."""


@dataclass(frozen=True)
class Adopt:
    """Azure says the VM is generalized already: skip the remaining steps and succeed."""


@dataclass(frozen=True)
class Deprovision:
    """Look first (through Run Command when the agent is ready), record intent, run waagent over SSH,
    checkpoint. The look catches a guest deprovisioned already (by a person, or by a deleted and
    recreated resource) so that waagent never runs on it a second time."""

    inspect: bool = True


@dataclass(frozen=True)
class VerifyDeprovision:
    """An interrupted deprovision: read the evidence through Run Command."""


@dataclass(frozen=True)
class MarkDeprovisionUnknown:
    why: str


@dataclass(frozen=True)
class AwaitConfirmation:
    """Deprovision's outcome is unknown: nothing to do until a person confirms."""


@dataclass(frozen=True)
class ConfirmDeprovision:
    """A person confirmed through the annotation: checkpoint deprovision as Succeeded."""


@dataclass(frozen=True)
class BeginDeallocate:
    """Record intent, start the deallocate LRO, record its continuation token."""


@dataclass(frozen=True)
class ResumeDeallocate:
    token: model.ContinuationToken


@dataclass(frozen=True)
class Checkpoint:
    """Azure already shows a step's effect (VM deallocated / generalized): record it as done."""

    step: StepName
    reason: Reason
    message: str


@dataclass(frozen=True)
class Generalize:
    """Record intent, POST generalize, checkpoint."""


@dataclass(frozen=True)
class RunPreflight:
    """spec.mode Preflight: every read-only check, each finding recorded; the resource ends there."""


@dataclass(frozen=True)
class TakeSnapshots:
    """spec.preserveSource: snapshot the VM's disks (create what is missing, watch what is creating)."""


@dataclass(frozen=True)
class AwaitApproval:
    """spec.approval Manual: nothing irreversible until the annotation vmgen.io/approve is "true"."""


@dataclass(frozen=True)
class Approve:
    """The annotation is set: checkpoint the approval."""


@dataclass(frozen=True)
class CaptureImage:
    """spec.capture.managedImage: create the managed image from the generalized VM, or watch it."""


@dataclass(frozen=True)
class PublishVersion:
    """spec.capture.galleryImageVersion: create the version, or watch its per-region replication."""


@dataclass(frozen=True)
class Succeed:
    """Every step is done."""


@dataclass(frozen=True)
class Fail:
    reason: Reason
    message: str


@dataclass(frozen=True)
class Wait:
    reason: Reason
    message: str
    delay: float
    phase: Phase


@dataclass(frozen=True)
class Done:
    """The resource is terminal; nothing will ever happen to it again."""


Action = (
    Validate
    | Adopt
    | Deprovision
    | VerifyDeprovision
    | MarkDeprovisionUnknown
    | AwaitConfirmation
    | ConfirmDeprovision
    | BeginDeallocate
    | ResumeDeallocate
    | Checkpoint
    | Generalize
    | RunPreflight
    | TakeSnapshots
    | AwaitApproval
    | Approve
    | CaptureImage
    | PublishVersion
    | Succeed
    | Fail
    | Wait
    | Done
    | windows_actions.ValidateWindows
    | windows_actions.StartSysprep
    | windows_actions.CheckSysprep
    | windows_actions.MarkSysprepUnknown
    | copy_actions.StopSource
    | copy_actions.StartSource
    | copy_actions.BuildCopy
    | copy_actions.DeleteCopy
)


TRANSITION_RECHECK_SECONDS = 5.0
"""How soon a VM in a power transition (starting, stopping, deallocating) is read again."""


def transitioning(vm_name: str, power_state: model.PowerState, phase: Phase) -> Wait:
    """Wait for Azure to finish a power transition before deciding anything (both OS paths)."""
    return Wait(
        Reason.VM_TRANSITIONING,
        f"VM {vm_name} is {power_state.value}; waiting for Azure to finish that first.",
        TRANSITION_RECHECK_SECONDS,
        phase,
    )
