"""Deallocate: a long-running operation whose continuation token is recorded before anything waits.

Intent (Running, one more attempt) is written first; the token right after Azure accepted the operation;
the checkpoint once it finished. A restarted operator resumes from the token instead of beginning again.
A token that can no longer be followed (the operation ended Failed, or is unknown to Azure) is forgotten,
and the next pass reads the VM and begins again unless Azure is already deallocating it: deallocate is
safe to repeat. Other transient errors keep the token, since the operation may still be fine.
"""

from __future__ import annotations

import asyncio

from vmgen.domain import errors, planner
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName
from vmgen.steps.base import Executor, Pass
from vmgen.steps.record import checkpoint


async def begin(p: Pass, action: planner.BeginDeallocate) -> float:
    p.events.normal(Reason.SHUTDOWN_STARTED, f"Deallocating {p.target_label}.")
    await p.save(p.status.begin(StepName.SHUTDOWN, message="Asking Azure to deallocate the VM.", at=p.at))
    token = await p.azure().begin_deallocate(p.target)
    await p.save(
        p.status.with_token(
            StepName.SHUTDOWN,
            token,
            message="Azure accepted the deallocate operation; waiting for it to finish.",
        )
    )
    return 0.0


async def resume(p: Pass, action: planner.ResumeDeallocate) -> float:
    started = p.status.step(StepName.SHUTDOWN).started_at or p.now()
    remaining = (started + p.spec.timeouts.shutdown - p.now()).total_seconds()
    try:
        await asyncio.wait_for(p.azure().wait_deallocate(p.target, action.token), timeout=max(1.0, remaining))
    except TimeoutError:
        return 0.0  # the planner fails the step with Timeout (and says what to do) on the next pass
    except errors.AzureOperationLost:
        await p.save(p.status.with_token(StepName.SHUTDOWN, None))
        raise
    return await checkpoint(
        p, planner.Checkpoint(StepName.SHUTDOWN, Reason.VM_DEALLOCATED, "Azure deallocated the VM.")
    )


EXECUTORS: dict[type, Executor] = {planner.BeginDeallocate: begin, planner.ResumeDeallocate: resume}
