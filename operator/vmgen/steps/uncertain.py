"""The third branch: a guest preparation whose outcome nobody can tell yet.

vmgen never repeats an irreversible step blindly and never moves on without knowing it finished. While
the outcome is unknown the resource says so (condition DeprovisionOutcomeUnknown, the exact
`kubectl annotate` command in its message) and waits; the next passes keep re-verifying read-only where
the VM can be inspected, and a person's confirmation checkpoints the step.
"""

from __future__ import annotations

from vmgen.domain import deprovision, planner
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName, StepState
from vmgen.steps.base import Executor, Pass


async def mark_unknown(p: Pass, why: str) -> float:
    """Say so in status (and once as a Warning Event) and ask a person."""
    message = deprovision.unknown_message(why, name=p.resource.name, namespace=p.resource.namespace)
    if p.status.step(StepName.DEPROVISION).state is not StepState.UNKNOWN:
        p.events.warning(Reason.DEPROVISION_OUTCOME_UNKNOWN, message)
    await p.save(p.status.unknown(StepName.DEPROVISION, message=message, at=p.at))
    return planner.CONFIRMATION_RECHECK_SECONDS


async def unknown(p: Pass, action: planner.MarkDeprovisionUnknown) -> float:
    return await mark_unknown(p, action.why)


async def await_confirmation(p: Pass, action: planner.AwaitConfirmation) -> float:
    return planner.CONFIRMATION_RECHECK_SECONDS


async def confirm(p: Pass, action: planner.ConfirmDeprovision) -> float:
    message = deprovision.confirmed_message()
    p.events.normal(Reason.DEPROVISION_CONFIRMED, message)
    await p.save(
        p.status.finish(StepName.DEPROVISION, reason=Reason.DEPROVISION_CONFIRMED, message=message, at=p.at)
    )
    return 0.0


EXECUTORS: dict[type, Executor] = {
    planner.MarkDeprovisionUnknown: unknown,
    planner.AwaitConfirmation: await_confirmation,
    planner.ConfirmDeprovision: confirm,
}
