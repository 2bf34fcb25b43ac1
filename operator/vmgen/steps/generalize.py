"""Generalize: mark a deallocated VM generalized in Azure (synchronous, answers 200).

The planner re-checked on a fresh read that the VM is stopped or deallocated. A call that outlives
spec.timeouts.generalize is uncertain, not failed: the next pass reads the VM and either checkpoints a
generalized VM or generalizes again (safe to repeat); the planner ends the step with Timeout past its
deadline.
"""

from __future__ import annotations

import asyncio

from vmgen.domain import errors, planner
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName
from vmgen.steps.base import Executor, Pass
from vmgen.steps.record import checkpoint


async def generalize(p: Pass, action: planner.Generalize) -> float:
    p.events.normal(Reason.GENERALIZE_STARTED, f"Marking {p.target_label} as generalized.")
    await p.save(p.status.begin(StepName.GENERALIZE, message="Asking Azure to generalize the VM.", at=p.at))
    try:
        await asyncio.wait_for(
            p.azure().generalize(p.target), timeout=p.spec.timeouts.generalize.total_seconds()
        )
    except TimeoutError:
        raise errors.AzureUnavailable(
            f"Azure did not answer generalize for {p.target_label} within spec.timeouts.generalize."
        ) from None
    return await checkpoint(
        p, planner.Checkpoint(StepName.GENERALIZE, Reason.VM_GENERALIZED, "Azure marked the VM generalized.")
    )


EXECUTORS: dict[type, Executor] = {planner.Generalize: generalize}
