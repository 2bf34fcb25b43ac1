"""`status` of a VMGeneralization: the workflow's single source of truth, and every way it changes.

kopf forgets per-handler progress between handling cycles (kopf issue 819), and an operator can be
SIGKILLed between any two lines; so everything the workflow must remember lives here and is written
to the status subresource before and after each irreversible action: checkpoints, attempts, the
deallocate operation's continuation token, and the counters that steer decisions (`retries`: transient
failures in a row; `unstartedRuns`: deprovision runs that Run Command proved never started), so that a
restarted operator keeps its bounds instead of starting them over.

Transitions are pure methods on the frozen `Status` (after kopf's `HandlerState.with_outcome`): the
workflow and the steps only call them, so the shape of a "begun", "finished" or "failed" status is
decided here once. `Status.from_body()` reads what the API server holds; `merge_patch(stored,
status.to_body())` produces a JSON merge patch (RFC 7386) holding only what changed, with `null` for
fields that must disappear (a plain dict of the new state would leave a stale `continuationToken`
behind, because merge patches merge nested objects).

The shape is fixed by the CRD (unknown fields are pruned): phase, observedGeneration,
vm{id,osType,powerState,osState}, steps{<step>{state,startedAt,finishedAt,attempts,retries,
unstartedRuns,message,continuationToken}}, conditions[], startedAt, completedAt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from vmgen.domain.conditions import Condition, ConditionStatus, format_time, parse_time
from vmgen.domain.outputs import Outputs
from vmgen.domain.phases import STEP_ORDER, Phase, Step, StepName, StepState, VmInfo
from vmgen.domain.reasons import ConditionType, Reason

__all__ = [
    "STEP_ORDER",
    "Condition",
    "ConditionStatus",
    "Outputs",
    "Phase",
    "Stamp",
    "Status",
    "Step",
    "StepName",
    "StepState",
    "VmInfo",
    "format_time",
    "merge_patch",
    "parse_time",
]


@dataclass(frozen=True)
class Stamp:
    """When a transition happens and which generation of the spec it acted on."""

    now: datetime
    generation: int | None


@dataclass(frozen=True)
class Status:
    phase: Phase = Phase.PENDING
    observed_generation: int | None = None
    vm: VmInfo | None = None
    steps: Mapping[StepName, Step] = field(default_factory=dict)
    conditions: tuple[Condition, ...] = ()
    started_at: datetime | None = None
    completed_at: datetime | None = None
    outputs: Outputs = field(default_factory=lambda: Outputs())
    order: tuple[StepName, ...] = field(default=STEP_ORDER, compare=False, repr=False)
    """This job's steps (`Spec.steps`), set by the workflow each pass; not stored: the spec decides it."""

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
            outputs=Outputs.from_body(_mapping(body.get("outputs"))),
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
        if outputs := self.outputs.to_body():
            body["outputs"] = outputs
        return body

    # -- reading ------------------------------------------------------------------------------------

    def step(self, name: StepName) -> Step:
        return self.steps.get(name, Step())

    @property
    def current_step(self) -> StepName | None:
        """The first step that has not succeeded or been skipped; None when all are done."""
        return next((name for name in self.order if not self.step(name).state.done), None)

    def planned(self, order: tuple[StepName, ...]) -> Status:
        """The same status for a job whose spec runs `order`."""
        return replace(self, order=order)

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind.value), None)

    # -- building blocks ----------------------------------------------------------------------------

    def with_step(self, name: StepName, **changes: Any) -> Status:
        return replace(self, steps={**self.steps, name: replace(self.step(name), **changes)})

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
        kept = old.last_transition_time if old is not None and old.status == status else None
        new = Condition(
            type=kind.value,
            status=status,
            reason=reason,
            message=message,
            observed_generation=generation,
            last_transition_time=kept or now,
        )
        if old is None:
            return replace(self, conditions=(*self.conditions, new))
        return replace(self, conditions=tuple(new if c.type == kind.value else c for c in self.conditions))

    def _set(
        self, kind: ConditionType, value: ConditionStatus, reason: str, message: str, at: Stamp
    ) -> Status:
        return self.with_condition(
            kind, value, reason=reason, message=message, generation=at.generation, now=at.now
        )

    def _ready(self, value: ConditionStatus, reason: str, message: str, at: Stamp) -> Status:
        return self._set(ConditionType.READY, value, reason, message, at)

    def _resolved(self, reason: str, message: str, at: Stamp) -> Status:
        """DeprovisionOutcomeUnknown back to False, if it was ever raised."""
        if self.condition(ConditionType.DEPROVISION_OUTCOME_UNKNOWN) is None:
            return self
        return self._set(
            ConditionType.DEPROVISION_OUTCOME_UNKNOWN, ConditionStatus.FALSE, reason, message, at
        )

    # -- transitions --------------------------------------------------------------------------------

    def accepted(self, message: str, *, at: Stamp) -> Status:
        """The first word on a new resource, written before anything that can wait (the VM's claim, a
        concurrency slot, the subscription's request budget): still Pending, Ready=False."""
        return self._ready(ConditionStatus.FALSE, Reason.PENDING.value, message, at)

    def begin(self, name: StepName, *, message: str, at: Stamp) -> Status:
        """Intent, written before the step acts: Running, one more attempt, no token yet."""
        step = self.step(name)
        status = self.with_step(
            name,
            state=StepState.RUNNING,
            started_at=step.started_at or at.now,
            finished_at=None,
            attempts=step.attempts + 1,
            message=message,
            continuation_token=None,
            unreachable_since=None,
        )
        if name.condition is not None:
            status = status._set(name.condition, ConditionStatus.FALSE, name.phase.value, message, at)
        status = replace(status, phase=name.phase)
        return status._ready(ConditionStatus.FALSE, name.phase.value, message, at)

    def with_token(self, name: StepName, token: str | None, *, message: str | None = None) -> Status:
        """Azure accepted a long-running operation (token), or it is to be forgotten (None)."""
        changes: dict[str, Any] = {"continuation_token": token}
        if message is not None:
            changes["message"] = message
        return self.with_step(name, **changes)

    def finish(self, name: StepName, *, reason: Reason | None, message: str, at: Stamp) -> Status:
        """The checkpoint: Succeeded, its condition True, and the phase of the step that follows."""
        step = self.step(name)
        status = self.with_step(
            name,
            state=StepState.SUCCEEDED,
            started_at=step.started_at or at.now,
            finished_at=at.now,
            message=message,
            continuation_token=None,
            retries=0,
        )
        if name.condition is not None and reason is not None:
            status = status._set(name.condition, ConditionStatus.TRUE, reason, message, at)
        if reason is not None and name is StepName.DEPROVISION:
            status = status._resolved(reason, message, at)
        following = status.current_step
        phase = following.phase if following else status.phase
        text = f"{message} Next: {phase.value}." if following else message
        return replace(status, phase=phase)._ready(ConditionStatus.FALSE, phase.value, text, at)

    def in_progress(self, name: StepName, *, reason: Reason, message: str, at: Stamp) -> Status:
        """The guest is doing the step already (seen, not started by this pass): Running, no attempt."""
        step = self.step(name)
        status = self.with_step(
            name, state=StepState.RUNNING, started_at=step.started_at or at.now, message=message, retries=0
        )
        status = replace(status._resolved(reason, message, at), phase=name.phase)
        return status._ready(ConditionStatus.FALSE, reason, message, at)

    def not_started(self, name: StepName, *, reason: Reason, message: str, at: Stamp) -> Status:
        """Proven never started after a dropped run: Pending again, and counted (the bound survives)."""
        step = self.step(name)
        status = self.with_step(
            name, state=StepState.PENDING, message=message, retries=0, unstarted_runs=step.unstarted_runs + 1
        )
        return status._resolved(reason, message, at)

    def unreachable(self, name: StepName, *, reason: str, message: str, at: Stamp) -> Status:
        """The guest could not be reached before anything ran: Pending, one more retry, the row's start
        kept (the step's timeout bounds it), and the step's condition saying why, not what it would do."""
        step = self.step(name)
        status = self.with_step(
            name,
            state=StepState.PENDING,
            message=message,
            retries=step.retries + 1,
            unreachable_since=step.unreachable_since or at.now,
        )
        if name.condition is not None:
            status = status._set(name.condition, ConditionStatus.FALSE, reason, message, at)
        return replace(status, phase=name.phase)._ready(ConditionStatus.FALSE, reason, message, at)

    def looked(self, name: StepName, *, host_keys: tuple[str, ...], at: Stamp) -> Status:
        """What the read-only look before the first run found, kept so a restart need not look again.
        The guest answered just before: a row of unreachable tries, if any, has ended."""
        return self.with_step(name, looked_at=at.now, host_keys=host_keys, unreachable_since=None)

    def not_run(self, name: StepName, *, message: str) -> Status:
        """A transient error before the step touched anything: it may simply start again."""
        return self.with_step(name, state=StepState.PENDING, message=message)

    def unknown(self, name: StepName, *, message: str, at: Stamp) -> Status:
        """Nobody can tell whether the step's irreversible action finished: ask a person."""
        why = Reason.DEPROVISION_OUTCOME_UNKNOWN
        status = self.with_step(name, state=StepState.UNKNOWN, message=message, retries=0)
        status = status._set(
            ConditionType.DEPROVISION_OUTCOME_UNKNOWN, ConditionStatus.TRUE, why, message, at
        )
        if name.condition is not None:
            status = status._set(name.condition, ConditionStatus.UNKNOWN, why, message, at)
        return replace(status, phase=name.phase)._ready(ConditionStatus.FALSE, why, message, at)

    def waiting(self, phase: Phase, *, reason: Reason, message: str, at: Stamp) -> Status:
        """Nothing is wrong; the operator looks again later."""
        status = self
        name = self.current_step
        if name is not None and self.step(name).retries:
            status = self.with_step(name, retries=0)
        return replace(status, phase=phase)._ready(ConditionStatus.FALSE, reason, message, at)

    def retrying(self, reason: str, message: str, *, at: Stamp) -> Status:
        """A transient error: counted on the current step (the backoff and retry bounds read it)."""
        name = self.current_step or StepName.VALIDATE
        status = self.with_step(name, message=message, retries=self.step(name).retries + 1)
        if self.phase is Phase.PENDING and name is StepName.VALIDATE:
            status = replace(status, phase=Phase.VALIDATING)
        return status._ready(ConditionStatus.FALSE, reason, message, at)

    def fail(self, reason: str, message: str, *, at: Stamp) -> Status:
        """Terminal: the current step Failed, its condition False, Ready False with the reason."""
        name = self.current_step or StepName.VALIDATE
        step = self.step(name)
        status = self.with_step(
            name,
            state=StepState.FAILED,
            started_at=step.started_at or at.now,
            finished_at=at.now,
            attempts=max(step.attempts, 1),
            message=message,
        )
        if name.condition is not None:
            status = status._set(name.condition, ConditionStatus.FALSE, reason, message, at)
        status = replace(status, phase=Phase.FAILED, completed_at=at.now)
        return status._ready(ConditionStatus.FALSE, reason, message, at)

    def adopt(self, message: str, *, at: Stamp) -> Status:
        """Azure reports the VM generalized already: the steps up to generalize are skipped; it succeeds,
        or goes on to capture and publish when the spec asks for an image."""
        reason = Reason.ADOPTED_GENERALIZED_VM
        status = self
        for name in self.order:
            step = status.step(name)
            if step.state.done or name in _IMAGE_STEPS:
                continue
            status = status.with_step(
                name,
                state=StepState.SUCCEEDED if name is StepName.VALIDATE else StepState.SKIPPED,
                started_at=step.started_at or at.now,
                finished_at=at.now,
                message=message,
                continuation_token=None,
            )
            if name in _ADOPTED_CONDITIONS and name.condition is not None:
                status = status._set(name.condition, ConditionStatus.TRUE, reason, message, at)
        following = status.current_step
        if following is not None:
            status = replace(status, phase=following.phase)
            return status._ready(
                ConditionStatus.FALSE, following.phase.value, f"{message} Next: {following.phase.value}.", at
            )
        status = replace(status, phase=Phase.SUCCEEDED, completed_at=at.now)
        return status._ready(ConditionStatus.TRUE, reason, message, at)

    def succeed(self, message: str, *, at: Stamp) -> Status:
        status = replace(self, phase=Phase.SUCCEEDED, completed_at=at.now)
        return status._ready(ConditionStatus.TRUE, Reason.SUCCEEDED, message, at)

    def with_outputs(self, outputs: Outputs) -> Status:
        return replace(self, outputs=outputs)

    def preflight_complete(self, findings: tuple[tuple[str, str], ...], message: str, *, at: Stamp) -> Status:
        """spec.mode Preflight ends here: the findings (reason, message) in outputs, PreflightPassed True
        when there are none, Ready the same."""
        step = self.step(StepName.PREFLIGHT)
        status = self.with_step(
            StepName.PREFLIGHT,
            state=StepState.SUCCEEDED if not findings else StepState.FAILED,
            started_at=step.started_at or at.now,
            finished_at=at.now,
            attempts=max(step.attempts, 1),
            message=message,
        )
        status = replace(
            status,
            phase=Phase.PREFLIGHT_COMPLETE,
            completed_at=at.now,
            outputs=replace(self.outputs, findings=tuple({"reason": r, "message": m} for r, m in findings)),
        )
        value = ConditionStatus.FALSE if findings else ConditionStatus.TRUE
        reason = Reason.PREFLIGHT_FAILED if findings else Reason.PREFLIGHT_PASSED
        status = status._set(ConditionType.PREFLIGHT_PASSED, value, reason, message, at)
        return status._ready(value, reason, message, at)


_IMAGE_STEPS = frozenset({StepName.CAPTURE, StepName.PUBLISH, StepName.DELETE_COPY})
"""Not skipped by adoption: the image is still made, and a copy is still deleted."""
_ADOPTED_CONDITIONS = frozenset({StepName.DEPROVISION, StepName.SHUTDOWN, StepName.GENERALIZE})


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


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
