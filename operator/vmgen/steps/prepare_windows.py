"""Windows guest preparation: preflight, sysprep started once, its progress watched from evidence.

The step is StepName.DEPROVISION of a Windows VM, so shutdown (deallocate) and generalize follow as for
Linux. The transport (spec.windows.transport) only decides how a script reaches the guest:
steps/prepare_windows_winrm.py (sysprep /quit) or steps/prepare_windows_runcommand.py (sysprep
/shutdown), both behind the `WindowsGuest` port. Every judgement is made in domain/windows_plan.py.

One pass each:
- StartSysprep: the preflight script (read-only; every blocker fails with its own reason, sysprep never
  started); then intent (`Status.begin`), then the start script, which starts nothing when its marker
  exists. A connection lost after the start was sent is not failure: the next pass reads the state.
- CheckSysprep: the state script (read-only): ImageState, the start marker, the logs; a lost read is
  transient (retried with backoff), never a reason to start sysprep again. A guest that still cannot be
  read past spec.windows.sysprepTimeout is an unknown outcome: a person decides (the confirm annotation).
Nothing here starts the VM; a script's output is parsed in domain/windows.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from vmgen.domain import errors, windows, windows_plan
from vmgen.domain import ports as domain_ports
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName, StepState
from vmgen.domain.windows_actions import CheckSysprep, MarkSysprepUnknown, StartSysprep, ValidateWindows
from vmgen.domain.windows_spec import Transport
from vmgen.steps import copy_safety, prepare_windows_runcommand, prepare_windows_winrm
from vmgen.steps.base import Executor, Pass
from vmgen.steps.record import fail_with

__all__ = ["EXECUTORS"]

T = TypeVar("T")

SCRIPT_SECONDS = 300.0
"""Bound of one script (preflight, start, state): each returns in seconds on a healthy guest."""


async def validate(p: Pass, action: ValidateWindows) -> float:
    p.events.normal(Reason.VALIDATION_STARTED, f"Validating Windows VM {p.spec.vm.name}.")
    transport = p.spec.windows.transport
    await p.save(p.status.begin(StepName.VALIDATE, message=f"Checking transport {transport}.", at=p.at))
    if transport is Transport.WINRM:
        connection = await prepare_windows_winrm.read_secrets(p)
        message = (
            f"VM {p.spec.vm.name} runs Windows; sysprep runs over WinRM ({_endpoint(p)}) as"
            f" {connection.username}."
        )
    else:
        message = f"VM {p.spec.vm.name} runs Windows; sysprep runs through Azure Run Command."
    if p.spec.copied:  # before the snapshots: no disk of the copy may exist when this fails
        await copy_safety.check(p)
        message += " Its copy may boot in the subnet it is given."
    p.events.normal(Reason.VALIDATION_SUCCEEDED, message)
    await p.save(p.status.finish(StepName.VALIDATE, reason=None, message=message, at=p.at))
    return 0.0


async def start(p: Pass, action: StartSysprep) -> float | None:
    guest = await open_guest(p)
    report = _parsed(windows.parse_preflight, await _read(guest, windows.preflight_script()))
    verdict = windows_plan.after_preflight(report, vm_name=p.target.name)
    if isinstance(verdict, windows_plan.GiveUp):
        await fail_with(p, verdict.reason, verdict.message)
        return None
    if isinstance(verdict, windows_plan.Verified):
        return await _finish(p, Reason.DEPROVISION_VERIFIED, verdict.message)
    shutdown = _shuts_down(p)
    command = f"sysprep.exe /oobe /generalize /quiet /{'shutdown' if shutdown else 'quit'} /mode:vm"
    p.events.normal(
        Reason.SYSPREP_STARTED, f"Preflight passed; starting `{command}` ({p.spec.windows.transport})."
    )
    await p.save(p.status.begin(StepName.DEPROVISION, message=f"Starting `{command}`.", at=p.at))
    try:
        output = await guest.run(windows.sysprep_start_script(shutdown=shutdown), timeout=SCRIPT_SECONDS)
    except errors.DeprovisionOutcomeUnknown as exc:
        message = f"{exc.message} Reading ImageState and the start marker before anything else."
        p.events.warning(Reason.DEPROVISION_OUTCOME_UNKNOWN, message)
        await p.save(p.status.with_step(StepName.DEPROVISION, message=message))
        return 0.0
    except errors.TransientError as exc:  # nothing ran in the guest: the step may start again
        await p.save(p.status.not_run(StepName.DEPROVISION, message=exc.message))
        raise
    started = _parsed(windows.parse_sysprep_start, output)
    message = (
        f"`{command}` started; waiting for ImageState {windows.IMAGE_STATE_GENERALIZED}."
        if started.started
        else "Sysprep was started before (its start marker exists); it is not started again."
    )
    await p.save(p.status.with_step(StepName.DEPROVISION, message=message))
    return windows_plan.poll_delay(0.0)


async def check(p: Pass, action: CheckSysprep) -> float | None:
    guest = await open_guest(p)
    step = p.status.step(StepName.DEPROVISION)
    try:
        output = await _read(guest, windows.sysprep_state_script())
    except errors.TransientError as exc:
        overdue = step.started_at is not None and p.now() - step.started_at > p.spec.windows.sysprep_timeout
        if not overdue:
            raise  # retried with backoff: sysprep may simply be busy
        # Past sysprepTimeout and the guest still cannot be read: ask a person rather than retry forever.
        return await _mark_unknown(
            p, f"Sysprep's state could not be read past spec.windows.sysprepTimeout ({exc.message})"
        )
    state = _parsed(windows.parse_sysprep_state, output)
    verdict = windows_plan.judge(state, step=step, timeout=p.spec.windows.sysprep_timeout, now=p.now())
    match verdict:
        case windows_plan.Verified(message):
            return await _finish(p, Reason.SYSPREP_SUCCEEDED, message)
        case windows_plan.StillRunning(message, delay):
            await p.save(
                p.status.in_progress(
                    StepName.DEPROVISION, reason=Reason.SYSPREP_IN_PROGRESS, message=message, at=p.at
                )
            )
            return delay
        case windows_plan.NotStarted(message):
            p.events.normal(Reason.DEPROVISION_NOT_STARTED, message)
            await p.save(
                p.status.not_started(
                    StepName.DEPROVISION, reason=Reason.DEPROVISION_NOT_STARTED, message=message, at=p.at
                )
            )
            return 0.0
        case windows_plan.GiveUp(reason, message):
            await fail_with(p, reason, message)
            return None
    raise AssertionError(f"unexpected verdict {verdict!r}")


async def unknown(p: Pass, action: MarkSysprepUnknown) -> float:
    return await _mark_unknown(p, action.why)


async def _mark_unknown(p: Pass, why: str) -> float:
    """Say so in status (and once as a Warning Event) and ask a person; re-read now and then."""
    message = windows_plan.unknown_message(why, name=p.resource.name, namespace=p.resource.namespace)
    if p.status.step(StepName.DEPROVISION).state is not StepState.UNKNOWN:
        p.events.warning(Reason.DEPROVISION_OUTCOME_UNKNOWN, message)
    await p.save(p.status.unknown(StepName.DEPROVISION, message=message, at=p.at))
    return windows_plan.UNKNOWN_RECHECK_SECONDS


async def _read(guest: domain_ports.WindowsGuest, script: str) -> str:
    """A read-only script: a connection lost after it was sent changed nothing, so it is transient."""
    try:
        return await guest.run(script, timeout=SCRIPT_SECONDS)
    except errors.DeprovisionOutcomeUnknown as exc:
        raise errors.GuestUnreachable(exc.message) from exc


async def _finish(p: Pass, reason: Reason, message: str) -> float:
    p.events.normal(reason, message)
    await p.save(p.status.finish(StepName.DEPROVISION, reason=reason, message=message, at=p.at))
    return 0.0


async def open_guest(p: Pass) -> domain_ports.WindowsGuest:
    """The spec's transport to the guest (preflight mode uses it too)."""
    if p.spec.windows.transport is Transport.RUN_COMMAND:
        return await prepare_windows_runcommand.open_guest(p)
    return await prepare_windows_winrm.open_guest(p)


def _shuts_down(p: Pass) -> bool:
    if p.spec.windows.transport is Transport.RUN_COMMAND:
        return prepare_windows_runcommand.SHUTS_DOWN
    return prepare_windows_winrm.SHUTS_DOWN


def _endpoint(p: Pass) -> str:
    winrm = p.spec.windows.winrm
    return winrm.endpoint if winrm else ""


def _parsed(parse: Callable[[str], T], output: str) -> T:
    try:
        return parse(output)
    except windows.ScriptOutputError as exc:
        raise errors.PermanentError(
            f"The guest's answer to a vmgen script was unusable ({exc}); its output began: {output[:300]!r}",
            reason=Reason.WINDOWS_SCRIPT_FAILED,
        ) from None


EXECUTORS: dict[type, Executor] = {
    ValidateWindows: validate,
    StartSysprep: start,
    CheckSysprep: check,
    MarkSysprepUnknown: unknown,
}
