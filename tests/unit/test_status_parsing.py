"""Reading status written by someone else: every field of a malformed body falls back to its default.

The API server returns what was stored, and a person with `kubectl edit --subresource status` (or an
older operator) may have stored anything the CRD's schema lets through; a wrong type or an unknown enum
value must read as "not there", never crash the handler or be taken at face value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from vmgen.domain import model
from vmgen.domain.conditions import Condition, ConditionStatus, format_time, parse_time
from vmgen.domain.status import Outputs, Phase, Status, Step, StepName, StepState, VmInfo

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({}, Status(), id="an empty body is a new resource"),
        pytest.param({"phase": "Nonsense"}, Status(), id="an unknown phase reads as Pending"),
        pytest.param({"phase": "Failed"}, Status(phase=Phase.FAILED), id="a known phase is read"),
        pytest.param({"observedGeneration": "2"}, Status(), id="a generation that is not a number is none"),
        pytest.param(
            {"observedGeneration": 4}, Status(observed_generation=4), id="a number generation is kept"
        ),
        pytest.param({"vm": "web-01"}, Status(), id="a vm that is not an object is none"),
        pytest.param(
            {"vm": {"id": "x", "osType": None}},
            Status(vm=VmInfo(id="x")),
            id="a vm's missing fields read empty",
        ),
        pytest.param(
            {"steps": {"deprovision": "Running", "bogus": {"state": "Running"}, "shutdown": {}}},
            Status(steps={StepName.SHUTDOWN: Step()}),
            id="steps that are not objects or not steps are dropped",
        ),
        pytest.param({"steps": None}, Status(), id="null steps are none"),
        pytest.param({"conditions": None}, Status(), id="null conditions are none"),
        pytest.param(
            {"conditions": ["Ready", {"type": "Ready"}]},
            Status(conditions=(Condition("Ready", ConditionStatus.UNKNOWN, "", "", None, None),)),
            id="conditions that are not objects are dropped",
        ),
        pytest.param(
            {"startedAt": "2026-01-01T12:00:00Z", "completedAt": "2026-01-01T12:00:00Z"},
            Status(started_at=T0, completed_at=T0),
            id="both times are read",
        ),
        pytest.param({"outputs": "x"}, Status(), id="outputs that are not an object are empty"),
        pytest.param(
            {"outputs": {"snapshots": ["/s/1"]}},
            Status(outputs=Outputs.from_body({"snapshots": ["/s/1"]})),
            id="outputs are read",
        ),
    ],
)
def test_a_status_body_reads_each_field_or_its_default(body: dict[str, Any], expected: Status) -> None:
    assert Status.from_body(body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({}, Step(), id="an empty row is a pending step"),
        pytest.param({"state": "Weird"}, Step(), id="an unknown state reads as Pending"),
        pytest.param({"attempts": -1, "retries": "2", "unstartedRuns": 1.5}, Step(), id="bad counters are 0"),
        pytest.param(
            {"attempts": 2, "retries": 3, "unstartedRuns": 1},
            Step(attempts=2, retries=3, unstarted_runs=1),
            id="counters are read",
        ),
        pytest.param({"attempts": 0}, Step(), id="a zero counter is kept"),
        pytest.param({"message": None}, Step(), id="a null message is empty"),
        pytest.param({"continuationToken": ""}, Step(), id="an empty token is none"),
        pytest.param({"continuationToken": 7}, Step(), id="a token that is not a string is none"),
        pytest.param({"continuationToken": "t"}, Step(continuation_token="t"), id="a token is read"),
        pytest.param(
            {"hostKeys": ["ssh-ed25519 A", ""]}, Step(host_keys=("ssh-ed25519 A",)), id="empty keys dropped"
        ),
        pytest.param({"hostKeys": None}, Step(), id="null host keys are none"),
        pytest.param(
            {
                "state": "Unknown",
                "startedAt": "2026-01-01T12:00:00Z",
                "finishedAt": "2026-01-01T12:00:00Z",
                "unreachableSince": "2026-01-01T12:00:00Z",
                "lookedAt": "2026-01-01T12:00:00Z",
                "message": "m",
            },
            Step(
                state=StepState.UNKNOWN,
                started_at=T0,
                finished_at=T0,
                unreachable_since=T0,
                looked_at=T0,
                message="m",
            ),
            id="every time and the message are read",
        ),
    ],
)
def test_a_step_row_reads_each_field_or_its_default(body: dict[str, Any], expected: Step) -> None:
    assert Step.from_body(body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {}, Condition("", ConditionStatus.UNKNOWN, "", "", None, None), id="empty: status Unknown"
        ),
        pytest.param(
            {"type": "Ready", "status": "maybe", "reason": None, "message": None, "observedGeneration": "1"},
            Condition("Ready", ConditionStatus.UNKNOWN, "", "", None, None),
            id="an unknown status, null texts and a string generation read as their defaults",
        ),
        pytest.param(
            {
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": "done",
                "observedGeneration": 2,
                "lastTransitionTime": "2026-01-01T12:00:00Z",
            },
            Condition("Ready", ConditionStatus.TRUE, "Succeeded", "done", 2, T0),
            id="every field is read",
        ),
    ],
)
def test_a_condition_reads_each_field_or_its_default(body: dict[str, Any], expected: Condition) -> None:
    assert Condition.from_body(body) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="none is no time"),
        pytest.param("", None, id="an empty string is no time"),
        pytest.param(1767268800, None, id="a number is no time"),
        pytest.param("yesterday", None, id="text that is no time is none"),
        pytest.param("2026-01-01T12:00:00Z", T0, id="Z is UTC"),
        pytest.param("2026-01-01T12:00:00", T0, id="a time without zone is taken as UTC"),
        pytest.param("2026-01-01T13:00:00+01:00", T0, id="an offset is converted to UTC"),
    ],
)
def test_parse_time_reads_rfc3339_in_utc_or_nothing(value: object, expected: datetime | None) -> None:
    parsed = parse_time(value)

    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("observation", "expected"),
    [
        pytest.param(
            model.VmObservation(
                id=model.VmResourceId("/vm/1"),
                os_type=model.OsType.LINUX,
                power_state=model.PowerState.DEALLOCATED,
                generalized=True,
                agent_ready=False,
            ),
            VmInfo(id="/vm/1", os_type="Linux", power_state="deallocated", os_state="Generalized"),
            id="a generalized Linux VM",
        ),
        pytest.param(
            model.VmObservation(
                id=model.VmResourceId("/vm/2"),
                os_type=None,
                power_state=model.PowerState.RUNNING,
                generalized=False,
                agent_ready=True,
            ),
            VmInfo(id="/vm/2", os_type="", power_state="running", os_state=""),
            id="a running VM of unknown OS",
        ),
    ],
)
def test_status_shows_what_a_fresh_read_of_the_vm_said(
    observation: model.VmObservation, expected: VmInfo
) -> None:
    assert VmInfo.observed(observation) == expected


def test_a_vm_body_reads_every_field() -> None:
    body = {"id": "/vm/1", "osType": "Windows", "powerState": "running", "osState": "Generalized"}

    assert VmInfo.from_body(body) == VmInfo("/vm/1", "Windows", "running", "Generalized")
    assert VmInfo.from_body({"id": None, "osType": None, "powerState": None, "osState": None}) == VmInfo()


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is not UTC (time.tzset reads TZ again, before and after)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york")
def test_times_are_read_and_written_in_utc_whatever_the_machines_time_zone() -> None:
    assert parse_time("2026-01-01T12:00:00") == T0
    assert (
        format_time(datetime(2026, 1, 1, 7, 0, tzinfo=timezone(timedelta(hours=-5))))
        == "2026-01-01T12:00:00Z"
    )
