"""Linux guest preparation: `waagent -deprovision[+user] -force` over SSH, looked at and verified
through Run Command.

One pass: reach the guest (DNS + TCP, no Azure request: an unreachable guest is retried, bounded by
spec.timeouts.deprovision, under its own reason, and the next try reaches it before the pass reads
anything from Azure: `reach_before_observing`); look at the guest through Run Command (read-only, and
skipped while a recorded look is fresh) so that a guest deprovisioned already is never deprovisioned
again; read the SSH key and host keys (before the intent, so a failed read never looks like an
interrupted irreversible action); record intent; run waagent over SSH; checkpoint. A run whose
connection dropped is verified on the next pass from fresh evidence. Every judgement of the evidence is
made in `domain/deprovision.py`; this module only does the I/O and records the outcome. A verification's
Run Command has its continuation token recorded before anything waits for it, so an operator restarted
every few seconds follows the one Run Command instead of beginning a new one each time (issue 10 chaos).

Traps avoided: Linux deprovision through Run Command is unsupported by the agent (WALinuxAgent issue
3547: it kills its own runner), so Run Command only reads; host keys come from that authenticated
channel or from spec.ssh.hostKeys, never from the first connection.
"""

from __future__ import annotations

from vmgen.domain import deprovision, errors, guest, model, planner
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName
from vmgen.steps.base import Executor, Pass
from vmgen.steps.uncertain import mark_unknown


async def run(p: Pass, action: planner.Deprovision) -> float:
    delay = await _reach(p)
    if delay is not None:
        return delay
    fresh = deprovision.look_is_fresh(p.status.step(StepName.DEPROVISION), now=p.now())
    look = await _look(p) if action.inspect and not fresh else None
    if look is not None:
        evidence = guest.parse_evidence(look.stdout)
        found = deprovision.after_look(evidence, delete_user=p.spec.delete_user)
        if not isinstance(found, deprovision.Proceed):
            return await _record(p, found, announce=True)
        keys = guest.parse_host_keys(look.stdout)
        await p.save(p.status.looked(StepName.DEPROVISION, host_keys=keys, at=p.at))
    return await _deprovision(p, look)


async def reach_before_observing(p: Pass) -> float | None:
    """The pass's first act when the last try could not reach the guest: while it still cannot be
    reached, the pass ends here, having asked Azure nothing. None: go on as usual."""
    if p.spec.ssh is None or p.status.current_step is not StepName.DEPROVISION:
        return None
    if not deprovision.reach_first(p.status.step(StepName.DEPROVISION)):
        return None
    return await _reach(p)


async def _reach(p: Pass) -> float | None:
    ssh = p.spec.ssh
    assert ssh is not None
    try:
        await p.ports.deprovisioner.reach(p.ssh_host, ssh.port)  # the copy's address under source Copy
    except errors.GuestUnreachable as exc:
        return await _unreachable(p, exc)
    return None


async def _unreachable(p: Pass, exc: errors.GuestUnreachable) -> float:
    ssh = p.spec.ssh
    assert ssh is not None
    verdict = deprovision.after_unreachable(
        p.status.step(StepName.DEPROVISION),
        unresolvable=isinstance(exc, errors.GuestHostUnresolvable),
        detail=exc.message,
        host=p.ssh_host,
        port=ssh.port,
        timeout=p.spec.timeouts.deprovision,
        now=p.now(),
    )
    if isinstance(verdict, deprovision.GiveUp):
        raise errors.DeprovisionFailed(verdict.message, reason=verdict.reason)
    p.events.warning(verdict.reason, f"{verdict.message} Retrying in {verdict.delay:g}s.")
    await p.save(
        p.status.unreachable(StepName.DEPROVISION, reason=verdict.reason, message=verdict.message, at=p.at)
    )
    return verdict.delay


async def verify(p: Pass, action: planner.VerifyDeprovision) -> float:
    ssh = p.spec.ssh
    assert ssh is not None
    step = p.status.step(StepName.DEPROVISION)
    try:
        output = await _follow_verification(p, guest.evidence_script(ssh.username))
    except errors.VmgenError as exc:
        transient = isinstance(exc, errors.TransientError)
        if isinstance(
            deprovision.after_inspection_error(transient=transient, step=step, message=exc.message),
            deprovision.RetryInspection,
        ):
            raise
        return await mark_unknown(p, f"Run Command could not inspect the guest ({exc.message})")
    deadline = step.started_at + p.spec.timeouts.deprovision if step.started_at else None
    verdict = deprovision.after_verify(
        guest.parse_evidence(output.stdout),
        step=step,
        delete_user=p.spec.delete_user,
        deadline=deadline,
        now=p.now(),
    )
    return await _record(p, verdict)


async def _follow_verification(p: Pass, script: str) -> model.ScriptOutput:
    """The verification's Run Command: begun and its token recorded before waiting, or, after a restart,
    followed from the recorded token; forgotten once its output is in (the next verification is new)."""
    step = p.status.step(StepName.DEPROVISION)
    if not deprovision.records_verification(step):  # a recheck while waiting for a person writes nothing
        return await p.azure().run_shell_script(p.target, script)
    token = deprovision.verification_in_flight(step)
    if token is None:
        token = await p.azure().begin_shell_script(p.target, script)
        await p.save(p.status.with_token(StepName.DEPROVISION, token))
    try:
        output = await p.azure().wait_shell_script(p.target, token)
    except errors.VmgenError:  # failed, or cannot be followed: the check only reads, so the next is new
        await p.save(p.status.with_token(StepName.DEPROVISION, None))
        raise
    await p.save(p.status.with_token(StepName.DEPROVISION, None))
    return output


async def _record(p: Pass, verdict: deprovision.Verdict, *, announce: bool = False) -> float:
    """Write what the evidence showed; `announce` posts an Event for a deprovision first seen running."""
    match verdict:
        case deprovision.Verified(message):
            p.events.normal(Reason.DEPROVISION_VERIFIED, message)
            await p.save(
                p.status.finish(
                    StepName.DEPROVISION, reason=Reason.DEPROVISION_VERIFIED, message=message, at=p.at
                )
            )
            return 0.0
        case deprovision.StillRunning(message, delay):
            if announce:
                p.events.normal(Reason.DEPROVISION_IN_PROGRESS, message)
            await p.save(
                p.status.in_progress(
                    StepName.DEPROVISION, reason=Reason.DEPROVISION_IN_PROGRESS, message=message, at=p.at
                )
            )
            return delay
        case deprovision.NotStarted(message, delay):
            p.events.normal(Reason.DEPROVISION_NOT_STARTED, message)
            await p.save(
                p.status.not_started(
                    StepName.DEPROVISION, reason=Reason.DEPROVISION_NOT_STARTED, message=message, at=p.at
                )
            )
            return delay
        case deprovision.GiveUp(reason, message):
            raise errors.DeprovisionFailed(message, reason=reason)
        case deprovision.Unknown(why):
            return await mark_unknown(p, why)


async def _look(p: Pass) -> model.ScriptOutput | None:
    """The evidence script through Run Command before the first SSH run; None when Run Command is
    refused (policy, extension): the look is a safeguard, and SSH still works without it."""
    ssh = p.spec.ssh
    assert ssh is not None
    try:
        return await p.azure().run_shell_script(p.target, guest.evidence_script(ssh.username))
    except errors.PermanentError as exc:
        p.events.warning(
            exc.reason, f"Could not look at the guest through Run Command first ({exc.message})."
        )
        return None


async def _deprovision(p: Pass, look: model.ScriptOutput | None) -> float:
    ssh = p.spec.ssh
    assert ssh is not None
    target = model.SshTarget(
        host=p.ssh_host,
        port=ssh.port,
        username=ssh.username,
        private_key=await p.ports.secrets.ssh_private_key(p.resource.namespace, ssh.private_key_secret),
        host_keys=ssh.host_keys or await _host_keys(p, look),
    )
    command = "waagent -deprovision+user" if p.spec.delete_user else "waagent -deprovision"
    attempt = p.status.step(StepName.DEPROVISION).attempts + 1
    p.events.normal(
        Reason.DEPROVISION_STARTED, f"Running `{command}` on {p.ssh_host} over SSH (attempt {attempt})."
    )
    await p.save(p.status.begin(StepName.DEPROVISION, message=f"Running `{command}` over SSH.", at=p.at))
    try:
        await p.ports.deprovisioner.deprovision(
            target, delete_user=p.spec.delete_user, timeout=p.spec.timeouts.deprovision.total_seconds()
        )
    except errors.DeprovisionOutcomeUnknown as exc:
        message = f"{exc.message} Verifying the guest through Run Command before anything else."
        p.events.warning(Reason.DEPROVISION_OUTCOME_UNKNOWN, message)
        await p.save(p.status.with_step(StepName.DEPROVISION, message=message))
        return 0.0
    except errors.GuestUnreachable as exc:  # reached a moment ago, not now: nothing ran
        await p.save(p.status.not_run(StepName.DEPROVISION, message=exc.message))
        return await _unreachable(p, exc)
    except errors.TransientError as exc:  # nothing ran in the guest: the step may start again
        await p.save(p.status.not_run(StepName.DEPROVISION, message=exc.message))
        raise
    message = f"`{command}` finished over SSH."
    p.events.normal(Reason.DEPROVISION_SUCCEEDED, message)
    await p.save(
        p.status.finish(StepName.DEPROVISION, reason=Reason.DEPROVISION_SUCCEEDED, message=message, at=p.at)
    )
    return 0.0


async def _host_keys(p: Pass, look: model.ScriptOutput | None) -> tuple[str, ...]:
    """From this pass's look, else from a fresh recorded look (no second Run Command), else a new read."""
    ssh = p.spec.ssh
    assert ssh is not None
    step = p.status.step(StepName.DEPROVISION)
    if look is None and step.host_keys and deprovision.look_is_fresh(step, now=p.now()):
        return step.host_keys
    output = look or await p.azure().run_shell_script(p.target, guest.evidence_script(ssh.username))
    keys = guest.parse_host_keys(output.stdout)
    if not keys:
        raise errors.HostKeysUnavailable(
            "Run Command returned no SSH host keys from /etc/ssh/ssh_host_*_key.pub of VM"
            f" {p.spec.vm.name}, so its SSH server cannot be verified. Pin them in spec.ssh.hostKeys."
        )
    return keys


EXECUTORS: dict[type, Executor] = {planner.Deprovision: run, planner.VerifyDeprovision: verify}
