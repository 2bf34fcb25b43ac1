"""The planner as a table: every step state crossed with the VM states that matter.

Each row is (status, fresh observation, spec) -> the one action the workflow must take next.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vmgen.domain import model, planner
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import Phase, Status, Step, StepName, StepState

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
P = model.PowerState
S = StepState

SPEC_BODY: dict[str, Any] = {
    "vm": {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "name": "web-01"},
    "osType": "Auto",
    "ssh": {
        "host": "10.0.0.4",
        "username": "azureuser",
        "privateKeySecretRef": {"name": "ssh"},
        "hostKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK9L6y9H"],
    },
}
PINNED = Spec.from_body(SPEC_BODY)
UNPINNED = Spec.from_body({**SPEC_BODY, "ssh": {**SPEC_BODY["ssh"], "hostKeys": []}})
EXPLICIT_LINUX = Spec.from_body({**SPEC_BODY, "osType": "Linux"})
EXPLICIT_WINDOWS = Spec.from_body({**SPEC_BODY, "osType": "Windows"})
NO_SSH = Spec.from_body({k: v for k, v in SPEC_BODY.items() if k != "ssh"})


def vm(power: model.PowerState = P.RUNNING, **changes: object) -> model.VmObservation:
    base = model.VmObservation(
        id=PINNED.vm.resource_id,
        os_type=model.OsType.LINUX,
        power_state=power,
        generalized=False,
        agent_ready=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def at(phase: Phase, **states: StepState | Step) -> Status:
    steps = {
        StepName(name): value if isinstance(value, Step) else Step(state=value, started_at=NOW)
        for name, value in states.items()
    }
    return Status(phase=phase, steps=steps)


NEW = Status()
VALIDATED = at(Phase.DEPROVISIONING, validate=S.SUCCEEDED)
DEPROVISION_RUNNING = at(Phase.DEPROVISIONING, validate=S.SUCCEEDED, deprovision=S.RUNNING)
DEPROVISION_UNKNOWN = at(Phase.DEPROVISIONING, validate=S.SUCCEEDED, deprovision=S.UNKNOWN)
DEPROVISIONED = at(Phase.SHUTTING_DOWN, validate=S.SUCCEEDED, deprovision=S.SUCCEEDED)
DEALLOCATING_WITH_TOKEN = at(
    Phase.SHUTTING_DOWN,
    validate=S.SUCCEEDED,
    deprovision=S.SUCCEEDED,
    shutdown=Step(state=S.RUNNING, started_at=NOW, continuation_token="tok"),
)
DEALLOCATING_NO_TOKEN = at(
    Phase.SHUTTING_DOWN, validate=S.SUCCEEDED, deprovision=S.SUCCEEDED, shutdown=S.RUNNING
)
DEALLOCATING_TOO_LONG = at(
    Phase.SHUTTING_DOWN,
    validate=S.SUCCEEDED,
    deprovision=S.SUCCEEDED,
    shutdown=Step(state=S.RUNNING, started_at=NOW - timedelta(minutes=21), continuation_token="tok"),
)
GENERALIZE_TOO_LONG = at(
    Phase.GENERALIZING,
    validate=S.SUCCEEDED,
    deprovision=S.SUCCEEDED,
    shutdown=S.SUCCEEDED,
    generalize=Step(state=S.RUNNING, started_at=NOW - timedelta(minutes=6)),
)
DEALLOCATED = at(Phase.GENERALIZING, validate=S.SUCCEEDED, deprovision=S.SUCCEEDED, shutdown=S.SUCCEEDED)
GENERALIZE_RUNNING = at(
    Phase.GENERALIZING,
    validate=S.SUCCEEDED,
    deprovision=S.SUCCEEDED,
    shutdown=S.SUCCEEDED,
    generalize=S.RUNNING,
)
ALL_DONE = at(
    Phase.GENERALIZING,
    validate=S.SUCCEEDED,
    deprovision=S.SUCCEEDED,
    shutdown=S.SUCCEEDED,
    generalize=S.SUCCEEDED,
)
SUCCEEDED = replace(ALL_DONE, phase=Phase.SUCCEEDED)
FAILED = at(Phase.FAILED, validate=S.FAILED)
MISSING = None

ROWS = [
    # terminal
    pytest.param(SUCCEEDED, vm(), PINNED, False, planner.Done, None, id="a Succeeded resource does nothing"),
    pytest.param(FAILED, vm(), PINNED, False, planner.Done, None, id="a Failed resource does nothing"),
    # validate
    pytest.param(
        NEW, vm(), PINNED, False, planner.Validate, None, id="a running VM in a new resource is validated"
    ),
    pytest.param(
        NEW,
        MISSING,
        PINNED,
        False,
        planner.Fail,
        Reason.VM_NOT_FOUND,
        id="a missing VM fails with VMNotFound",
    ),
    pytest.param(
        NEW,
        vm(generalized=True, power_state=P.DEALLOCATED),
        PINNED,
        False,
        planner.Adopt,
        None,
        id="an already generalized VM is adopted",
    ),
    pytest.param(
        NEW,
        vm(P.DEALLOCATED),
        PINNED,
        False,
        planner.Fail,
        Reason.VM_NOT_RUNNING,
        id="a deallocated VM that is not generalized fails asking to start it",
    ),
    pytest.param(
        NEW,
        vm(P.STOPPED),
        PINNED,
        False,
        planner.Fail,
        Reason.VM_NOT_RUNNING,
        id="a stopped VM that is not generalized fails asking to start it",
    ),
    pytest.param(
        NEW,
        vm(P.STARTING),
        PINNED,
        False,
        planner.Wait,
        Reason.VM_TRANSITIONING,
        id="a starting VM is waited for",
    ),
    pytest.param(
        NEW,
        vm(agent_ready=False),
        UNPINNED,
        False,
        planner.Wait,
        Reason.AGENT_NOT_READY,
        id="without pinned host keys a VM whose agent is not ready is waited for",
    ),
    pytest.param(
        NEW,
        vm(agent_ready=False),
        PINNED,
        False,
        planner.Validate,
        None,
        id="with pinned host keys the agent does not matter",
    ),
    pytest.param(
        NEW,
        vm(os_type=model.OsType.WINDOWS),
        EXPLICIT_LINUX,
        False,
        planner.Fail,
        Reason.OS_TYPE_MISMATCH,
        id="an explicit osType that contradicts Azure fails validation",
    ),
    pytest.param(
        NEW,
        vm(os_type=model.OsType.WINDOWS),
        NO_SSH,
        False,
        planner.Fail,
        Reason.INVALID_SPEC,
        id="a Windows VM found by Auto without spec.winrm fails validation before any call",
    ),
    pytest.param(
        NEW,
        vm(os_type=model.OsType.WINDOWS),
        EXPLICIT_WINDOWS,
        False,
        planner.Fail,
        Reason.INVALID_SPEC,
        id="an explicit Windows spec for a Windows VM without spec.winrm fails validation",
    ),
    pytest.param(
        NEW,
        vm(),
        EXPLICIT_WINDOWS,
        False,
        planner.Fail,
        Reason.OS_TYPE_MISMATCH,
        id="an explicit Windows spec for a Linux VM fails as a mismatch",
    ),
    pytest.param(
        NEW,
        vm(os_type=model.OsType.WINDOWS, generalized=True, power_state=P.DEALLOCATED),
        PINNED,
        False,
        planner.Adopt,
        None,
        id="a generalized Windows VM is adopted, since adopting only reads",
    ),
    pytest.param(
        NEW,
        vm(P.DEALLOCATED),
        PINNED,
        True,
        planner.Validate,
        None,
        id="a deallocated VM a person confirmed as deprovisioned is validated",
    ),
    pytest.param(
        NEW,
        vm(P.DEALLOCATED),
        NO_SSH,
        True,
        planner.Fail,
        Reason.INVALID_SPEC,
        id="a confirmed deallocated Linux VM without spec.ssh fails as an invalid spec",
    ),
    pytest.param(
        VALIDATED,
        vm(P.DEALLOCATED),
        PINNED,
        True,
        planner.ConfirmDeprovision,
        None,
        id="a deallocated VM a person confirmed as deprovisioned skips deprovision by confirmation",
    ),
    pytest.param(
        VALIDATED,
        vm(P.STOPPED),
        PINNED,
        False,
        planner.Fail,
        Reason.VM_NOT_RUNNING,
        id="a VM stopped before deprovision without confirmation fails asking to start it",
    ),
    pytest.param(
        VALIDATED,
        vm(),
        NO_SSH,
        False,
        planner.Fail,
        Reason.INVALID_SPEC,
        id="a spec.ssh removed after validation fails as an invalid spec",
    ),
    pytest.param(
        GENERALIZE_TOO_LONG,
        vm(P.DEALLOCATED),
        PINNED,
        False,
        planner.Fail,
        Reason.TIMEOUT,
        id="a generalize unanswered past spec.timeouts.generalize fails with Timeout",
    ),
    pytest.param(
        DEALLOCATED,
        vm(P.UNKNOWN),
        PINNED,
        False,
        planner.Wait,
        Reason.VM_TRANSITIONING,
        id="a VM whose power state Azure does not report yet waits before generalize",
    ),
    pytest.param(
        NEW,
        vm(os_type=None),
        PINNED,
        False,
        planner.Fail,
        Reason.INVALID_SPEC,
        id="a VM without OS type under Auto asks for an explicit osType",
    ),
    pytest.param(
        NEW,
        vm(),
        NO_SSH,
        False,
        planner.Fail,
        Reason.INVALID_SPEC,
        id="a Linux VM without spec.ssh fails as an invalid spec",
    ),
    # deprovision
    pytest.param(
        VALIDATED,
        vm(),
        PINNED,
        False,
        planner.Deprovision,
        None,
        id="a running VM in Validating gets deprovisioned",
    ),
    pytest.param(
        VALIDATED,
        vm(P.DEALLOCATED),
        PINNED,
        False,
        planner.Fail,
        Reason.VM_NOT_RUNNING,
        id="a VM deallocated before deprovision fails asking to start it",
    ),
    pytest.param(
        VALIDATED,
        vm(P.STOPPING),
        PINNED,
        False,
        planner.Wait,
        Reason.VM_TRANSITIONING,
        id="a stopping VM before deprovision is waited for",
    ),
    pytest.param(
        VALIDATED,
        vm(agent_ready=False),
        UNPINNED,
        False,
        planner.Wait,
        Reason.AGENT_NOT_READY,
        id="host keys from Run Command wait for the agent before deprovision",
    ),
    pytest.param(
        VALIDATED,
        vm(generalized=True, power_state=P.DEALLOCATED),
        PINNED,
        False,
        planner.Adopt,
        None,
        id="a VM generalized by someone else before deprovision is adopted",
    ),
    pytest.param(
        VALIDATED,
        MISSING,
        PINNED,
        False,
        planner.Fail,
        Reason.VM_NOT_FOUND,
        id="a VM deleted before deprovision fails with VMNotFound",
    ),
    pytest.param(
        DEPROVISION_RUNNING,
        vm(),
        PINNED,
        False,
        planner.VerifyDeprovision,
        None,
        id="an interrupted deprovision is verified, never rerun blindly",
    ),
    pytest.param(
        DEPROVISION_RUNNING,
        vm(agent_ready=False),
        PINNED,
        False,
        planner.MarkDeprovisionUnknown,
        None,
        id="an interrupted deprovision with the agent down is unknown",
    ),
    pytest.param(
        DEPROVISION_RUNNING,
        vm(P.DEALLOCATED),
        PINNED,
        False,
        planner.MarkDeprovisionUnknown,
        None,
        id="an interrupted deprovision of a VM since deallocated is unknown",
    ),
    pytest.param(
        DEPROVISION_RUNNING,
        vm(P.DEALLOCATED, generalized=True),
        PINNED,
        False,
        planner.Adopt,
        None,
        id="an interrupted deprovision of a VM since generalized is adopted",
    ),
    pytest.param(
        DEPROVISION_UNKNOWN,
        vm(),
        PINNED,
        False,
        planner.VerifyDeprovision,
        None,
        id="an unknown deprovision is re-verified while it waits for a person",
    ),
    pytest.param(
        DEPROVISION_UNKNOWN,
        vm(agent_ready=False),
        PINNED,
        False,
        planner.AwaitConfirmation,
        None,
        id="an unknown deprovision with the agent down only waits for a person",
    ),
    pytest.param(
        DEPROVISION_UNKNOWN,
        vm(),
        PINNED,
        True,
        planner.ConfirmDeprovision,
        None,
        id="an unknown deprovision confirmed by annotation is checkpointed",
    ),
    pytest.param(
        DEPROVISION_RUNNING,
        vm(),
        PINNED,
        True,
        planner.VerifyDeprovision,
        None,
        id="the annotation does not skip verification of a running deprovision",
    ),
    # shutdown
    pytest.param(
        DEPROVISIONED,
        vm(),
        PINNED,
        False,
        planner.BeginDeallocate,
        None,
        id="a deprovisioned running VM gets deallocated",
    ),
    pytest.param(
        DEPROVISIONED,
        vm(P.STOPPED),
        PINNED,
        False,
        planner.BeginDeallocate,
        None,
        id="a deprovisioned stopped VM gets deallocated",
    ),
    pytest.param(
        DEPROVISIONED,
        vm(P.DEALLOCATED),
        PINNED,
        False,
        planner.Checkpoint,
        Reason.VM_DEALLOCATED,
        id="a deprovisioned VM already deallocated is checkpointed",
    ),
    pytest.param(
        DEALLOCATING_WITH_TOKEN,
        vm(P.DEALLOCATING),
        PINNED,
        False,
        planner.ResumeDeallocate,
        None,
        id="a deallocate with a token is resumed, not begun again",
    ),
    pytest.param(
        DEALLOCATING_WITH_TOKEN,
        vm(P.DEALLOCATED),
        PINNED,
        False,
        planner.Checkpoint,
        Reason.VM_DEALLOCATED,
        id="a deallocate that finished while the operator was away is checkpointed",
    ),
    pytest.param(
        DEALLOCATING_NO_TOKEN,
        vm(P.DEALLOCATING),
        PINNED,
        False,
        planner.Wait,
        Reason.VM_TRANSITIONING,
        id="a deallocate begun without a recorded token is waited for while deallocating",
    ),
    pytest.param(
        DEALLOCATING_NO_TOKEN,
        vm(),
        PINNED,
        False,
        planner.BeginDeallocate,
        None,
        id="a deallocate that never reached Azure is begun again",
    ),
    pytest.param(
        DEALLOCATING_TOO_LONG,
        vm(P.DEALLOCATING),
        PINNED,
        False,
        planner.Fail,
        Reason.TIMEOUT,
        id="a deallocate past spec.timeouts.shutdown fails with Timeout",
    ),
    pytest.param(
        DEPROVISIONED,
        vm(P.DEALLOCATED, generalized=True),
        PINNED,
        False,
        planner.Adopt,
        None,
        id="a VM generalized by someone else during shutdown is adopted",
    ),
    # generalize
    pytest.param(
        DEALLOCATED,
        vm(P.DEALLOCATED),
        PINNED,
        False,
        planner.Generalize,
        None,
        id="a deallocated VM gets generalized",
    ),
    pytest.param(
        DEALLOCATED,
        vm(P.STOPPED),
        PINNED,
        False,
        planner.Generalize,
        None,
        id="a stopped VM gets generalized",
    ),
    pytest.param(
        DEALLOCATED,
        vm(),
        PINNED,
        False,
        planner.Fail,
        Reason.VM_NOT_DEALLOCATED,
        id="a VM started again after deallocate is never generalized",
    ),
    pytest.param(
        DEALLOCATED,
        vm(P.DEALLOCATING),
        PINNED,
        False,
        planner.Wait,
        Reason.VM_TRANSITIONING,
        id="a VM still deallocating is waited for before generalize",
    ),
    pytest.param(
        GENERALIZE_RUNNING,
        vm(P.DEALLOCATED, generalized=True),
        PINNED,
        False,
        planner.Checkpoint,
        Reason.VM_GENERALIZED,
        id="a generalize that finished before a restart is checkpointed",
    ),
    pytest.param(
        GENERALIZE_RUNNING,
        vm(P.DEALLOCATED),
        PINNED,
        False,
        planner.Generalize,
        None,
        id="a generalize that did not finish before a restart is sent again",
    ),
    pytest.param(
        DEALLOCATED,
        MISSING,
        PINNED,
        False,
        planner.Fail,
        Reason.VM_NOT_FOUND,
        id="a VM deleted before generalize fails with VMNotFound",
    ),
    # all done
    pytest.param(
        ALL_DONE,
        vm(P.DEALLOCATED, generalized=True),
        PINNED,
        False,
        planner.Succeed,
        None,
        id="all steps done succeeds",
    ),
]


@pytest.mark.parametrize(("status", "observation", "spec", "confirmed", "expected", "reason"), ROWS)
def test_the_planner_picks_one_action(
    status: Status,
    observation: model.VmObservation | None,
    spec: Spec,
    confirmed: bool,
    expected: type,
    reason: Reason | None,
) -> None:
    action = planner.plan(spec, status, observation, now=NOW, confirmed=confirmed)

    assert isinstance(action, expected), action
    if reason is not None:
        assert getattr(action, "reason", None) == reason, action
    if isinstance(action, planner.Checkpoint):  # a checkpoint names the step whose effect Azure shows
        assert action.step is CHECKPOINTED_STEP[action.reason], action


CHECKPOINTED_STEP = {Reason.VM_DEALLOCATED: StepName.SHUTDOWN, Reason.VM_GENERALIZED: StepName.GENERALIZE}


def test_a_vm_without_os_type_under_auto_fails_for_the_os_type_not_for_missing_ssh() -> None:
    action = planner.plan(PINNED, NEW, vm(os_type=None), now=NOW, confirmed=False)

    assert isinstance(action, planner.Fail) and action.reason is Reason.INVALID_SPEC
    assert "no OS type" in action.message and "spec.osType" in action.message


def test_a_claimed_vm_waits_in_pending_naming_the_holder_and_nothing_else_is_decided() -> None:
    action = planner.plan(PINNED, NEW, None, now=NOW, confirmed=False, claimed_by="images/first")

    assert isinstance(action, planner.Wait)
    assert action.reason is Reason.VM_CLAIMED_BY_ANOTHER
    assert action.phase is Phase.PENDING
    assert "images/first" in action.message
    assert action.delay > 0


def test_a_resume_carries_the_recorded_continuation_token() -> None:
    action = planner.plan(PINNED, DEALLOCATING_WITH_TOKEN, vm(P.DEALLOCATING), now=NOW, confirmed=False)

    assert action == planner.ResumeDeallocate(model.ContinuationToken("tok"))


def test_failure_messages_tell_a_person_what_to_do() -> None:
    stopped = planner.plan(PINNED, NEW, vm(P.DEALLOCATED), now=NOW, confirmed=False)
    mismatch = planner.plan(EXPLICIT_LINUX, NEW, vm(os_type=model.OsType.WINDOWS), now=NOW, confirmed=False)
    missing = planner.plan(PINNED, NEW, None, now=NOW, confirmed=False)

    assert isinstance(stopped, planner.Fail) and "start the vm" in stopped.message.lower()
    assert isinstance(mismatch, planner.Fail) and "Windows" in mismatch.message
    assert isinstance(missing, planner.Fail) and "web-01" in missing.message and "rg" in missing.message


def test_waits_never_spin() -> None:
    waits = [
        planner.plan(PINNED, NEW, vm(P.STARTING), now=NOW, confirmed=False),
        planner.plan(UNPINNED, NEW, vm(agent_ready=False), now=NOW, confirmed=False),
        planner.plan(PINNED, DEALLOCATING_NO_TOKEN, vm(P.DEALLOCATING), now=NOW, confirmed=False),
    ]

    assert all(isinstance(w, planner.Wait) and w.delay >= 1 for w in waits), waits
