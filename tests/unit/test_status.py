"""Status round trips, merge patches and Kubernetes-style conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from vmgen.domain.reasons import ConditionType, Reason
from vmgen.domain.status import (
    ConditionStatus,
    Phase,
    Status,
    Step,
    StepName,
    StepState,
    VmInfo,
    merge_patch,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BODY = {
    "phase": "ShuttingDown",
    "observedGeneration": 2,
    "vm": {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web-01",
        "osType": "Linux",
        "powerState": "deallocating",
        "osState": "",
    },
    "steps": {
        "validate": {
            "state": "Succeeded",
            "attempts": 1,
            "startedAt": "2026-01-01T12:00:00Z",
            "finishedAt": "2026-01-01T12:00:01Z",
            "message": "ok",
        },
        "deprovision": {
            "state": "Succeeded",
            "attempts": 1,
            "startedAt": "2026-01-01T12:00:01Z",
            "finishedAt": "2026-01-01T12:00:09Z",
        },
        "shutdown": {
            "state": "Running",
            "attempts": 1,
            "startedAt": "2026-01-01T12:00:10Z",
            "continuationToken": "opaque-token",
        },
    },
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "ShuttingDown",
            "message": "deallocating",
            "observedGeneration": 2,
            "lastTransitionTime": "2026-01-01T12:00:00Z",
        },
    ],
    "startedAt": "2026-01-01T12:00:00Z",
}


class TestRoundTrips:
    def test_a_status_body_survives_from_body_and_to_body_unchanged(self) -> None:
        assert Status.from_body(BODY).to_body() == BODY

    def test_an_absent_status_is_a_new_pending_resource(self) -> None:
        status = Status.from_body(None)

        assert status.phase is Phase.PENDING
        assert status.current_step is StepName.VALIDATE
        assert status.to_body() == {"phase": "Pending"}

    @pytest.mark.parametrize(
        "offset",
        [timedelta(hours=5, minutes=30), timedelta(hours=-8)],
        ids=["east of UTC (India)", "west of UTC (Pacific)"],
    )
    def test_timestamps_are_rfc3339_utc_with_z_whatever_zone_they_were_made_in(
        self, offset: timedelta
    ) -> None:
        # A fixed non-UTC zone, not the machine's: on a UTC machine astimezone() would be a no-op and a
        # formatter that forgot to convert would still pass.
        local = datetime(2026, 1, 1, 13, 0, tzinfo=UTC).astimezone(timezone(offset))
        assert local.utcoffset() == offset

        assert Status(started_at=local).to_body()["startedAt"] == "2026-01-01T13:00:00Z"

    def test_unknown_values_from_the_server_do_not_crash_parsing(self) -> None:
        status = Status.from_body(
            {"phase": "Bogus", "steps": {"deprovision": {"state": "Weird", "attempts": "x"}, "nonsense": {}}}
        )

        assert status.phase is Phase.PENDING
        assert status.step(StepName.DEPROVISION) == Step()
        assert set(status.steps) == {StepName.DEPROVISION}


class TestMergePatches:
    def test_only_what_changed_is_patched(self) -> None:
        old = Status.from_body(BODY)
        new = old.with_step(StepName.SHUTDOWN, message="still deallocating")

        assert merge_patch(old.to_body(), new.to_body()) == {
            "steps": {"shutdown": {"message": "still deallocating"}}
        }

    def test_a_cleared_continuation_token_is_patched_to_null(self) -> None:
        old = Status.from_body(BODY)
        new = old.with_step(
            StepName.SHUTDOWN,
            state=StepState.SUCCEEDED,
            continuation_token=None,
            finished_at=T0 + timedelta(seconds=30),
        )

        patch = merge_patch(old.to_body(), new.to_body())

        assert patch["steps"]["shutdown"]["continuationToken"] is None
        assert patch["steps"]["shutdown"]["state"] == "Succeeded"

    def test_an_unchanged_status_patches_nothing(self) -> None:
        old = Status.from_body(BODY)

        assert merge_patch(Status.from_body(BODY).to_body(), old.to_body()) == {}

    def test_lists_are_replaced_whole_as_merge_patches_require(self) -> None:
        assert merge_patch({"a": [1, 2], "b": {"c": 1, "d": 2}}, {"a": [1], "b": {"c": 1}}) == {
            "a": [1],
            "b": {"d": None},
        }


class TestConditions:
    def test_last_transition_time_moves_only_when_the_status_flips(self) -> None:
        status = Status().with_condition(
            ConditionType.READY, ConditionStatus.FALSE, reason="Validating", message="a", generation=1, now=T0
        )
        later = status.with_condition(
            ConditionType.READY,
            ConditionStatus.FALSE,
            reason="Deprovisioning",
            message="b",
            generation=1,
            now=T0 + timedelta(minutes=1),
        )
        flipped = later.with_condition(
            ConditionType.READY,
            ConditionStatus.TRUE,
            reason="Succeeded",
            message="c",
            generation=1,
            now=T0 + timedelta(minutes=2),
        )

        ready = [s.condition(ConditionType.READY) for s in (status, later, flipped)]
        assert [c.last_transition_time for c in ready if c] == [T0, T0, T0 + timedelta(minutes=2)]
        assert [c.reason for c in ready if c] == ["Validating", "Deprovisioning", "Succeeded"]

    def test_conditions_keep_their_order_and_one_entry_per_type(self) -> None:
        status = Status()
        for kind in (ConditionType.READY, ConditionType.DEPROVISIONED, ConditionType.READY):
            status = status.with_condition(
                kind, ConditionStatus.FALSE, reason=Reason.PENDING, message="", generation=3, now=T0
            )

        assert [c.type for c in status.conditions] == ["Ready", "Deprovisioned"]
        assert all(c.observed_generation == 3 for c in status.conditions)


class TestSteps:
    def test_the_current_step_is_the_first_not_done(self) -> None:
        status = Status(
            steps={
                StepName.VALIDATE: Step(state=StepState.SUCCEEDED),
                StepName.DEPROVISION: Step(state=StepState.SKIPPED),
            }
        )

        assert status.current_step is StepName.SHUTDOWN

    def test_all_steps_done_has_no_current_step(self) -> None:
        done = Step(state=StepState.SUCCEEDED)
        status = Status(
            steps=dict.fromkeys(
                (StepName.VALIDATE, StepName.DEPROVISION, StepName.SHUTDOWN, StepName.GENERALIZE), done
            )
        )

        assert status.current_step is None

    def test_vm_info_round_trips(self) -> None:
        info = VmInfo(id="/x", os_type="Linux", power_state="running", os_state="")

        assert VmInfo.from_body(info.to_body()) == info
