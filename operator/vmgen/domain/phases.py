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
    DEPROVISIONING = "Deprovisioning"
    SHUTTING_DOWN = "ShuttingDown"
    GENERALIZING = "Generalizing"
    CAPTURING = "Capturing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class StepName(enum.StrEnum):
    VALIDATE = "validate"
    DEPROVISION = "deprovision"
    SHUTDOWN = "shutdown"
    GENERALIZE = "generalize"
    CAPTURE = "capture"

    @property
    def phase(self) -> Phase:
        return _STEP_PHASES[self]

    @property
    def condition(self) -> ConditionType | None:
        """The condition that reports this step's outcome (validation has none of its own)."""
        return _STEP_CONDITIONS.get(self)


_STEP_PHASES = {
    StepName.VALIDATE: Phase.VALIDATING,
    StepName.DEPROVISION: Phase.DEPROVISIONING,
    StepName.SHUTDOWN: Phase.SHUTTING_DOWN,
    StepName.GENERALIZE: Phase.GENERALIZING,
    StepName.CAPTURE: Phase.CAPTURING,
}
_STEP_CONDITIONS = {
    StepName.DEPROVISION: ConditionType.DEPROVISIONED,
    StepName.SHUTDOWN: ConditionType.DEALLOCATED,
    StepName.GENERALIZE: ConditionType.GENERALIZED,
    StepName.CAPTURE: ConditionType.CAPTURED,
}

STEP_ORDER: tuple[StepName, ...] = (
    StepName.VALIDATE,
    StepName.DEPROVISION,
    StepName.SHUTDOWN,
    StepName.GENERALIZE,
)
"""The steps this release runs, in order."""


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
