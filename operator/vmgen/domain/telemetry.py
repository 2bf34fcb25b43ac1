"""What one pass changed, in the terms the operator's metrics count: steps finished, a job ended.

The metrics must follow the status, not the code paths that write it: a step can be checkpointed by
its own executor, by verification after a restart, or by adoption, and a job can fail in the
workflow or in any step. Comparing the status before and after a pass sees all of them the same way,
and counts each transition once per process, because the status itself moves only once.

Traps avoided: a step restored from status at start-up (already finished before this process) is not
counted again, since `before` already has its `finishedAt`; a step without `startedAt` (adopted,
confirmed without running) has no duration and is not observed. A guest connection error is a retry
counted with reason GuestUnreachable (the error class the SSH adapter raises when nothing ran).
"""

from __future__ import annotations

from dataclasses import dataclass

from vmgen.domain.phases import StepName
from vmgen.domain.reasons import ConditionType, Reason
from vmgen.domain.status import Status

__all__ = ["Changes", "FinishedStep", "JobEnd", "changes"]


@dataclass(frozen=True)
class FinishedStep:
    step: StepName
    seconds: float


@dataclass(frozen=True)
class JobEnd:
    result: str
    """Succeeded or Failed."""
    os: str
    """Linux, Windows, or "" when the VM was never read."""
    reason: str


@dataclass(frozen=True)
class Changes:
    finished: tuple[FinishedStep, ...] = ()
    ended: JobEnd | None = None
    guest_unreachable: bool = False
    """A retry was counted because the guest refused or dropped the connection before anything ran."""


def changes(before: Status, after: Status) -> Changes:
    finished = []
    for name in StepName:
        old, new = before.step(name), after.step(name)
        if old.finished_at is None and new.finished_at is not None and new.started_at is not None:
            seconds = max(0.0, (new.finished_at - new.started_at).total_seconds())
            finished.append(FinishedStep(step=name, seconds=seconds))
    ended = None
    if after.phase.terminal and not before.phase.terminal:
        ready = after.condition(ConditionType.READY)
        ended = JobEnd(
            result=after.phase.value,
            os=after.vm.os_type if after.vm else "",
            reason=ready.reason if ready else after.phase.value,
        )
    ready = after.condition(ConditionType.READY)
    retried = any(after.step(name).retries > before.step(name).retries for name in StepName)
    unreachable = retried and ready is not None and ready.reason == Reason.GUEST_UNREACHABLE
    return Changes(finished=tuple(finished), ended=ended, guest_unreachable=unreachable)
