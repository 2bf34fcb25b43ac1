"""Pure decisions of the Linux deprovision step, made on what Run Command showed of the guest.

The step's I/O (steps/prepare_linux.py) reads the guest through Run Command and asks these functions what
the evidence means; every rule lives here, table-tested: the look before the first SSH run, the verdict
after an interrupted run (done, still running within its deadline, proven not started and how often,
partly done), how many transient inspection failures are retried before the outcome is declared unknown,
and the bound on runs that never got going; a guest that cannot be reached (`after_unreachable`,
bounded by spec.timeouts.deprovision from `Step.unreachable_since`, retried without any Azure request:
`reach_first`); whether the look before the first run is still fresh (`look_is_fresh`); and which
verification's Run Command a restarted operator follows instead of beginning another
(`verification_in_flight`, from the token recorded while `records_verification`). The
counters and times those rules read (`Step.retries`, `Step.unstarted_runs`, `Step.unreachable_since`,
`Step.looked_at`) are persisted in status, so a restarted operator keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from vmgen.domain import api, guest, model, retry
from vmgen.domain.phases import Step, StepState
from vmgen.domain.reasons import Reason

VERIFY_AGAIN_SECONDS = 5.0
"""How soon to look again while waagent is still deprovisioning (it takes seconds to a minute)."""
VERIFY_RETRIES = 3
"""Transient Run Command failures retried (with backoff) before the outcome is declared unknown."""
MAX_DEPROVISION_ATTEMPTS = 5
"""Dropped SSH runs of deprovision that Run Command proved never started, before the resource gives up."""
LOOK_FRESH = timedelta(minutes=10)
"""How long the look before the first run stands in for a new one. Safe because the look only reads,
and the step's intent (Running) is written before waagent starts: a Pending step with a look this recent
means no waagent of ours ran since, so only a person deprovisioning the guest by hand in those minutes
would be missed, the same window as between any look and the SSH run that follows it."""


@dataclass(frozen=True)
class Proceed:
    """Nothing says the guest was deprovisioned: run waagent over SSH."""


@dataclass(frozen=True)
class Verified:
    """Every effect of deprovision is there: checkpoint it without running waagent (again)."""

    message: str


@dataclass(frozen=True)
class StillRunning:
    """waagent is deprovisioning right now: watch it (Running), look again after `delay`."""

    message: str
    delay: float


@dataclass(frozen=True)
class NotStarted:
    """A dropped run never got going: the step may run again after `delay` (one more unstarted run)."""

    message: str
    delay: float


@dataclass(frozen=True)
class GiveUp:
    reason: Reason
    message: str


@dataclass(frozen=True)
class Unknown:
    """Only a person can tell: say `why` and wait for the confirm annotation."""

    why: str


@dataclass(frozen=True)
class Unreachable:
    """The guest cannot be reached (nothing ran): say why, try again after `delay` without asking Azure."""

    reason: Reason
    message: str
    delay: float


@dataclass(frozen=True)
class RetryInspection:
    """A transient Run Command failure below the bound: retry with backoff (the error is re-raised)."""


Look = Proceed | Verified | StillRunning
Verdict = Verified | StillRunning | NotStarted | GiveUp | Unknown


def _seen(evidence: guest.Evidence | None) -> str:
    return evidence.describe() if evidence else "no usable report"


def after_look(evidence: guest.Evidence | None, *, delete_user: bool) -> Look:
    """The look before the first run (a guest vmgen has not deprovisioned yet, presumed intact)."""
    seen = _seen(evidence)
    match guest.look_before_first_run(evidence, delete_user=delete_user):
        case guest.Verdict.DONE:
            return Verified(
                f"The guest is deprovisioned already (seen via Run Command: {seen}); not running it again."
            )
        case guest.Verdict.IN_PROGRESS:
            return StillRunning(
                f"waagent is deprovisioning the guest already (seen via Run Command: {seen}).",
                VERIFY_AGAIN_SECONDS,
            )
    return Proceed()


def after_verify(
    evidence: guest.Evidence | None,
    *,
    step: Step,
    delete_user: bool,
    deadline: datetime | None,
    now: datetime,
) -> Verdict:
    """An interrupted (or watched) deprovision, judged on a fresh read of the guest.

    `deadline` is startedAt + spec.timeouts.deprovision: a waagent still running past it is Unknown."""
    seen = _seen(evidence)
    match guest.judge(evidence, delete_user=delete_user):
        case guest.Verdict.DONE:
            return Verified(f"Deprovision verified via Run Command: {seen}.")
        case guest.Verdict.IN_PROGRESS:
            if deadline is not None and now > deadline:
                return Unknown(
                    f"waagent is still running in the guest after spec.timeouts.deprovision ({seen})"
                )
            return StillRunning(
                f"waagent is still deprovisioning the guest (seen via Run Command: {seen}).",
                VERIFY_AGAIN_SECONDS,
            )
        case guest.Verdict.NOT_STARTED:
            runs = step.unstarted_runs + 1
            if runs >= MAX_DEPROVISION_ATTEMPTS:
                return GiveUp(
                    Reason.DEPROVISION_FAILED,
                    f"Deprovision was started {runs} times over SSH and never got going:"
                    f" the connection dropped each time, and Run Command shows the guest intact ({seen})."
                    " The VM was not changed. Check the network path to spec.ssh.host, then recreate"
                    " this resource.",
                )
            return NotStarted(
                f"Run Command shows the guest intact ({seen}): deprovision had not started, so it"
                " is safe to run it.",
                retry.backoff(runs),
            )
    return Unknown(f"The guest is partly deprovisioned ({seen})")


def after_inspection_error(*, transient: bool, step: Step, message: str) -> RetryInspection | Unknown:
    """Run Command failed while verifying: a blip is retried a few times, anything else asks a person."""
    if transient and step.retries < VERIFY_RETRIES:
        return RetryInspection()
    return Unknown(f"Run Command could not inspect the guest ({message})")


def unknown_message(why: str, *, name: str, namespace: str) -> str:
    """What a person reads while vmgen waits for them (the exact command to run included)."""
    return (
        f"{why}. vmgen cannot tell whether `waagent -deprovision` finished and will not run it again"
        " blindly. Check the guest (for example through the serial console); if it was deprovisioned,"
        f' set the annotation {api.CONFIRM_ANNOTATION}: "true" (kubectl annotate vmgen'
        f" {name} -n {namespace} {api.CONFIRM_ANNOTATION}=true) and vmgen"
        " deallocates and generalizes it; otherwise delete this resource."
    )


def confirmed_message() -> str:
    return f"Deprovision confirmed by a person through the annotation {api.CONFIRM_ANNOTATION}."


def records_verification(step: Step) -> bool:
    """Whether a verification's Run Command is recorded (its token, before waiting): for a Running
    deprovision, which an operator restarted every few seconds must get past; not for the rechecks of
    an Unknown one, while waiting for a person writes nothing."""
    return step.state is StepState.RUNNING


def verification_in_flight(step: Step) -> model.ContinuationToken | None:
    """The Run Command of a verification begun before (this process or one SIGKILLed since): follow it
    instead of beginning another. A Running deprovision's token is only ever a verification's."""
    if step.state is StepState.RUNNING and step.continuation_token:
        return model.ContinuationToken(step.continuation_token)
    return None


def look_is_fresh(step: Step, *, now: datetime) -> bool:
    """A Pending step whose look is younger than LOOK_FRESH: skip Run Command, use its host keys."""
    return (
        step.state is StepState.PENDING and step.looked_at is not None and now - step.looked_at <= LOOK_FRESH
    )


def reach_first(step: Step) -> bool:
    """The last try could not reach the guest: reach it before spending any Azure request on the pass."""
    return step.state is StepState.PENDING and step.unreachable_since is not None


def after_unreachable(
    step: Step,
    *,
    unresolvable: bool,
    detail: str,
    host: str,
    port: int,
    timeout: timedelta,
    now: datetime,
) -> Unreachable | GiveUp:
    """The guest did not answer before anything ran: retry with backoff until spec.timeouts.deprovision
    has passed since the first such try, then fail with the same reason and what to check."""
    if unresolvable:
        reason = Reason.GUEST_HOST_UNRESOLVABLE
        what = (
            f"spec.ssh.host {host!r} does not resolve ({detail}). Check the name for typos (or use the"
            " VM's private IP address) and that the operator's DNS can resolve it."
        )
    else:
        reason = Reason.GUEST_UNREACHABLE
        what = (
            f"Nothing answers SSH on {host}:{port} ({detail}). Check spec.ssh.host and spec.ssh.port, that"
            " sshd runs on the VM, and that network security groups and firewalls let the operator reach"
            " that port."
        )
    since = step.unreachable_since or now
    if now - since >= timeout:
        return GiveUp(
            reason,
            f"{what} The guest could not be reached for {_duration(timeout)} (spec.timeouts.deprovision);"
            " nothing ran on the VM, which is unchanged. Fix spec.ssh or the network, then recreate this"
            " resource.",
        )
    left = (since + timeout - now).total_seconds()  # the last try lands on the deadline, not minutes past it
    return Unreachable(reason, f"{what} Nothing ran on the VM.", min(retry.backoff(step.retries + 1), left))


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    return f"{seconds / 60:g}m" if seconds >= 60 else f"{seconds:g}s"
