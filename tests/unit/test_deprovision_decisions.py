"""The Linux deprovision step's decisions as a table: one row per (evidence, step), named as a sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vmgen.domain import deprovision, guest
from vmgen.domain.phases import Step, StepState
from vmgen.domain.reasons import Reason

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
INTACT = guest.Evidence(user_present=True, host_keys=3, ovf_env_present=True, waagent_running=False)
RUNNING = guest.Evidence(user_present=True, host_keys=3, ovf_env_present=False, waagent_running=True)
DONE = guest.Evidence(user_present=False, host_keys=0, ovf_env_present=False, waagent_running=False)
PARTLY = guest.Evidence(user_present=True, host_keys=0, ovf_env_present=True, waagent_running=False)
NO_OVF_ONLY = guest.Evidence(user_present=True, host_keys=3, ovf_env_present=False, waagent_running=False)

LOOK_ROWS = [
    pytest.param(INTACT, True, deprovision.Proceed, id="an intact guest is deprovisioned"),
    pytest.param(None, True, deprovision.Proceed, id="an unreadable look proves nothing and goes ahead"),
    pytest.param(
        DONE, True, deprovision.Verified, id="a guest with every effect of deprovision is not run again"
    ),
    pytest.param(
        RUNNING, True, deprovision.StillRunning, id="a running waagent is watched, not started twice"
    ),
    pytest.param(
        NO_OVF_ONLY, True, deprovision.Proceed, id="a guest merely lacking ovf-env.xml is still deprovisioned"
    ),
    pytest.param(
        guest.Evidence(user_present=True, host_keys=0, ovf_env_present=False, waagent_running=False),
        False,
        deprovision.Verified,
        id="without +user a remaining user does not stop the look from seeing it done",
    ),
]


@pytest.mark.parametrize(("evidence", "delete_user", "expected"), LOOK_ROWS)
def test_the_look_before_the_first_run(
    evidence: guest.Evidence | None, delete_user: bool, expected: type
) -> None:
    assert type(deprovision.after_look(evidence, delete_user=delete_user)) is expected


def verify(
    evidence: guest.Evidence | None, *, step: Step | None = None, minutes_running: float = 1
) -> object:
    started = NOW - timedelta(minutes=minutes_running)
    return deprovision.after_verify(
        evidence,
        step=step or Step(state=StepState.RUNNING, started_at=started, attempts=1),
        delete_user=True,
        deadline=started + timedelta(minutes=15),
        now=NOW,
    )


class TestVerifyingAnInterruptedRun:
    def test_every_effect_present_is_verified(self) -> None:
        verdict = verify(DONE)
        assert isinstance(verdict, deprovision.Verified)
        assert "Deprovision verified via Run Command" in verdict.message

    def test_a_waagent_still_running_within_the_deadline_is_watched_again_soon(self) -> None:
        verdict = verify(RUNNING, minutes_running=14)
        assert verdict == deprovision.StillRunning(verdict.message, deprovision.VERIFY_AGAIN_SECONDS)  # type: ignore[attr-defined]

    def test_a_waagent_still_running_past_the_deadline_asks_a_person(self) -> None:
        verdict = verify(RUNNING, minutes_running=16)
        assert isinstance(verdict, deprovision.Unknown)
        assert "after spec.timeouts.deprovision" in verdict.why

    def test_a_partly_deprovisioned_guest_asks_a_person(self) -> None:
        verdict = verify(PARTLY)
        assert isinstance(verdict, deprovision.Unknown)
        assert verdict.why.startswith("The guest is partly deprovisioned")

    def test_no_usable_report_asks_a_person(self) -> None:
        assert isinstance(verify(None), deprovision.Unknown)

    def test_a_run_proven_not_started_may_run_again_after_a_backoff_that_grows(self) -> None:
        delays = [
            verify(INTACT, step=Step(state=StepState.RUNNING, attempts=n + 1, unstarted_runs=n)).delay  # type: ignore[attr-defined]
            for n in range(3)
        ]
        assert delays == [1.0, 2.0, 4.0]

    def test_the_fifth_run_proven_not_started_gives_up_with_deprovision_failed(self) -> None:
        step = Step(
            state=StepState.RUNNING, attempts=5, unstarted_runs=deprovision.MAX_DEPROVISION_ATTEMPTS - 1
        )
        verdict = verify(INTACT, step=step)
        assert isinstance(verdict, deprovision.GiveUp)
        assert verdict.reason is Reason.DEPROVISION_FAILED
        assert f"started {deprovision.MAX_DEPROVISION_ATTEMPTS} times" in verdict.message

    def test_the_bound_counts_from_status_so_a_restart_does_not_reset_it(self) -> None:
        # A restarted operator only has what status holds: the same step gives the same verdict.
        step = Step(state=StepState.RUNNING, attempts=5, unstarted_runs=4)
        restarted = Step.from_body(step.to_body())
        assert type(verify(INTACT, step=restarted)) is deprovision.GiveUp


INSPECTION_ROWS = [
    pytest.param(True, 0, deprovision.RetryInspection, id="a first transient run command failure is retried"),
    pytest.param(True, 2, deprovision.RetryInspection, id="the third transient failure is still retried"),
    pytest.param(True, 3, deprovision.Unknown, id="past the retry bound the outcome is unknown"),
    pytest.param(
        False, 0, deprovision.Unknown, id="a permanent run command failure makes it unknown at once"
    ),
]


@pytest.mark.parametrize(("transient", "retries", "expected"), INSPECTION_ROWS)
def test_run_command_failing_while_verifying(transient: bool, retries: int, expected: type) -> None:
    verdict = deprovision.after_inspection_error(transient=transient, step=Step(retries=retries), message="x")
    assert type(verdict) is expected


def test_the_unknown_message_names_the_exact_annotate_command() -> None:
    message = deprovision.unknown_message("Lost", name="web", namespace="images")
    assert "kubectl annotate vmgen web -n images vmgen.io/confirm-deprovisioned=true" in message
    assert message.startswith("Lost. vmgen cannot tell")


class TestAGuestThatCannotBeReached:
    def _judge(self, step: Step, *, unresolvable: bool = False, now: datetime = NOW) -> object:
        return deprovision.after_unreachable(
            step,
            unresolvable=unresolvable,
            detail="refused",
            host="web-01.internal",
            port=2222,
            timeout=timedelta(minutes=15),
            now=now,
        )

    def test_the_first_try_retries_under_the_reason_that_says_what_is_wrong(self) -> None:
        dns = self._judge(Step(), unresolvable=True)
        tcp = self._judge(Step())

        assert isinstance(dns, deprovision.Unreachable) and dns.reason is Reason.GUEST_HOST_UNRESOLVABLE
        assert isinstance(tcp, deprovision.Unreachable) and tcp.reason is Reason.GUEST_UNREACHABLE
        assert "web-01.internal:2222" in tcp.message and "does not resolve" in dns.message

    def test_retries_back_off_but_never_past_the_deadline(self) -> None:
        early = self._judge(Step(retries=3, unreachable_since=NOW))
        late = self._judge(Step(retries=12, unreachable_since=NOW - timedelta(minutes=14, seconds=50)))

        assert isinstance(early, deprovision.Unreachable) and early.delay == 8.0
        assert isinstance(late, deprovision.Unreachable) and late.delay == 10.0

    def test_past_spec_timeouts_deprovision_it_gives_up_with_the_same_reason(self) -> None:
        verdict = self._judge(Step(unreachable_since=NOW - timedelta(minutes=15)), unresolvable=True)

        assert isinstance(verdict, deprovision.GiveUp)
        assert verdict.reason is Reason.GUEST_HOST_UNRESOLVABLE
        assert "spec.timeouts.deprovision" in verdict.message and "15m" in verdict.message

    def test_only_a_pending_step_that_could_not_reach_the_guest_reaches_it_before_reading_azure(self) -> None:
        assert deprovision.reach_first(Step(unreachable_since=NOW))
        assert not deprovision.reach_first(Step())
        assert not deprovision.reach_first(Step(state=StepState.RUNNING, unreachable_since=NOW))


class TestTheLookIsFresh:
    def test_a_look_younger_than_the_bound_stands_in_for_a_new_one(self) -> None:
        step = Step(looked_at=NOW - deprovision.LOOK_FRESH + timedelta(seconds=1))

        assert deprovision.look_is_fresh(step, now=NOW)

    def test_an_older_look_is_repeated(self) -> None:
        step = Step(looked_at=NOW - deprovision.LOOK_FRESH - timedelta(seconds=1))

        assert not deprovision.look_is_fresh(step, now=NOW)

    def test_a_look_never_stands_in_once_the_step_began(self) -> None:
        assert not deprovision.look_is_fresh(Step(state=StepState.RUNNING, looked_at=NOW), now=NOW)
        assert not deprovision.look_is_fresh(Step(), now=NOW)
