"""Each Status transition in full: the step row, every condition (reason, message, generation, when it
moved), the phase and completion time it leaves, as the API server will store them (`to_body()`).

tests/unit/test_status_transitions.py checks what each transition is for; this file pins every field it
writes, so that a reason, message or generation copied to the wrong place, or a time that moves when it
should not, fails a test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vmgen.domain.reasons import Reason
from vmgen.domain.status import Phase, Stamp, Status, Step, StepName, StepState

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(minute: int, generation: int = 3) -> Stamp:
    return Stamp(now=T0 + timedelta(minutes=minute), generation=generation)


def t(minute: int) -> str:
    return f"2026-01-01T12:{minute:02d}:00Z"


def cond(
    kind: str, status: str, reason: str, message: str, minute: int, generation: int = 3
) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": t(minute),
    }


# Built inside each test (not at import): mutmut maps a function to the tests that call it while they run.
def validated() -> Status:
    return (
        Status()
        .begin(StepName.VALIDATE, message="v", at=at(0, 1))
        .finish(StepName.VALIDATE, reason=None, message="ok.", at=at(1, 1))
    )


def begun() -> Status:
    return validated().begin(StepName.DEPROVISION, message="Running waagent.", at=at(2))


def unknown() -> Status:
    return begun().unknown(StepName.DEPROVISION, message="lost", at=at(3))


VALIDATE_ROW = {"state": "Succeeded", "attempts": 1, "startedAt": t(0), "finishedAt": t(1), "message": "ok."}
UNKNOWN_CONDITIONS = [
    cond("Deprovisioned", "Unknown", "DeprovisionOutcomeUnknown", "lost", 3),
    cond("DeprovisionOutcomeUnknown", "True", "DeprovisionOutcomeUnknown", "lost", 3),
]


def test_a_validation_with_no_reason_sets_only_ready_naming_the_next_phase() -> None:
    assert validated().to_body() == {
        "phase": "Deprovisioning",
        "steps": {"validate": VALIDATE_ROW},
        "conditions": [cond("Ready", "False", "Deprovisioning", "ok. Next: Deprovisioning.", 0, 1)],
    }


def test_begin_writes_intent_to_the_row_the_step_condition_and_ready() -> None:
    assert begun().to_body() == {
        "phase": "Deprovisioning",
        "steps": {
            "validate": VALIDATE_ROW,
            "deprovision": {
                "state": "Running",
                "attempts": 1,
                "startedAt": t(2),
                "message": "Running waagent.",
            },
        },
        "conditions": [
            cond("Ready", "False", "Deprovisioning", "Running waagent.", 0),
            cond("Deprovisioned", "False", "Deprovisioning", "Running waagent.", 2),
        ],
    }


def test_begin_again_clears_the_finish_time_and_the_unreachable_row() -> None:
    row = Step(
        state=StepState.PENDING,
        started_at=T0,
        finished_at=T0,
        attempts=2,
        continuation_token="tok",
        unreachable_since=T0,
    )
    status = Status(steps={StepName.SHUTDOWN: row}).begin(StepName.SHUTDOWN, message="again", at=at(5))

    assert status.step(StepName.SHUTDOWN) == Step(
        state=StepState.RUNNING, started_at=T0, attempts=3, message="again"
    )
    assert status.phase is Phase.SHUTTING_DOWN


def test_unknown_raises_the_outcome_condition_and_the_steps_condition_with_the_same_reason() -> None:
    body = unknown().to_body()

    assert body["phase"] == "Deprovisioning"
    assert body["steps"]["deprovision"] == {
        "state": "Unknown",
        "attempts": 1,
        "startedAt": t(2),
        "message": "lost",
    }
    assert body["conditions"] == [
        cond("Ready", "False", "DeprovisionOutcomeUnknown", "lost", 0),
        *UNKNOWN_CONDITIONS,
    ]


def test_unknown_resets_the_retry_count() -> None:
    status = (
        begun()
        .retrying("AzureThrottled", "429", at=at(3))
        .unknown(StepName.DEPROVISION, message="x", at=at(4))
    )

    assert status.step(StepName.DEPROVISION).retries == 0


def test_a_finish_with_a_reason_sets_the_steps_condition_true_and_resolves_the_outcome() -> None:
    body = unknown().finish(
        StepName.DEPROVISION, reason=Reason.DEPROVISION_VERIFIED, message="done.", at=at(4)
    )
    assert body.to_body() == {
        "phase": "ShuttingDown",
        "steps": {
            "validate": VALIDATE_ROW,
            "deprovision": {
                "state": "Succeeded",
                "attempts": 1,
                "startedAt": t(2),
                "finishedAt": t(4),
                "message": "done.",
            },
        },
        "conditions": [
            cond("Ready", "False", "ShuttingDown", "done. Next: ShuttingDown.", 0),
            cond("Deprovisioned", "True", "DeprovisionVerified", "done.", 4),
            cond("DeprovisionOutcomeUnknown", "False", "DeprovisionVerified", "done.", 4),
        ],
    }


def test_a_finish_of_another_step_leaves_the_outcome_condition_alone() -> None:
    status = (
        unknown()
        .with_step(StepName.DEPROVISION, state=StepState.SUCCEEDED)
        .finish(StepName.SHUTDOWN, reason=Reason.VM_DEALLOCATED, message="off.", at=at(5))
    )

    assert status.to_body()["conditions"][2] == UNKNOWN_CONDITIONS[1]


def test_a_finish_without_a_start_records_now_as_both_times_and_of_the_last_step_names_no_next() -> None:
    status = Status(
        phase=Phase.GENERALIZING,
        steps={name: Step(state=StepState.SUCCEEDED) for name in (StepName.VALIDATE, StepName.DEPROVISION)}
        | {StepName.SHUTDOWN: Step(state=StepState.SUCCEEDED)},
    ).finish(StepName.GENERALIZE, reason=Reason.VM_GENERALIZED, message="gen.", at=at(6))

    body = status.to_body()
    assert body["steps"]["generalize"] == {
        "state": "Succeeded",
        "attempts": 0,
        "startedAt": t(6),
        "finishedAt": t(6),
        "message": "gen.",
    }
    assert body["phase"] == "Generalizing"
    assert body["conditions"] == [
        cond("Generalized", "True", "VMGeneralized", "gen.", 6),
        cond("Ready", "False", "Generalizing", "gen.", 6),
    ]


def test_in_progress_marks_running_and_resolves_the_outcome_with_its_reason() -> None:
    status = unknown().in_progress(
        StepName.DEPROVISION, reason=Reason.DEPROVISION_IN_PROGRESS, message="seen", at=at(5)
    )

    body = status.to_body()
    assert body["phase"] == "Deprovisioning"
    assert body["steps"]["deprovision"] == {
        "state": "Running",
        "attempts": 1,
        "startedAt": t(2),
        "message": "seen",
    }
    assert body["conditions"] == [
        cond("Ready", "False", "DeprovisionInProgress", "seen", 0),
        UNKNOWN_CONDITIONS[0],
        cond("DeprovisionOutcomeUnknown", "False", "DeprovisionInProgress", "seen", 5),
    ]


def test_in_progress_of_a_step_never_begun_starts_it_now_and_resets_retries() -> None:
    status = (
        validated()
        .retrying("GuestUnreachable", "down", at=at(2))
        .in_progress(StepName.DEPROVISION, reason=Reason.DEPROVISION_IN_PROGRESS, message="seen", at=at(3))
    )

    assert status.step(StepName.DEPROVISION) == Step(
        state=StepState.RUNNING, started_at=T0 + timedelta(minutes=3), message="seen"
    )
    assert status.phase is Phase.DEPROVISIONING


def test_not_started_makes_the_row_pending_counted_and_resolves_the_outcome() -> None:
    status = (
        unknown()
        .retrying("x", "y", at=at(4))
        .not_started(StepName.DEPROVISION, reason=Reason.DEPROVISION_NOT_STARTED, message="never", at=at(6))
    )

    body = status.to_body()
    assert body["steps"]["deprovision"] == {
        "state": "Pending",
        "attempts": 1,
        "startedAt": t(2),
        "message": "never",
        "unstartedRuns": 1,
    }
    assert body["conditions"][1:] == [
        UNKNOWN_CONDITIONS[0],
        cond("DeprovisionOutcomeUnknown", "False", "DeprovisionNotStarted", "never", 6),
    ]
    assert status.phase is Phase.DEPROVISIONING  # kept, not moved


def test_unreachable_counts_each_try_keeps_the_first_time_and_says_why_in_the_conditions() -> None:
    status = validated().unreachable(
        StepName.DEPROVISION, reason="GuestUnreachable", message="down", at=at(7)
    )
    status = status.unreachable(StepName.DEPROVISION, reason="GuestUnreachable", message="down2", at=at(8))

    assert status.to_body() == {
        "phase": "Deprovisioning",
        "steps": {
            "validate": VALIDATE_ROW,
            "deprovision": {
                "state": "Pending",
                "attempts": 0,
                "message": "down2",
                "retries": 2,
                "unreachableSince": t(7),
            },
        },
        "conditions": [
            cond("Ready", "False", "GuestUnreachable", "down2", 0),
            cond("Deprovisioned", "False", "GuestUnreachable", "down2", 7),
        ],
    }


def test_unreachable_validation_has_no_step_condition_and_moves_to_validating() -> None:
    status = Status().unreachable(StepName.VALIDATE, reason="GuestUnreachable", message="down", at=at(1))

    assert status.to_body()["conditions"] == [cond("Ready", "False", "GuestUnreachable", "down", 1)]
    assert status.phase is Phase.VALIDATING


def test_fail_ends_the_step_and_the_resource_keeping_the_start_and_the_attempts() -> None:
    status = begun().begin(StepName.DEPROVISION, message="again", at=at(3)).fail("Timeout", "slow", at=at(9))

    assert status.to_body() == {
        "phase": "Failed",
        "completedAt": t(9),
        "steps": {
            "validate": VALIDATE_ROW,
            "deprovision": {
                "state": "Failed",
                "attempts": 2,
                "startedAt": t(2),
                "finishedAt": t(9),
                "message": "slow",
            },
        },
        "conditions": [
            cond("Ready", "False", "Timeout", "slow", 0),
            cond("Deprovisioned", "False", "Timeout", "slow", 2),
        ],
    }


def test_fail_before_anything_started_fails_validation_once_at_that_time() -> None:
    status = Status().fail("InvalidSpec", "bad", at=at(1))

    assert status.to_body() == {
        "phase": "Failed",
        "completedAt": t(1),
        "steps": {
            "validate": {
                "state": "Failed",
                "attempts": 1,
                "startedAt": t(1),
                "finishedAt": t(1),
                "message": "bad",
            }
        },
        "conditions": [cond("Ready", "False", "InvalidSpec", "bad", 1)],
    }


ORDER_WITH_IMAGE = (
    StepName.VALIDATE,
    StepName.DEPROVISION,
    StepName.SHUTDOWN,
    StepName.GENERALIZE,
    StepName.CAPTURE,
)


def _adopted_row(state: str) -> dict[str, Any]:
    return {"state": state, "attempts": 0, "startedAt": t(4), "finishedAt": t(4), "message": "gen already."}


def test_adopt_skips_the_steps_up_to_generalize_and_succeeds() -> None:
    status = Status().with_token(StepName.SHUTDOWN, "tok").adopt("gen already.", at=at(4))

    assert status.to_body() == {
        "phase": "Succeeded",
        "completedAt": t(4),
        "steps": {
            "shutdown": _adopted_row("Skipped"),
            "validate": _adopted_row("Succeeded"),
            "deprovision": _adopted_row("Skipped"),
            "generalize": _adopted_row("Skipped"),
        },
        "conditions": [
            cond("Deprovisioned", "True", "AdoptedGeneralizedVM", "gen already.", 4),
            cond("Deallocated", "True", "AdoptedGeneralizedVM", "gen already.", 4),
            cond("Generalized", "True", "AdoptedGeneralizedVM", "gen already.", 4),
            cond("Ready", "True", "AdoptedGeneralizedVM", "gen already.", 4),
        ],
    }


def test_adopt_keeps_the_steps_done_already_and_goes_on_to_capture() -> None:
    status = validated().planned(ORDER_WITH_IMAGE).adopt("gen already.", at=at(4))

    body = status.to_body()
    assert body["phase"] == "Capturing"
    assert "completedAt" not in body
    assert body["steps"]["validate"] == VALIDATE_ROW
    assert "capture" not in body["steps"]
    assert body["conditions"][0] == cond("Ready", "False", "Capturing", "gen already. Next: Capturing.", 0)


@pytest.mark.parametrize(
    ("findings", "state", "value", "reason"),
    [
        pytest.param((), "Succeeded", "True", "PreflightPassed", id="no finding: the preflight passed"),
        pytest.param(
            (("VMNotRunning", "stopped"), ("InvalidSpec", "no ssh")),
            "Failed",
            "False",
            "PreflightFailed",
            id="findings: the preflight failed and lists each",
        ),
    ],
)
def test_preflight_complete_records_the_findings_and_ends_the_resource(
    findings: tuple[tuple[str, str], ...], state: str, value: str, reason: str
) -> None:
    status = (
        Status()
        .begin(StepName.PREFLIGHT, message="looking", at=at(1))
        .preflight_complete(findings, "summary", at=at(2))
    )

    body = status.to_body()
    assert body["phase"] == "PreflightComplete"
    assert body["completedAt"] == t(2)
    assert body["steps"]["preflight"] == {
        "state": state,
        "attempts": 1,
        "startedAt": t(1),
        "finishedAt": t(2),
        "message": "summary",
    }
    assert status.outputs.findings == tuple({"reason": r, "message": m} for r, m in findings)
    moved = 2 if value == "True" else 1  # Ready was False since begin; it moves only when it flips
    assert body["conditions"] == [
        cond("Ready", value, reason, "summary", moved),
        cond("PreflightPassed", value, reason, "summary", 2),
    ]


def test_preflight_complete_without_a_begin_counts_one_attempt_started_now() -> None:
    status = Status().preflight_complete((), "summary", at=at(2))

    assert status.step(StepName.PREFLIGHT) == Step(
        state=StepState.SUCCEEDED,
        started_at=T0 + timedelta(minutes=2),
        finished_at=T0 + timedelta(minutes=2),
        attempts=1,
        message="summary",
    )


def test_not_run_keeps_the_row_but_its_state_and_message() -> None:
    status = begun().not_run(StepName.DEPROVISION, message="connection refused")

    assert status.step(StepName.DEPROVISION) == Step(
        state=StepState.PENDING,
        started_at=T0 + timedelta(minutes=2),
        attempts=1,
        message="connection refused",
    )


def test_in_progress_moves_the_phase_to_the_steps_own() -> None:
    status = Status(phase=Phase.SHUTTING_DOWN).in_progress(
        StepName.DEPROVISION, reason=Reason.DEPROVISION_IN_PROGRESS, message="seen", at=at(1)
    )

    assert status.phase is Phase.DEPROVISIONING


def test_unknown_moves_the_phase_to_the_steps_own() -> None:
    status = Status(phase=Phase.SHUTTING_DOWN).unknown(StepName.DEPROVISION, message="lost", at=at(1))

    assert status.phase is Phase.DEPROVISIONING


def test_an_unreachable_running_step_is_pending_again() -> None:
    status = begun().unreachable(StepName.DEPROVISION, reason="GuestUnreachable", message="down", at=at(3))

    assert status.step(StepName.DEPROVISION).state is StepState.PENDING


def test_waiting_writes_no_step_row_when_there_is_no_retry_to_reset() -> None:
    status = Status().waiting(Phase.PENDING, reason=Reason.VM_CLAIMED_BY_ANOTHER, message="claimed", at=at(1))

    assert status.to_body() == {
        "phase": "Pending",
        "conditions": [cond("Ready", "False", "VMClaimedByAnother", "claimed", 1)],
    }


def test_a_retry_writes_its_message_to_ready_and_the_row() -> None:
    status = validated().retrying("AzureThrottled", "429 from ARM", at=at(2))

    assert status.step(StepName.DEPROVISION) == Step(message="429 from ARM", retries=1)
    assert status.to_body()["conditions"] == [cond("Ready", "False", "AzureThrottled", "429 from ARM", 0)]


def test_a_retry_leaves_pending_only_for_validation() -> None:
    past_validation = Status(steps={StepName.VALIDATE: Step(state=StepState.SUCCEEDED)})
    elsewhere = Status(phase=Phase.SHUTTING_DOWN)

    assert past_validation.retrying("AzureThrottled", "429", at=at(1)).phase is Phase.PENDING
    assert elsewhere.retrying("AzureThrottled", "429", at=at(1)).phase is Phase.SHUTTING_DOWN
    assert Status().retrying("AzureThrottled", "429", at=at(1)).phase is Phase.VALIDATING


def test_adoption_sets_only_the_conditions_of_deprovision_shutdown_and_generalize() -> None:
    order = (
        StepName.VALIDATE,
        StepName.SNAPSHOT,
        StepName.DEPROVISION,
        StepName.SHUTDOWN,
        StepName.GENERALIZE,
    )
    status = Status().planned(order).adopt("gen already.", at=at(4))

    assert [c.type for c in status.conditions] == ["Deprovisioned", "Deallocated", "Generalized", "Ready"]
    assert status.step(StepName.SNAPSHOT).state is StepState.SKIPPED
