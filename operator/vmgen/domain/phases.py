"""The phases a VMGeneralization moves through and the write-once checkpoint of each step.

`STEP_ORDER` is the workflow's sequence; `StepName.phase` and `StepName.condition` say how a step shows
in `status.phase` and in the conditions. A `Step` carries the counters that steer decisions (`retries`,
`unstartedRuns`) so that a restarted operator keeps its bounds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vmgen.domain import model
from vmgen.domain.conditions import format_time, parse_time
from vmgen.domain.reasons import ConditionType


class Phase(enum.StrEnum):
    PENDING = "Pending"
    VALIDATING = "Validating"
    PREFLIGHT = "Preflight"
    SNAPSHOTTING = "Snapshotting"
    COPYING = "Copying"
    CLEANING_UP = "CleaningUp"
    AWAITING_APPROVAL = "AwaitingApproval"
    DEPROVISIONING = "Deprovisioning"
    SHUTTING_DOWN = "ShuttingDown"
    GENERALIZING = "Generalizing"
    CAPTURING = "Capturing"
    REPLICATING = "Replicating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    PREFLIGHT_COMPLETE = "PreflightComplete"
    """Terminal for `spec.mode: Preflight`: Ready True when nothing blocks, False with the findings."""

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.PREFLIGHT_COMPLETE)


class StepName(enum.StrEnum):
    VALIDATE = "validate"
    PREFLIGHT = "preflight"
    STOP_SOURCE = "stopSource"
    SNAPSHOT = "snapshot"
    START_SOURCE = "startSource"
    COPY = "copy"
    APPROVAL = "approval"
    DEPROVISION = "deprovision"
    SHUTDOWN = "shutdown"
    GENERALIZE = "generalize"
    CAPTURE = "capture"
    PUBLISH = "publish"
    DELETE_COPY = "deleteCopy"

    @property
    def phase(self) -> Phase:
        return _STEP_PHASES[self]

    @property
    def condition(self) -> ConditionType | None:
        """The condition that reports this step's outcome (validation has none of its own)."""
        return _STEP_CONDITIONS.get(self)


_STEP_PHASES = {
    StepName.VALIDATE: Phase.VALIDATING,
    StepName.PREFLIGHT: Phase.PREFLIGHT,
    StepName.STOP_SOURCE: Phase.COPYING,
    StepName.SNAPSHOT: Phase.SNAPSHOTTING,
    StepName.START_SOURCE: Phase.COPYING,
    StepName.COPY: Phase.COPYING,
    StepName.DELETE_COPY: Phase.CLEANING_UP,
    StepName.APPROVAL: Phase.AWAITING_APPROVAL,
    StepName.DEPROVISION: Phase.DEPROVISIONING,
    StepName.SHUTDOWN: Phase.SHUTTING_DOWN,
    StepName.GENERALIZE: Phase.GENERALIZING,
    StepName.CAPTURE: Phase.CAPTURING,
    StepName.PUBLISH: Phase.REPLICATING,
}
_STEP_CONDITIONS = {
    StepName.SNAPSHOT: ConditionType.SOURCE_PRESERVED,
    StepName.DEPROVISION: ConditionType.DEPROVISIONED,
    StepName.SHUTDOWN: ConditionType.DEALLOCATED,
    StepName.GENERALIZE: ConditionType.GENERALIZED,
    StepName.CAPTURE: ConditionType.CAPTURED,
    StepName.PUBLISH: ConditionType.PUBLISHED,
    StepName.COPY: ConditionType.COPY_READY,
    StepName.DELETE_COPY: ConditionType.COPY_DELETED,
}

STEP_ORDER: tuple[StepName, ...] = (
    StepName.VALIDATE,
    StepName.DEPROVISION,
    StepName.SHUTDOWN,
    StepName.GENERALIZE,
)
"""The steps of a plain job (Generalize, in place, no snapshot, no approval, no capture). A spec that asks
for more gets its own order from `Spec.steps`: the optional steps slot in where STEP_SEQUENCE puts them."""

STEP_SEQUENCE: tuple[StepName, ...] = (
    StepName.VALIDATE,
    StepName.PREFLIGHT,
    StepName.STOP_SOURCE,
    StepName.SNAPSHOT,
    StepName.START_SOURCE,
    StepName.COPY,
    StepName.APPROVAL,
    StepName.DEPROVISION,
    StepName.SHUTDOWN,
    StepName.GENERALIZE,
    StepName.CAPTURE,
    StepName.PUBLISH,
    StepName.DELETE_COPY,
)
"""Every step in the order they run when a spec asks for all of them."""


class StepState(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    UNKNOWN = "Unknown"

    @property
    def done(self) -> bool:
        return self in (StepState.SUCCEEDED, StepState.SKIPPED)


def _count(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


@dataclass(frozen=True)
class Step:
    state: StepState = StepState.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    message: str = ""
    continuation_token: str | None = None
    retries: int = 0
    """Transient failures in a row; any other recorded outcome of the step resets it."""
    unstarted_runs: int = 0
    """Deprovision runs that dropped and that Run Command then proved never started."""
    unreachable_since: datetime | None = None
    """First of an unbroken row of tries that could not reach the guest (spec.timeouts bounds the row)."""
    looked_at: datetime | None = None
    """When Run Command last looked at the guest before the first SSH run; a fresh look is not repeated."""
    host_keys: tuple[str, ...] = ()
    """The SSH host keys that look returned (public keys), so a restart needs no second Run Command."""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Step:
        states = {s.value: s for s in StepState}
        token = body.get("continuationToken")
        return cls(
            state=states.get(str(body.get("state")), StepState.PENDING),
            started_at=parse_time(body.get("startedAt")),
            finished_at=parse_time(body.get("finishedAt")),
            attempts=_count(body.get("attempts")),
            message=str(body.get("message") or ""),
            continuation_token=token if isinstance(token, str) and token else None,
            retries=_count(body.get("retries")),
            unstarted_runs=_count(body.get("unstartedRuns")),
            unreachable_since=parse_time(body.get("unreachableSince")),
            looked_at=parse_time(body.get("lookedAt")),
            host_keys=tuple(str(key) for key in body.get("hostKeys") or () if key),
        )

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"state": self.state.value, "attempts": self.attempts}
        if self.started_at:
            body["startedAt"] = format_time(self.started_at)
        if self.finished_at:
            body["finishedAt"] = format_time(self.finished_at)
        if self.message:
            body["message"] = self.message
        if self.continuation_token:
            body["continuationToken"] = self.continuation_token
        if self.retries:
            body["retries"] = self.retries
        if self.unstarted_runs:
            body["unstartedRuns"] = self.unstarted_runs
        if self.unreachable_since:
            body["unreachableSince"] = format_time(self.unreachable_since)
        if self.looked_at:
            body["lookedAt"] = format_time(self.looked_at)
        if self.host_keys:
            body["hostKeys"] = list(self.host_keys)
        return body


@dataclass(frozen=True)
class VmInfo:
    id: str = ""
    os_type: str = ""
    power_state: str = ""
    os_state: str = ""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> VmInfo:
        return cls(
            id=str(body.get("id") or ""),
            os_type=str(body.get("osType") or ""),
            power_state=str(body.get("powerState") or ""),
            os_state=str(body.get("osState") or ""),
        )

    @classmethod
    def observed(cls, vm: model.VmObservation) -> VmInfo:
        """What status shows of a fresh read of the VM."""
        return cls(
            id=vm.id,
            os_type=vm.os_type.value if vm.os_type else "",
            power_state=vm.power_state.value,
            os_state="Generalized" if vm.generalized else "",
        )

    def to_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "osType": self.os_type,
            "powerState": self.power_state,
            "osState": self.os_state,
        }
