"""Every Status transition, as the workflow and the steps use them (pure: no clock, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vmgen.domain.reasons import ConditionType, Reason
from vmgen.domain.status import ConditionStatus, Phase, Stamp, Status, StepName, StepState

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(minutes: float = 0, generation: int = 1) -> Stamp:
    return Stamp(now=T0 + timedelta(minutes=minutes), generation=generation)


def ready(status: Status) -> tuple[str, str]:
    condition = status.condition(ConditionType.READY)
    assert condition is not None
    return condition.status.value, condition.reason


def condition(status: Status, kind: ConditionType) -> tuple[str, str]:
    found = status.condition(kind)
    assert found is not None, f"no {kind} condition"
    return found.status.value, found.reason


def validated() -> Status:
    return (
        Status()
        .begin(StepName.VALIDATE, message="m", at=at())
        .finish(StepName.VALIDATE, reason=None, message="ok", at=at())
    )


class TestBeginAndFinish:
    def test_begin_records_intent_with_one_more_attempt_and_the_steps_phase(self) -> None:
        status = validated().begin(StepName.DEPROVISION, message="Running waagent.", at=at(1))

        step = status.step(StepName.DEPROVISION)
        assert (step.state, step.attempts, step.started_at, step.message) == (
            StepState.RUNNING,
            1,
            T0 + timedelta(minutes=1),
            "Running waagent.",
        )
        assert status.phase is Phase.DEPROVISIONING
        assert condition(status, ConditionType.DEPROVISIONED) == ("False", "Deprovisioning")
        assert ready(status) == ("False", "Deprovisioning")

    def test_a_second_begin_keeps_the_first_start_time_and_clears_the_token(self) -> None:
        first = (
            validated().begin(StepName.SHUTDOWN, message="a", at=at(1)).with_token(StepName.SHUTDOWN, "tok")
        )
        again = first.begin(StepName.SHUTDOWN, message="b", at=at(5))

        step = again.step(StepName.SHUTDOWN)
        assert (step.attempts, step.started_at, step.continuation_token) == (
            2,
            T0 + timedelta(minutes=1),
            None,
        )

    def test_begin_keeps_the_retry_count_so_backoff_grows_across_failed_attempts(self) -> None:
        status = validated().begin(StepName.DEPROVISION, message="a", at=at(1))
        status = status.retrying(Reason.GUEST_UNREACHABLE, "down", at=at(1))

        assert (
            status.begin(StepName.DEPROVISION, message="b", at=at(2)).step(StepName.DEPROVISION).retries == 1
        )

    def test_finish_checkpoints_sets_the_condition_true_and_moves_to_the_next_phase(self) -> None:
        status = validated().begin(StepName.DEPROVISION, message="a", at=at(1))
        status = status.retrying(Reason.AZURE_THROTTLED, "429", at=at(1))

        done = status.finish(
            StepName.DEPROVISION, reason=Reason.DEPROVISION_SUCCEEDED, message="done.", at=at(2)
        )

        step = done.step(StepName.DEPROVISION)
        assert (step.state, step.finished_at, step.retries) == (
            StepState.SUCCEEDED,
            T0 + timedelta(minutes=2),
            0,
        )
        assert condition(done, ConditionType.DEPROVISIONED) == ("True", "DeprovisionSucceeded")
        assert done.phase is Phase.SHUTTING_DOWN
        ready_condition = done.condition(ConditionType.READY)
        assert ready_condition is not None and ready_condition.message == "done. Next: ShuttingDown."

    def test_with_token_records_and_forgets_the_operation(self) -> None:
        status = validated().begin(StepName.SHUTDOWN, message="a", at=at(1))

        held = status.with_token(StepName.SHUTDOWN, "tok", message="accepted")
        assert (held.step(StepName.SHUTDOWN).continuation_token, held.step(StepName.SHUTDOWN).message) == (
            "tok",
            "accepted",
        )
        assert held.with_token(StepName.SHUTDOWN, None).step(StepName.SHUTDOWN).continuation_token is None


class TestUncertainty:
    def test_unknown_raises_the_outcome_condition_and_marks_the_step_condition_unknown(self) -> None:
        status = validated().begin(StepName.DEPROVISION, message="a", at=at(1))

        unknown = status.unknown(StepName.DEPROVISION, message="ask a person", at=at(2))

        assert unknown.step(StepName.DEPROVISION).state is StepState.UNKNOWN
        assert condition(unknown, ConditionType.DEPROVISION_OUTCOME_UNKNOWN) == (
            "True",
            "DeprovisionOutcomeUnknown",
        )
        assert condition(unknown, ConditionType.DEPROVISIONED) == ("Unknown", "DeprovisionOutcomeUnknown")
        assert ready(unknown) == ("False", "DeprovisionOutcomeUnknown")
        assert unknown.phase is Phase.DEPROVISIONING

    def test_a_verified_finish_resolves_the_outcome_condition(self) -> None:
        unknown = validated().begin(StepName.DEPROVISION, message="a", at=at(1))
        unknown = unknown.unknown(StepName.DEPROVISION, message="?", at=at(2))

        done = unknown.finish(
            StepName.DEPROVISION, reason=Reason.DEPROVISION_VERIFIED, message="seen", at=at(3)
        )

        assert condition(done, ConditionType.DEPROVISION_OUTCOME_UNKNOWN) == ("False", "DeprovisionVerified")

    def test_not_started_counts_the_run_and_makes_the_step_pending_again(self) -> None:
        status = validated().begin(StepName.DEPROVISION, message="a", at=at(1))

        once = status.not_started(
            StepName.DEPROVISION, reason=Reason.DEPROVISION_NOT_STARTED, message="intact", at=at(2)
        )
        twice = once.begin(StepName.DEPROVISION, message="b", at=at(3)).not_started(
            StepName.DEPROVISION, reason=Reason.DEPROVISION_NOT_STARTED, message="intact", at=at(4)
        )

        assert once.step(StepName.DEPROVISION).state is StepState.PENDING
        assert [s.step(StepName.DEPROVISION).unstarted_runs for s in (once, twice)] == [1, 2]

    def test_the_counters_survive_a_round_trip_through_the_api_server(self) -> None:
        status = validated().begin(StepName.DEPROVISION, message="a", at=at(1))
        status = status.not_started(
            StepName.DEPROVISION, reason=Reason.DEPROVISION_NOT_STARTED, message="x", at=at(2)
        )
        status = status.retrying(Reason.GUEST_UNREACHABLE, "down", at=at(3))

        again = Status.from_body(status.to_body()).step(StepName.DEPROVISION)

        assert (again.unstarted_runs, again.retries) == (1, 1)

    def test_in_progress_marks_running_without_an_attempt_of_ours(self) -> None:
        status = validated().in_progress(
            StepName.DEPROVISION, reason=Reason.DEPROVISION_IN_PROGRESS, message="waagent runs", at=at(1)
        )

        step = status.step(StepName.DEPROVISION)
        assert (step.state, step.attempts, step.started_at) == (
            StepState.RUNNING,
            0,
            T0 + timedelta(minutes=1),
        )
        assert ready(status) == ("False", "DeprovisionInProgress")

    def test_not_run_makes_the_step_pending_with_the_message_and_nothing_else(self) -> None:
        status = validated().begin(StepName.DEPROVISION, message="a", at=at(1))

        after = status.not_run(StepName.DEPROVISION, message="connection refused")

        assert (after.step(StepName.DEPROVISION).state, after.step(StepName.DEPROVISION).attempts) == (
            StepState.PENDING,
            1,
        )
        assert after.conditions == status.conditions


class TestWaitsAndRetries:
    def test_retrying_counts_on_the_current_step_and_leaves_pending_for_validating(self) -> None:
        status = Status().retrying(Reason.AZURE_UNAVAILABLE, "503", at=at())
        status = status.retrying(Reason.AZURE_UNAVAILABLE, "503 again", at=at(1))

        assert status.step(StepName.VALIDATE).retries == 2
        assert status.step(StepName.VALIDATE).message == "503 again"
        assert status.phase is Phase.VALIDATING
        assert ready(status) == ("False", "AzureUnavailable")

    def test_waiting_sets_the_phase_and_reason_and_resets_the_retry_count(self) -> None:
        status = validated().retrying(Reason.AZURE_THROTTLED, "429", at=at(1))

        waiting = status.waiting(
            Phase.DEPROVISIONING, reason=Reason.AGENT_NOT_READY, message="agent", at=at(2)
        )

        assert waiting.phase is Phase.DEPROVISIONING
        assert ready(waiting) == ("False", "AgentNotReady")
        assert waiting.step(StepName.DEPROVISION).retries == 0

    def test_ready_keeps_its_transition_time_while_it_stays_false_and_moves_when_it_flips(self) -> None:
        first = Status().waiting(Phase.PENDING, reason=Reason.VM_CLAIMED_BY_ANOTHER, message="a", at=at(0))
        later = first.waiting(Phase.VALIDATING, reason=Reason.VM_TRANSITIONING, message="b", at=at(5))
        flipped = later.succeed("all done", at=at(9))

        times = [s.condition(ConditionType.READY).last_transition_time for s in (first, later, flipped)]  # type: ignore[union-attr]
        assert times == [T0, T0, T0 + timedelta(minutes=9)]


class TestTerminalTransitions:
    def test_fail_ends_the_current_step_and_the_resource_with_the_reason(self) -> None:
        status = validated().begin(StepName.DEPROVISION, message="a", at=at(1))

        failed = status.fail(Reason.HOST_KEY_MISMATCH, "wrong key", at=at(2))

        step = failed.step(StepName.DEPROVISION)
        assert (step.state, step.finished_at, step.message) == (
            StepState.FAILED,
            T0 + timedelta(minutes=2),
            "wrong key",
        )
        assert (failed.phase, failed.completed_at) == (Phase.FAILED, T0 + timedelta(minutes=2))
        assert condition(failed, ConditionType.DEPROVISIONED) == ("False", "HostKeyMismatch")
        assert ready(failed) == ("False", "HostKeyMismatch")

    def test_fail_before_any_step_fails_validation_with_one_attempt(self) -> None:
        failed = Status().fail(Reason.INVALID_SPEC, "bad", at=at())

        assert (failed.step(StepName.VALIDATE).state, failed.step(StepName.VALIDATE).attempts) == (
            StepState.FAILED,
            1,
        )
        assert failed.condition(ConditionType.DEPROVISIONED) is None

    def test_adopt_skips_every_remaining_step_and_succeeds(self) -> None:
        adopted = validated().adopt("generalized already", at=at(1))

        assert {name.value: adopted.step(name).state.value for name in adopted.steps} == {
            "validate": "Succeeded",
            "deprovision": "Skipped",
            "shutdown": "Skipped",
            "generalize": "Skipped",
        }
        assert condition(adopted, ConditionType.GENERALIZED) == ("True", "AdoptedGeneralizedVM")
        assert ready(adopted) == ("True", "AdoptedGeneralizedVM")
        assert (adopted.phase, adopted.completed_at) == (Phase.SUCCEEDED, T0 + timedelta(minutes=1))

    def test_succeed_makes_ready_true_with_the_completion_time(self) -> None:
        done = validated().succeed("image source ready", at=at(3))

        assert ready(done) == ("True", "Succeeded")
        assert (done.phase, done.completed_at) == (Phase.SUCCEEDED, T0 + timedelta(minutes=3))
        ready_condition = done.condition(ConditionType.READY)
        assert ready_condition is not None and ready_condition.status is ConditionStatus.TRUE
        assert ready_condition.observed_generation == 1
