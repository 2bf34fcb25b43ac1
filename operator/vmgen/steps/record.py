"""Actions that only record what the planner decided: waits, checkpoints, success, adoption, failure.

No Azure or guest call happens here; each is one status transition (domain/status.py), an Event, and,
for the terminal ones, the release of the VM's claim after the terminal status is written.
"""

from __future__ import annotations

from vmgen.domain import planner
from vmgen.domain.reasons import ConditionType, Reason
from vmgen.steps import cleanup
from vmgen.steps.base import Executor, Pass


async def done(p: Pass, action: planner.Done) -> None:
    return None


async def wait(p: Pass, action: planner.Wait) -> float:
    ready = p.status.condition(ConditionType.READY)
    if ready is None or ready.reason != action.reason:
        p.events.normal(action.reason, action.message)
    await p.save(p.status.waiting(action.phase, reason=action.reason, message=action.message, at=p.at))
    return action.delay


async def checkpoint(p: Pass, action: planner.Checkpoint) -> float:
    p.events.normal(action.reason, action.message)
    await p.save(p.status.finish(action.step, reason=action.reason, message=action.message, at=p.at))
    return 0.0


async def fail(p: Pass, action: planner.Fail) -> None:
    await fail_with(p, action.reason, action.message)


async def fail_with(p: Pass, reason: str, message: str) -> None:
    """Terminal: Failed with `reason`, a Warning Event, and the VM's claim released. A copy that exists
    is deleted first (or kept, with spec.copy.keepOnFailure), and the message says which."""
    message += await cleanup.after_failure(p)
    p.events.warning(reason, message)
    await p.save(p.status.fail(reason, message, at=p.at))
    await p.release_claim()


async def succeed(p: Pass, action: planner.Succeed) -> None:
    outputs = p.status.outputs
    made = [i for i in (outputs.managed_image_id, outputs.gallery_image_version_id) if i]
    if p.spec.copied:
        message = (
            f"A copy of VM {p.spec.vm.name} was generalized"
            + (f" and captured as {' and '.join(made)}" if made else "")
            + f", then deleted; VM {p.spec.vm.name} itself was not changed."
        )
        p.events.normal(Reason.SUCCEEDED, message)
        await p.save(p.status.succeed(message, at=p.at))
        await p.release_claim()
        return
    message = (
        f"VM {p.spec.vm.name} is deprovisioned, deallocated and generalized"
        + (f", and captured as {' and '.join(made)}." if made else ": capture an image from it.")
        + " It must never be started again."
    )
    p.events.normal(Reason.SUCCEEDED, message)
    await p.save(p.status.succeed(message, at=p.at))
    await p.release_claim()


async def adopt(p: Pass, action: planner.Adopt) -> float | None:
    message = f"Azure reports VM {p.spec.vm.name} as generalized already; it is adopted as it is."
    p.events.normal(Reason.ADOPTED_GENERALIZED_VM, message)
    await p.save(p.status.adopt(message, at=p.at))
    if p.status.phase.terminal:
        await p.release_claim()
        return None
    return 0.0


EXECUTORS: dict[type, Executor] = {
    planner.Done: done,
    planner.Wait: wait,
    planner.Checkpoint: checkpoint,
    planner.Fail: fail,
    planner.Succeed: succeed,
    planner.Adopt: adopt,
}
