"""The planner's actions in full: deadlines at their boundary, the exact waits, and the facts its messages
must carry (the VM, the power state, the field or annotation to set, the command to run).

tests/unit/test_planner.py says which action each state leads to; this file pins what is inside it, so
that a wrong phase, delay, tense or timeout is a failure and not only a wrong class.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.test_planner import (
    DEALLOCATED,
    DEPROVISION_RUNNING,
    DEPROVISIONED,
    EXPLICIT_LINUX,
    NEW,
    NO_SSH,
    NOW,
    PINNED,
    SPEC_BODY,
    UNPINNED,
    VALIDATED,
    P,
    S,
    at,
    vm,
)
from vmgen.domain import model, planner
from vmgen.domain.actions import transitioning
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import Phase, Status, Step, StepName
from vmgen.domain.windows_actions import StartSysprep

CONFIRM = 'vmgen.io/confirm-deprovisioned: "true"'


def _plan(
    status: Status, observation: model.VmObservation, spec: Spec = PINNED, *, confirmed: bool = False
) -> planner.Action:
    return planner.plan(spec, status, observation, now=NOW, confirmed=confirmed)


def _shutting_down(started: timedelta) -> Status:
    step = Step(state=S.RUNNING, started_at=NOW - started, continuation_token="tok")
    return at(Phase.SHUTTING_DOWN, validate=S.SUCCEEDED, deprovision=S.SUCCEEDED, shutdown=step)


def _generalizing(started: timedelta) -> Status:
    step = Step(state=S.RUNNING, started_at=NOW - started)
    return at(
        Phase.GENERALIZING,
        validate=S.SUCCEEDED,
        deprovision=S.SUCCEEDED,
        shutdown=S.SUCCEEDED,
        generalize=step,
    )


# -- deadlines: a step may take exactly its timeout; one microsecond more fails ----------------------


@pytest.mark.parametrize(
    ("started", "expected"),
    [
        pytest.param(
            timedelta(minutes=20), planner.ResumeDeallocate, id="exactly at 20m the deallocate is resumed"
        ),
        pytest.param(
            timedelta(minutes=20, microseconds=1), planner.Fail, id="one microsecond past 20m it fails"
        ),
    ],
)
def test_a_deallocate_may_take_exactly_spec_timeouts_shutdown(started: timedelta, expected: type) -> None:
    assert isinstance(_plan(_shutting_down(started), vm(P.DEALLOCATING)), expected)


@pytest.mark.parametrize(
    ("started", "expected"),
    [
        pytest.param(timedelta(minutes=5), planner.Generalize, id="exactly at 5m generalize is sent again"),
        pytest.param(
            timedelta(minutes=5, microseconds=1), planner.Fail, id="one microsecond past 5m it fails"
        ),
    ],
)
def test_a_generalize_may_take_exactly_spec_timeouts_generalize(started: timedelta, expected: type) -> None:
    assert isinstance(_plan(_generalizing(started), vm(P.DEALLOCATED)), expected)


def test_a_shutdown_timeout_names_the_field_the_limit_the_state_and_the_confirm_annotation() -> None:
    action = _plan(_shutting_down(timedelta(minutes=21)), vm(P.DEALLOCATING))

    assert isinstance(action, planner.Fail) and action.reason is Reason.TIMEOUT
    assert "VM web-01 was not deallocated within spec.timeouts.shutdown (20m); it is deallocating." in (
        action.message
    )
    assert "deallocate it there" in action.message
    assert f"recreate this resource with the annotation {CONFIRM} and vmgen generalizes it" in action.message


def test_a_generalize_timeout_names_the_field_the_limit_the_state_and_the_az_command() -> None:
    action = _plan(_generalizing(timedelta(minutes=6)), vm(P.STOPPED))

    assert isinstance(action, planner.Fail) and action.reason is Reason.TIMEOUT
    assert "generalize VM web-01 within spec.timeouts.generalize (5m); it is stopped and not generalized" in (
        action.message
    )
    assert "run `az vm generalize` there" in action.message
    assert "then recreate this resource, which adopts" in action.message


# -- whole actions -------------------------------------------------------------------------------------


EXACT = [
    pytest.param(
        DEPROVISIONED,
        vm(P.DEALLOCATED),
        planner.Checkpoint(StepName.SHUTDOWN, Reason.VM_DEALLOCATED, "Azure reports the VM deallocated."),
        id="a VM found deallocated checkpoints shutdown saying so",
    ),
    pytest.param(
        at(
            Phase.GENERALIZING,
            validate=S.SUCCEEDED,
            deprovision=S.SUCCEEDED,
            shutdown=S.SUCCEEDED,
            generalize=S.RUNNING,
        ),
        vm(P.DEALLOCATED, generalized=True),
        planner.Checkpoint(StepName.GENERALIZE, Reason.VM_GENERALIZED, "Azure reports the VM generalized."),
        id="a VM found generalized checkpoints generalize saying so",
    ),
    pytest.param(
        at(Phase.SHUTTING_DOWN, validate=S.SUCCEEDED, deprovision=S.SUCCEEDED, shutdown=S.RUNNING),
        vm(P.DEALLOCATING),
        transitioning("web-01", P.DEALLOCATING, Phase.SHUTTING_DOWN),
        id="a deallocating VM without a token waits in ShuttingDown",
    ),
    pytest.param(
        VALIDATED,
        vm(P.STOPPING),
        transitioning("web-01", P.STOPPING, Phase.DEPROVISIONING),
        id="a stopping VM before deprovision waits in Deprovisioning",
    ),
    pytest.param(
        NEW,
        vm(P.STARTING),
        transitioning("web-01", P.STARTING, Phase.VALIDATING),
        id="a starting VM before validation waits in Validating",
    ),
    pytest.param(
        DEALLOCATED,
        vm(P.STOPPING),
        planner.Wait(
            Reason.VM_TRANSITIONING,
            "The VM is stopping; generalize waits until it is deallocated.",
            planner.TRANSITION_RECHECK_SECONDS,
            Phase.GENERALIZING,
        ),
        id="a stopping VM before generalize waits in Generalizing",
    ),
    pytest.param(
        DEPROVISION_RUNNING,
        vm(P.DEALLOCATED),
        planner.MarkDeprovisionUnknown(
            "Deprovision was interrupted and VM web-01 is now deallocated, so Run Command cannot inspect it"
        ),
        id="an interrupted deprovision of a deallocated VM is unknown, naming the VM and its state",
    ),
    pytest.param(
        DEPROVISION_RUNNING,
        vm(agent_ready=False),
        planner.MarkDeprovisionUnknown(
            "Deprovision was interrupted and the VM agent is not ready (waagent stops it while"
            " deprovisioning), so Run Command cannot inspect the guest"
        ),
        id="an interrupted deprovision with the agent down is unknown, saying why Run Command cannot look",
    ),
    pytest.param(
        VALIDATED,
        vm(),
        planner.Deprovision(inspect=True),
        id="a deprovision with the agent ready looks first",
    ),
    pytest.param(
        VALIDATED,
        vm(agent_ready=False),
        planner.Deprovision(inspect=False),
        id="a deprovision with pinned keys and the agent down does not look",
    ),
]


@pytest.mark.parametrize(("status", "observation", "expected"), EXACT)
def test_the_planner_builds_the_whole_action(
    status: Status, observation: model.VmObservation, expected: planner.Action
) -> None:
    assert _plan(status, observation) == expected


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        pytest.param(NEW, Phase.VALIDATING, id="before validation it waits in Validating"),
        pytest.param(VALIDATED, Phase.DEPROVISIONING, id="before deprovision it waits in Deprovisioning"),
    ],
)
def test_an_agent_that_is_not_ready_is_waited_for_naming_the_vm_and_spec_ssh_host_keys(
    status: Status, phase: Phase
) -> None:
    action = _plan(status, vm(agent_ready=False), UNPINNED)

    assert isinstance(action, planner.Wait)
    assert (action.reason, action.delay, action.phase) == (
        Reason.AGENT_NOT_READY,
        planner.AGENT_RECHECK_SECONDS,
        phase,
    )
    assert action.message.startswith("The VM agent of web-01 is not ready")
    assert "read through Run Command" in action.message
    assert action.message.endswith("or pin spec.ssh.hostKeys.")


def test_check_vm_judges_without_the_confirmation_so_a_stopped_vm_is_a_finding() -> None:
    action = planner.check_vm(PINNED, vm(P.DEALLOCATED))

    assert isinstance(action, planner.Fail) and action.reason is Reason.VM_NOT_RUNNING


def test_an_os_type_mismatch_says_the_vm_was_not_touched() -> None:
    action = _plan(NEW, vm(os_type=model.OsType.WINDOWS), EXPLICIT_LINUX)

    assert isinstance(action, planner.Fail)
    assert action.message.endswith(
        "Set spec.osType to Windows or Auto if this is the right VM. The VM was not touched."
    )


@pytest.mark.parametrize(
    ("status", "confirmed", "expected"),
    [
        pytest.param(
            VALIDATED, True, planner.ConfirmDeprovision(), id="confirmed: deprovision is checkpointed"
        ),
        pytest.param(
            VALIDATED,
            False,
            planner.Fail(
                Reason.INVALID_SPEC,
                "VM web-01 runs Linux: set spec.ssh (host, username, privateKeySecretRef) so that it can be"
                " deprovisioned over SSH.",
            ),
            id="unconfirmed: it fails naming spec.ssh and its fields",
        ),
    ],
)
def test_a_spec_ssh_removed_after_validation(
    status: Status, confirmed: bool, expected: planner.Action
) -> None:
    assert _plan(status, vm(), NO_SSH, confirmed=confirmed) == expected


@pytest.mark.parametrize(
    ("status", "tense"),
    [
        pytest.param(NEW, "is", id="at validation the VM is stopped"),
        pytest.param(VALIDATED, "was", id="before deprovision the VM was stopped"),
    ],
)
def test_a_stopped_vm_fails_saying_its_state_how_to_start_over_and_the_confirm_annotation(
    status: Status, tense: str
) -> None:
    action = _plan(status, vm(P.STOPPED))

    assert isinstance(action, planner.Fail) and action.reason is Reason.VM_NOT_RUNNING
    assert action.message.startswith(f"VM web-01 {tense} stopped but not generalized")
    assert "Start the VM, then delete and recreate this resource" in action.message
    assert f"recreate this resource with the annotation {CONFIRM} and vmgen deallocates" in action.message


def test_a_vm_started_after_deallocate_fails_saying_to_deallocate_it_and_confirm() -> None:
    action = _plan(DEALLOCATED, vm(P.RUNNING))

    assert isinstance(action, planner.Fail) and action.reason is Reason.VM_NOT_DEALLOCATED
    assert action.message.startswith("The VM is running although vmgen deallocated it")
    assert "vmgen never generalizes a VM that is not deallocated. Deallocate the VM" in action.message
    assert (
        f"annotation {CONFIRM} so that vmgen generalizes it without deprovisioning again." in action.message
    )


WINDOWS_AUTO = Spec.from_body(
    {
        "vm": SPEC_BODY["vm"],
        "osType": "Auto",
        "winrm": {
            "host": "10.0.0.5",
            "credentialsSecretRef": {"name": "admin"},
            "caSecretRef": {"name": "ca"},
        },
    }
)


def test_under_auto_a_vm_azure_reports_as_windows_is_deprovisioned_by_sysprep() -> None:
    action = _plan(VALIDATED, vm(os_type=model.OsType.WINDOWS), WINDOWS_AUTO)

    assert action == StartSysprep()


def test_without_the_approval_annotation_an_approval_step_waits_for_it() -> None:
    order = (StepName.VALIDATE, StepName.APPROVAL, StepName.DEPROVISION)
    status = at(Phase.AWAITING_APPROVAL, validate=S.SUCCEEDED).planned(order)

    assert planner.plan(PINNED, status, vm(), now=NOW, confirmed=False) == planner.AwaitApproval()
    assert planner.plan(PINNED, status, vm(), now=NOW, confirmed=False, approved=True) == planner.Approve()


def test_a_claimed_vm_waits_in_full() -> None:
    action = planner.plan(PINNED, NEW, None, now=NOW, confirmed=False, claimed_by="images/first")

    assert action == planner.Wait(
        Reason.VM_CLAIMED_BY_ANOTHER,
        "VM web-01 is claimed by VMGeneralization images/first; this resource waits for it to finish and"
        " does not touch the VM until then.",
        planner.CLAIM_RECHECK_SECONDS,
        Phase.PENDING,
    )


def test_a_missing_vm_names_where_it_was_looked_for_and_both_ways_out() -> None:
    action = _plan(NEW, None)  # type: ignore[arg-type]

    assert action == planner.Fail(
        Reason.VM_NOT_FOUND,
        "Azure has no VM web-01 in resource group rg of subscription 00000000-0000-0000-0000-000000000001."
        " Check spec.vm (it cannot be edited: create a new VMGeneralization), or delete this resource if the"
        " VM is gone.",
    )


def test_a_linux_vm_without_spec_ssh_fails_validation_naming_spec_ssh() -> None:
    action = _plan(NEW, vm(), NO_SSH)

    assert action == planner.Fail(
        Reason.INVALID_SPEC,
        "VM web-01 runs Linux: set spec.ssh (host, username, privateKeySecretRef) so that it can be"
        " deprovisioned over SSH.",
    )
