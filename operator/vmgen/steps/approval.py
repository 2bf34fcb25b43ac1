"""Approval: with spec.approval Manual, nothing irreversible happens until a person says so.

Everything read-only (validation, snapshots) has run by now; the resource waits with the condition
AwaitingApproval True and a message naming the annotation, which fits GitOps: merge the resource, read the
result in Argo CD, then approve with `kubectl annotate`. The annotation wakes the resource at once.
"""

from __future__ import annotations

from vmgen.domain import api, planner
from vmgen.domain.reasons import ConditionType, Reason
from vmgen.domain.status import ConditionStatus, Phase, StepName
from vmgen.steps.base import Executor, Pass


async def wait(p: Pass, action: planner.AwaitApproval) -> float:
    message = (
        f"Waiting for approval: nothing irreversible happens to VM {p.spec.vm.name} until the annotation"
        f' {api.APPROVE_ANNOTATION}: "true" is set (kubectl annotate vmgen {p.resource.name} -n'
        f" {p.resource.namespace} {api.APPROVE_ANNOTATION}=true)."
    )
    ready = p.status.condition(ConditionType.READY)
    if ready is None or ready.reason != Reason.AWAITING_APPROVAL:
        p.events.normal(Reason.AWAITING_APPROVAL, message)
    at = p.at
    status = p.status.waiting(
        Phase.AWAITING_APPROVAL, reason=Reason.AWAITING_APPROVAL, message=message, at=at
    )
    status = status.with_condition(
        ConditionType.AWAITING_APPROVAL,
        ConditionStatus.TRUE,
        reason=Reason.AWAITING_APPROVAL,
        message=message,
        generation=at.generation,
        now=at.now,
    )
    await p.save(status)
    return planner.APPROVAL_RECHECK_SECONDS


async def approve(p: Pass, action: planner.Approve) -> float:
    message = f"Approved through the annotation {api.APPROVE_ANNOTATION}."
    p.events.normal(Reason.APPROVED, message)
    at = p.at
    status = p.status.with_condition(
        ConditionType.AWAITING_APPROVAL,
        ConditionStatus.FALSE,
        reason=Reason.APPROVED,
        message=message,
        generation=at.generation,
        now=at.now,
    )
    await p.save(status.finish(StepName.APPROVAL, reason=Reason.APPROVED, message=message, at=at))
    return 0.0


EXECUTORS: dict[type, Executor] = {planner.AwaitApproval: wait, planner.Approve: approve}
