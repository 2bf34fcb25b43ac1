"""`status` of a VMGeneralization: the workflow's single source of truth, as frozen values.

kopf forgets per-handler progress between handling cycles (kopf issue 819), and an operator can be
SIGKILLed between any two lines; so everything the workflow must remember lives here and is written
to the status subresource before and after each irreversible action. `Status.from_body()` reads what
the API server holds; `merge_patch(stored, status.to_body())` produces a JSON merge patch (RFC 7386) holding
only what changed, with `null` for fields that must disappear (a plain dict of the new state would
leave a stale `continuationToken` behind, because merge patches merge nested objects).

The shape is fixed by the CRD (unknown fields are pruned): phase, observedGeneration,
vm{id,osType,powerState,osState}, steps{<step>{state,startedAt,finishedAt,attempts,message,
continuationToken}}, conditions[], startedAt, completedAt. Timestamps are RFC 3339 UTC with "Z",
to the second. Conditions follow Kubernetes: `lastTransitionTime` moves only when `status` flips.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

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


_STEP_PHASES = {
    StepName.VALIDATE: Phase.VALIDATING,
    StepName.DEPROVISION: Phase.DEPROVISIONING,
    StepName.SHUTDOWN: Phase.SHUTTING_DOWN,
    StepName.GENERALIZE: Phase.GENERALIZING,
    StepName.CAPTURE: Phase.CAPTURING,
}

STEP_ORDER: tuple[StepName, ...] = (
    StepName.VALIDATE,
    StepName.DEPROVISION,
    StepName.SHUTDOWN,
    StepName.GENERALIZE,
)
"""The steps this release runs, in order (capture comes with a later issue)."""


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


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Step:
    state: StepState = StepState.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    message: str = ""
    continuation_token: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Step:
        states = {s.value: s for s in StepState}
        attempts = body.get("attempts")
        token = body.get("continuationToken")
        return cls(
            state=states.get(str(body.get("state")), StepState.PENDING),
            started_at=parse_time(body.get("startedAt")),
            finished_at=parse_time(body.get("finishedAt")),
            attempts=attempts if isinstance(attempts, int) else 0,
            message=str(body.get("message") or ""),
            continuation_token=token if isinstance(token, str) and token else None,
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
        return body


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str
    observed_generation: int | None
    last_transition_time: datetime | None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Condition:
        generation = body.get("observedGeneration")
        statuses = {s.value: s for s in ConditionStatus}
        return cls(
            type=str(body.get("type", "")),
            status=statuses.get(str(body.get("status")), ConditionStatus.UNKNOWN),
            reason=str(body.get("reason") or ""),
            message=str(body.get("message") or ""),
            observed_generation=generation if isinstance(generation, int) else None,
            last_transition_time=parse_time(body.get("lastTransitionTime")),
        )

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "status": self.status.value,
            "reason": self.reason,
            "message": self.message,
        }
        if self.observed_generation is not None:
            body["observedGeneration"] = self.observed_generation
        if self.last_transition_time is not None:
            body["lastTransitionTime"] = format_time(self.last_transition_time)
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

    def to_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "osType": self.os_type,
            "powerState": self.power_state,
            "osState": self.os_state,
        }


@dataclass(frozen=True)
class Status:
    phase: Phase = Phase.PENDING
    observed_generation: int | None = None
    vm: VmInfo | None = None
    steps: Mapping[StepName, Step] = field(default_factory=dict)
    conditions: tuple[Condition, ...] = ()
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any] | None) -> Status:
        body = body or {}
        phases = {p.value: p for p in Phase}
        names = {s.value: s for s in StepName}
        raw_steps = body.get("steps") or {}
        generation = body.get("observedGeneration")
        return cls(
            phase=phases.get(str(body.get("phase")), Phase.PENDING),
            observed_generation=generation if isinstance(generation, int) else None,
            vm=VmInfo.from_body(body["vm"]) if isinstance(body.get("vm"), Mapping) else None,
            steps={
                names[key]: Step.from_body(value)
                for key, value in raw_steps.items()
                if key in names and isinstance(value, Mapping)
            },
            conditions=tuple(
                Condition.from_body(c) for c in body.get("conditions") or [] if isinstance(c, Mapping)
            ),
            started_at=parse_time(body.get("startedAt")),
            completed_at=parse_time(body.get("completedAt")),
        )

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"phase": self.phase.value}
        if self.observed_generation is not None:
            body["observedGeneration"] = self.observed_generation
        if self.vm is not None:
            body["vm"] = self.vm.to_body()
        if self.steps:
            body["steps"] = {name.value: step.to_body() for name, step in self.steps.items()}
        if self.conditions:
            body["conditions"] = [c.to_body() for c in self.conditions]
        if self.started_at:
            body["startedAt"] = format_time(self.started_at)
        if self.completed_at:
            body["completedAt"] = format_time(self.completed_at)
        return body

    def step(self, name: StepName) -> Step:
        return self.steps.get(name, Step())

    @property
    def current_step(self) -> StepName | None:
        """The first step that has not succeeded or been skipped; None when all are done."""
        return next((name for name in STEP_ORDER if not self.step(name).state.done), None)

    def with_step(self, name: StepName, **changes: Any) -> Status:
        return replace(self, steps={**self.steps, name: replace(self.step(name), **changes)})

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind.value), None)

    def with_condition(
        self,
        kind: ConditionType,
        status: ConditionStatus,
        *,
        reason: str,
        message: str,
        generation: int | None,
        now: datetime,
    ) -> Status:
        """Set one condition; its lastTransitionTime moves only when its status flips."""
        old = self.condition(kind)
        moved = old is None or old.status != status or old.last_transition_time is None
        new = Condition(
            type=kind.value,
            status=status,
            reason=reason,
            message=message,
            observed_generation=generation,
            last_transition_time=now if moved else (old.last_transition_time if old else now),
        )
        if old is None:
            return replace(self, conditions=(*self.conditions, new))
        return replace(self, conditions=tuple(new if c.type == kind.value else c for c in self.conditions))


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 diff: changed keys with their new value, vanished keys as None, objects recursively."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(before, Mapping) and isinstance(value, Mapping):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
