"""The small pure deciders at their edges: what a pass changed for the metrics, the Lease's boundaries,
and how image values are read from Azure's text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vmgen.domain import election, images, telemetry
from vmgen.domain.election import Decision, LeaseRecord, Seen
from vmgen.domain.images import ReplicationState, SecurityType
from vmgen.domain.reasons import ConditionType
from vmgen.domain.status import ConditionStatus, Phase, Stamp, Status, Step, StepName, StepState, VmInfo

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
AT = Stamp(now=T0 + timedelta(seconds=90), generation=1)


def test_a_step_finished_this_pass_is_counted_with_its_duration() -> None:
    before = Status().begin(StepName.VALIDATE, message="v", at=Stamp(now=T0, generation=1))
    after = before.finish(StepName.VALIDATE, reason=None, message="ok", at=AT)

    assert telemetry.changes(before, after) == telemetry.Changes(
        finished=(telemetry.FinishedStep(StepName.VALIDATE, 90.0),)
    )


def test_a_step_finished_before_it_started_by_a_skewed_clock_counts_zero_seconds() -> None:
    after = Status(
        steps={
            StepName.SHUTDOWN: Step(state=StepState.SUCCEEDED, started_at=T0, finished_at=T0 - AT.now + T0)
        }
    )

    assert telemetry.changes(Status(), after).finished == (telemetry.FinishedStep(StepName.SHUTDOWN, 0.0),)


def test_a_step_without_a_start_or_finished_before_is_not_counted() -> None:
    adopted = Status(steps={StepName.DEPROVISION: Step(state=StepState.SKIPPED, finished_at=T0)})
    done = Status(steps={StepName.VALIDATE: Step(started_at=T0, finished_at=T0)})

    assert telemetry.changes(Status(), adopted).finished == ()
    assert telemetry.changes(done, done).finished == ()


@pytest.mark.parametrize(
    ("vm", "os"),
    [
        pytest.param(VmInfo(os_type="Windows"), "Windows", id="the OS Azure reported"),
        pytest.param(None, "", id="a VM never read has no OS"),
    ],
)
def test_a_job_that_ends_is_counted_once_with_its_result_os_and_reason(vm: VmInfo | None, os: str) -> None:
    before = Status(vm=vm).begin(StepName.VALIDATE, message="v", at=AT)
    after = before.fail("InvalidSpec", "bad", at=AT)

    assert telemetry.changes(before, after).ended == telemetry.JobEnd(
        result="Failed", os=os, reason="InvalidSpec"
    )
    assert telemetry.changes(after, after).ended is None


def test_a_job_ended_without_a_ready_condition_counts_its_phase_as_reason() -> None:
    assert telemetry.changes(Status(), Status(phase=Phase.SUCCEEDED)).ended == telemetry.JobEnd(
        result="Succeeded", os="", reason="Succeeded"
    )


@pytest.mark.parametrize(
    ("reason", "retried", "counted"),
    [
        pytest.param("GuestUnreachable", True, True, id="a retry because the guest did not answer"),
        pytest.param("AzureThrottled", True, False, id="a retry for another reason"),
        pytest.param("GuestUnreachable", False, False, id="no retry this pass"),
    ],
)
def test_a_guest_that_could_not_be_reached_is_counted_only_when_a_retry_was(
    reason: str, retried: bool, counted: bool
) -> None:
    before = Status().begin(StepName.VALIDATE, message="v", at=AT)
    after = (
        before.retrying(reason, "x", at=AT)
        if retried
        else before.with_condition(
            ConditionType.READY, ConditionStatus.FALSE, reason=reason, message="x", generation=1, now=T0
        )
    )

    assert telemetry.changes(before, after).guest_unreachable is counted


HELD = LeaseRecord(holder="pod-b", renew_time="t1", duration=15)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(114.999, Decision.WAIT, id="just under the duration it waits"),
        pytest.param(115.0, Decision.TAKE_OVER, id="exactly at the duration it takes over"),
    ],
)
def test_a_held_lease_is_taken_over_exactly_after_its_duration(now: float, expected: Decision) -> None:
    assert election.decide("pod-a", HELD, Seen(HELD, 100.0), now=now) is expected


def test_a_lease_with_an_empty_holder_is_taken_at_once() -> None:
    record = LeaseRecord(holder="", renew_time="t1", duration=15)

    assert election.decide("pod-a", record, Seen(record, 100.0), now=100.0) is Decision.TAKE_OVER


def test_a_changed_record_starts_its_duration_again_by_our_clock() -> None:
    renewed = LeaseRecord(holder="pod-b", renew_time="t2", duration=15)

    assert election.decide("pod-a", renewed, Seen(HELD, 0.0), now=100.0) is Decision.WAIT
    assert election.observe(renewed, Seen(HELD, 0.0), now=100.0) == Seen(renewed, 100.0)
    assert election.observe(HELD, Seen(HELD, 3.0), now=100.0) == Seen(HELD, 3.0)
    assert election.observe(HELD, None, now=100.0) == Seen(HELD, 100.0)
    assert election.observe(None, Seen(HELD, 3.0), now=100.0) is None


def test_a_leader_gives_up_two_thirds_into_its_lease() -> None:
    assert election.renew_deadline(15.0) == 10.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, SecurityType.STANDARD, id="no feature is Standard"),
        pytest.param("", SecurityType.STANDARD, id="an empty feature is Standard"),
        pytest.param("trustedlaunch", SecurityType.TRUSTED_LAUNCH, id="matched whatever the case"),
        pytest.param("Quantum", SecurityType.UNKNOWN, id="anything else is Unknown"),
    ],
)
def test_a_security_type_is_read_from_azures_text(text: str | None, expected: SecurityType) -> None:
    assert SecurityType.parse(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, ReplicationState.UNKNOWN, id="none is Unknown"),
        pytest.param("completed", ReplicationState.COMPLETED, id="matched whatever the case"),
        pytest.param("Paused", ReplicationState.UNKNOWN, id="anything else is Unknown"),
    ],
)
def test_a_replication_state_is_read_from_azures_text(text: str | None, expected: ReplicationState) -> None:
    assert ReplicationState.parse(text) is expected


@pytest.mark.parametrize(
    ("provisioning", "aggregated", "ready"),
    [
        pytest.param("Succeeded", ReplicationState.COMPLETED, True, id="provisioned and replicated"),
        pytest.param("Succeeded", ReplicationState.IN_PROGRESS, False, id="still replicating"),
        pytest.param("Updating", ReplicationState.COMPLETED, False, id="still provisioning"),
    ],
)
def test_a_version_is_ready_only_when_provisioned_and_replicated(
    provisioning: str, aggregated: ReplicationState, ready: bool
) -> None:
    version = images.ImageVersion(
        id=images.GalleryImageVersionId("/v/1"),
        provisioning_state=provisioning,
        source_id="/vm/1",
        aggregated=aggregated,
        regions=(),
    )

    assert version.ready is ready


def test_a_retry_counted_in_an_earlier_pass_is_not_counted_again() -> None:
    before = Status().retrying("GuestUnreachable", "down", at=AT)
    after = before.with_step(StepName.VALIDATE, message="still down")

    assert telemetry.changes(before, after).guest_unreachable is False
