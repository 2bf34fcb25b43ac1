"""One module per step's I/O, behind one executor seam: `perform(pass, action)`.

The planner (domain/planner.py) picks one action per pass; `EXECUTORS` maps each action type to the
function of the step module that performs it. A new step is a new module with its own `EXECUTORS`,
listed here, plus planner rows: nothing else changes (docs/design.md, "How to add a step").
"""

from __future__ import annotations

from vmgen.domain import planner
from vmgen.steps import (
    approval,
    capture,
    cleanup,
    copy,
    deallocate,
    generalize,
    preflight,
    prepare_linux,
    prepare_windows,
    publish,
    record,
    snapshot,
    uncertain,
    validate,
)
from vmgen.steps.base import Executor, Pass, Ports, Record, Resource

__all__ = ["EXECUTORS", "Pass", "Ports", "Record", "Resource", "cleanup", "perform"]

EXECUTORS: dict[type, Executor] = {
    **record.EXECUTORS,
    **validate.EXECUTORS,
    **prepare_linux.EXECUTORS,
    **uncertain.EXECUTORS,
    **deallocate.EXECUTORS,
    **generalize.EXECUTORS,
    **preflight.EXECUTORS,
    **snapshot.EXECUTORS,
    **approval.EXECUTORS,
    **capture.EXECUTORS,
    **publish.EXECUTORS,
    **prepare_windows.EXECUTORS,
    **copy.EXECUTORS,
}


async def perform(p: Pass, action: planner.Action) -> float | None:
    """Perform `action` (one side effect at most, recorded around it); seconds until the next pass."""
    return await EXECUTORS[type(action)](p, action)
