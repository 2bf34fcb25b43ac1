"""Performs what the planner decides, one side effect per pass, recorded in status around it.

A pass: parse the spec, claim the VM's lease, read the Azure credentials, observe the VM, ask
`planner.plan()` for one action and perform it. Irreversible actions follow cert-manager's habit:
write the intent (step Running, startedAt, attempts+1) to the status subresource and only then act;
write the checkpoint right after; return and let the next pass continue. The deallocate LRO's
continuation token is written as soon as Azure accepted the operation, before anything waits on it.
An operator killed at any point therefore finds in status either nothing (the action never ran), an
intent without checkpoint (verify, or resume from the token), or the checkpoint.

Errors come only from `vmgen.domain.errors`: permanent ones end the resource Failed with their reason
and message; transient ones are retried with capped exponential backoff (Retry-After wins) and shown
as Warning events and in the step's message; an uncertain deprovision is verified, then waits for a
person. Reads that deprovision needs (the SSH Secret, host keys) happen before its intent is written,
so that a failed read can never look like an interrupted irreversible action.

No secret value is ever put in status, events or logs: Secrets are read into `SshTarget` and
`AzureCredentials`, whose reprs hide them, and messages only name the Secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from vmgen.domain import errors, guest, model, planner, ports, retry
from vmgen.domain.reasons import ConditionType, Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import ConditionStatus, Phase, Status, StepName, StepState, VmInfo, merge_patch

SSH_KEY = "ssh-privatekey"
AZURE_KEYS = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
VERIFY_AGAIN_SECONDS = 5.0
"""How soon to look again while waagent is still deprovisioning (it takes seconds to a minute)."""
VERIFY_RETRIES = 3
"""Transient Run Command failures retried (with backoff) before the outcome is declared unknown."""
MAX_DEPROVISION_ATTEMPTS = 5
"""Dropped SSH runs of deprovision that Run Command proved never started, before the resource gives up."""

_STEP_CONDITIONS = {
    StepName.DEPROVISION: ConditionType.DEPROVISIONED,
    StepName.SHUTDOWN: ConditionType.DEALLOCATED,
    StepName.GENERALIZE: ConditionType.GENERALIZED,
}


_Client = tuple[ports.AzureCredentials | None, ports.Compute, contextlib.AsyncExitStack]
"""The open Azure client of a resource, the credentials it was made with, and how to close it."""


@dataclass(frozen=True)
class Resource:
    """What a pass needs from the VMGeneralization object (status is kept by the Workflow)."""

    namespace: str
    name: str
    generation: int | None
    spec: Mapping[str, Any]
    annotations: Mapping[str, str]

    @property
    def holder(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def confirmed(self) -> bool:
        return self.annotations.get(planner.CONFIRM_ANNOTATION, "").strip().lower() == "true"


@dataclass(frozen=True)
class Ports:
    compute: ports.ComputeFactory
    deprovisioner: ports.Deprovisioner
    secrets: ports.SecretReader
    locks: ports.VmLocks
    clock: ports.Clock


class Workflow:
    """Drives one VMGeneralization from `stored`, the status the API server holds when it starts.

    Afterwards `status` is what this object last wrote; a restart builds a new Workflow."""

    def __init__(
        self,
        *,
        ports: Ports,
        stored: Mapping[str, Any] | None,
        writer: ports.StatusWriter,
        events: ports.EventRecorder,
    ) -> None:
        self.status = Status.from_body(stored)
        self._stored = copy.deepcopy(dict(stored or {}))
        self._ports = ports
        self._writer = writer
        self._events = events
        self._failures = 0
        self._unstarted_runs = 0
        """Runs that dropped and that Run Command then proved never started (this process's count)."""
        self._resource: Resource | None = None
        self._vm_info: VmInfo | None = None
        self._client: _Client | None = None

    async def run_pass(self, resource: Resource) -> float | None:
        """Perform at most one side effect. Returns seconds until the next pass, None once terminal."""
        self._resource = resource
        self._vm_info = None
        if self.status.phase.terminal:
            await self.release(resource)
            return None
        try:
            delay = await self._attempt(resource)
        except errors.PermanentError as exc:
            await self._fail(exc.reason, exc.message)
            return None
        except errors.TransientError as exc:
            return await self._retry(exc)
        self._failures = 0
        return delay

    # -- one pass -----------------------------------------------------------------------------------

    async def _attempt(self, resource: Resource) -> float | None:
        spec = Spec.from_body(resource.spec)
        holder = await self._ports.locks.acquire(spec.vm.resource_id, resource.holder)
        now = self._now()
        if holder is not None:  # another resource holds the VM
            action = planner.plan(spec, self.status, None, now=now, confirmed=False, claimed_by=holder)
            return await self._perform(action, spec, None)
        compute = await self._compute(await self._azure_credentials(resource, spec))
        observation = await compute.observe(spec.vm)
        if observation is not None:
            self._vm_info = VmInfo(
                id=observation.id,
                os_type=observation.os_type.value if observation.os_type else "",
                power_state=observation.power_state.value,
                os_state="Generalized" if observation.generalized else "",
            )
        action = planner.plan(spec, self.status, observation, now=now, confirmed=resource.confirmed)
        return await self._perform(action, spec, compute)

    async def _compute(self, credentials: ports.AzureCredentials | None) -> ports.Compute:
        """One Azure client for the life of this resource (tokens are reused), renewed when the Secret's
        credentials change."""
        if self._client is None or self._client[0] != credentials:
            await self.aclose()
            stack = contextlib.AsyncExitStack()
            self._client = (
                credentials,
                await stack.enter_async_context(self._ports.compute(credentials)),
                stack,
            )
        return self._client[1]

    async def aclose(self) -> None:
        """Close the Azure client; the daemon calls this when it stops driving the resource."""
        client, self._client = self._client, None
        if client is not None:
            await client[2].aclose()

    async def _perform(
        self, action: planner.Action, spec: Spec, compute: ports.Compute | None
    ) -> float | None:
        match action:
            case planner.Done():
                return None
            case planner.Wait():
                return await self._wait(action)
            case planner.Fail():
                await self._fail(action.reason, action.message)
                return None
            case planner.Succeed():
                await self._succeed(spec)
                return None
            case planner.Adopt():
                await self._adopt(spec)
                return None
            case planner.Validate():
                return await self._validate(spec)
            case planner.Checkpoint():
                return await self._checkpoint(action.step, action.reason, action.message)
            case planner.MarkDeprovisionUnknown():
                return await self._deprovision_unknown(action.why)
            case planner.AwaitConfirmation():
                return planner.CONFIRMATION_RECHECK_SECONDS
            case planner.ConfirmDeprovision():
                return await self._confirm_deprovision()
        assert compute is not None, "only waits and failures are planned without an observation"
        match action:
            case planner.Deprovision():
                look = await self._look(spec, compute) if action.inspect else None
                if look is not None and (found := await self._judge_look(spec, look)) is not None:
                    return found
                return await self._deprovision(spec, compute, look)
            case planner.VerifyDeprovision():
                return await self._verify_deprovision(spec, compute)
            case planner.BeginDeallocate():
                return await self._begin_deallocate(spec, compute)
            case planner.ResumeDeallocate():
                return await self._resume_deallocate(spec, compute, action.token)
            case planner.Generalize():
                return await self._generalize(spec, compute)
        raise AssertionError(f"unhandled action {action!r}")

    # -- actions ------------------------------------------------------------------------------------

    async def _wait(self, action: planner.Wait) -> float:
        ready = self.status.condition(ConditionType.READY)
        if ready is None or ready.reason != action.reason:
            self._events.normal(action.reason, action.message)
        await self._save(
            self._ready(
                replace(self.status, phase=action.phase), ConditionStatus.FALSE, action.reason, action.message
            )
        )
        return action.delay

    async def _validate(self, spec: Spec) -> float:
        step = self.status.step(StepName.VALIDATE)
        self._events.normal(Reason.VALIDATION_STARTED, f"Validating VM {spec.vm.name}.")
        await self._save(self._begin(StepName.VALIDATE, step.attempts + 1, "Reading the guest's SSH Secret."))
        assert spec.ssh is not None  # the planner fails a Linux VM without spec.ssh
        await self._private_key(spec)
        message = f"VM {spec.vm.name} runs Linux; SSH Secret {spec.ssh.private_key_secret} is usable."
        self._events.normal(Reason.VALIDATION_SUCCEEDED, message)
        await self._save(self._finish(StepName.VALIDATE, None, message))
        return 0.0

    async def _adopt(self, spec: Spec) -> None:
        now = self._now()
        message = f"Azure reports VM {spec.vm.name} as generalized already; it is adopted as it is."
        status = self.status
        for name in (StepName.VALIDATE, *_STEP_CONDITIONS):
            step = status.step(name)
            if step.state.done:
                continue
            state = StepState.SUCCEEDED if name is StepName.VALIDATE else StepState.SKIPPED
            status = status.with_step(
                name,
                state=state,
                started_at=step.started_at or now,
                finished_at=now,
                message=message,
                continuation_token=None,
            )
            if name in _STEP_CONDITIONS:
                status = self._condition(
                    status,
                    _STEP_CONDITIONS[name],
                    ConditionStatus.TRUE,
                    Reason.ADOPTED_GENERALIZED_VM,
                    message,
                )
        status = replace(status, phase=Phase.SUCCEEDED, completed_at=now)
        status = self._ready(status, ConditionStatus.TRUE, Reason.ADOPTED_GENERALIZED_VM, message)
        self._events.normal(Reason.ADOPTED_GENERALIZED_VM, message)
        await self._save(status)
        await self._release_claim(spec)

    async def _look(self, spec: Spec, compute: ports.Compute) -> model.ScriptOutput | None:
        """The evidence script through Run Command before the first SSH run; None when Run Command is
        refused (policy, extension): the look is a safeguard, and SSH still works without it."""
        assert spec.ssh is not None
        try:
            return await compute.run_shell_script(spec.vm, guest.evidence_script(spec.ssh.username))
        except errors.PermanentError as exc:
            self._events.warning(
                exc.reason, f"Could not look at the guest through Run Command first ({exc.message})."
            )
            return None

    async def _judge_look(self, spec: Spec, output: model.ScriptOutput) -> float | None:
        """Re-check the precondition on that fresh read of the guest: None when nothing says it was
        deprovisioned (go ahead), else the delay of the pass that recorded what was found instead."""
        evidence = guest.parse_evidence(output.stdout)
        seen = evidence.describe() if evidence else "no usable report"
        match guest.look_before_first_run(evidence, delete_user=spec.delete_user):
            case guest.Verdict.DONE:
                message = (
                    f"The guest is deprovisioned already (seen via Run Command: {seen});"
                    " not running it again."
                )
                self._events.normal(Reason.DEPROVISION_VERIFIED, message)
                await self._save(self._finish(StepName.DEPROVISION, Reason.DEPROVISION_VERIFIED, message))
                return 0.0
            case guest.Verdict.IN_PROGRESS:
                # Recorded as Running (without an attempt of ours): from here the verify path watches it,
                # with its deadline, and asks a person if the agent stops answering.
                message = f"waagent is deprovisioning the guest already (seen via Run Command: {seen})."
                self._events.normal(Reason.DEPROVISION_IN_PROGRESS, message)
                status = self.status.with_step(
                    StepName.DEPROVISION,
                    state=StepState.RUNNING,
                    started_at=self.status.step(StepName.DEPROVISION).started_at or self._now(),
                    message=message,
                )
                status = replace(status, phase=Phase.DEPROVISIONING)
                await self._save(
                    self._ready(status, ConditionStatus.FALSE, Reason.DEPROVISION_IN_PROGRESS, message)
                )
                return VERIFY_AGAIN_SECONDS
        return None

    async def _deprovision(
        self, spec: Spec, compute: ports.Compute, look: model.ScriptOutput | None
    ) -> float:
        assert spec.ssh is not None
        target = model.SshTarget(
            host=spec.ssh.host,
            port=spec.ssh.port,
            username=spec.ssh.username,
            private_key=await self._private_key(spec),
            host_keys=spec.ssh.host_keys or await self._read_host_keys(spec, compute, look),
        )
        command = "waagent -deprovision+user" if spec.delete_user else "waagent -deprovision"
        step = self.status.step(StepName.DEPROVISION)
        self._events.normal(
            Reason.DEPROVISION_STARTED,
            f"Running `{command}` on {spec.ssh.host} over SSH (attempt {step.attempts + 1}).",
        )
        await self._save(
            self._begin(StepName.DEPROVISION, step.attempts + 1, f"Running `{command}` over SSH.")
        )
        try:
            await self._ports.deprovisioner.deprovision(
                target, delete_user=spec.delete_user, timeout=spec.timeouts.deprovision.total_seconds()
            )
        except errors.DeprovisionOutcomeUnknown as exc:
            message = f"{exc.message} Verifying the guest through Run Command before anything else."
            self._events.warning(Reason.DEPROVISION_OUTCOME_UNKNOWN, message)
            await self._save(self.status.with_step(StepName.DEPROVISION, message=message))
            return 0.0
        except errors.TransientError as exc:  # nothing ran in the guest: the step may start again
            await self._save(
                self.status.with_step(StepName.DEPROVISION, state=StepState.PENDING, message=exc.message)
            )
            raise
        message = f"`{command}` finished over SSH."
        self._events.normal(Reason.DEPROVISION_SUCCEEDED, message)
        await self._save(self._finish(StepName.DEPROVISION, Reason.DEPROVISION_SUCCEEDED, message))
        return 0.0

    async def _verify_deprovision(self, spec: Spec, compute: ports.Compute) -> float:
        assert spec.ssh is not None
        try:
            output = await compute.run_shell_script(spec.vm, guest.evidence_script(spec.ssh.username))
        except errors.VmgenError as exc:
            if isinstance(exc, errors.TransientError) and self._failures < VERIFY_RETRIES:
                raise
            return await self._deprovision_unknown(f"Run Command could not inspect the guest ({exc.message})")
        evidence = guest.parse_evidence(output.stdout)
        seen = evidence.describe() if evidence else "no usable report"
        match guest.judge(evidence, delete_user=spec.delete_user):
            case guest.Verdict.DONE:
                message = f"Deprovision verified via Run Command: {seen}."
                self._events.normal(Reason.DEPROVISION_VERIFIED, message)
                status = self._finish(StepName.DEPROVISION, Reason.DEPROVISION_VERIFIED, message)
                await self._save(self._resolve_unknown(status, Reason.DEPROVISION_VERIFIED, message))
                return 0.0
            case guest.Verdict.IN_PROGRESS:
                started = self.status.step(StepName.DEPROVISION).started_at
                if started is not None and self._now() - started > spec.timeouts.deprovision:
                    return await self._deprovision_unknown(
                        f"waagent is still running in the guest after spec.timeouts.deprovision ({seen})"
                    )
                message = f"waagent is still deprovisioning the guest (seen via Run Command: {seen})."
                status = self.status.with_step(StepName.DEPROVISION, state=StepState.RUNNING, message=message)
                status = self._resolve_unknown(status, Reason.DEPROVISION_IN_PROGRESS, message)
                await self._save(
                    self._ready(status, ConditionStatus.FALSE, Reason.DEPROVISION_IN_PROGRESS, message)
                )
                return VERIFY_AGAIN_SECONDS
            case guest.Verdict.NOT_STARTED:
                self._unstarted_runs += 1
                if self._unstarted_runs >= MAX_DEPROVISION_ATTEMPTS:
                    raise errors.DeprovisionFailed(
                        f"Deprovision was started {self._unstarted_runs} times over SSH and never got going:"
                        f" the connection dropped each time, and Run Command shows the guest intact ({seen})."
                        " The VM was not changed. Check the network path to spec.ssh.host, then recreate"
                        " this resource."
                    )
                message = (
                    f"Run Command shows the guest intact ({seen}): deprovision had not started, so it"
                    " is safe to run it."
                )
                self._events.normal(Reason.DEPROVISION_NOT_STARTED, message)
                status = self.status.with_step(StepName.DEPROVISION, state=StepState.PENDING, message=message)
                await self._save(self._resolve_unknown(status, Reason.DEPROVISION_NOT_STARTED, message))
                return retry.backoff(self._unstarted_runs)
        return await self._deprovision_unknown(f"The guest is partly deprovisioned ({seen})")

    async def _deprovision_unknown(self, why: str) -> float:
        """Say so in status and ask a person; the next passes keep re-verifying (read-only)."""
        resource = self._current_resource()
        message = (
            f"{why}. vmgen cannot tell whether `waagent -deprovision` finished and will not run it again"
            " blindly. Check the guest (for example through the serial console); if it was deprovisioned,"
            f' set the annotation {planner.CONFIRM_ANNOTATION}: "true" (kubectl annotate vmgen'
            f" {resource.name} -n {resource.namespace} {planner.CONFIRM_ANNOTATION}=true) and vmgen"
            " deallocates and generalizes it; otherwise delete this resource."
        )
        unknown = Reason.DEPROVISION_OUTCOME_UNKNOWN
        status = self.status.with_step(StepName.DEPROVISION, state=StepState.UNKNOWN, message=message)
        status = self._condition(
            status, ConditionType.DEPROVISION_OUTCOME_UNKNOWN, ConditionStatus.TRUE, unknown, message
        )
        status = self._condition(
            status, ConditionType.DEPROVISIONED, ConditionStatus.UNKNOWN, unknown, message
        )
        status = self._ready(
            replace(status, phase=Phase.DEPROVISIONING), ConditionStatus.FALSE, unknown, message
        )
        if self.status.step(StepName.DEPROVISION).state is not StepState.UNKNOWN:
            self._events.warning(unknown, message)
        await self._save(status)
        return planner.CONFIRMATION_RECHECK_SECONDS

    async def _confirm_deprovision(self) -> float:
        message = f"Deprovision confirmed by a person through the annotation {planner.CONFIRM_ANNOTATION}."
        self._events.normal(Reason.DEPROVISION_CONFIRMED, message)
        status = self._finish(StepName.DEPROVISION, Reason.DEPROVISION_CONFIRMED, message)
        await self._save(self._resolve_unknown(status, Reason.DEPROVISION_CONFIRMED, message))
        return 0.0

    async def _begin_deallocate(self, spec: Spec, compute: ports.Compute) -> float:
        step = self.status.step(StepName.SHUTDOWN)
        self._events.normal(Reason.SHUTDOWN_STARTED, f"Deallocating VM {spec.vm.name}.")
        await self._save(
            self._begin(StepName.SHUTDOWN, step.attempts + 1, "Asking Azure to deallocate the VM.")
        )
        token = await compute.begin_deallocate(spec.vm)
        await self._save(
            self.status.with_step(
                StepName.SHUTDOWN,
                continuation_token=token,
                message="Azure accepted the deallocate operation; waiting for it to finish.",
            )
        )
        return 0.0

    async def _resume_deallocate(
        self, spec: Spec, compute: ports.Compute, token: model.ContinuationToken
    ) -> float:
        step = self.status.step(StepName.SHUTDOWN)
        started = step.started_at or self._now()
        remaining = (started + spec.timeouts.shutdown - self._now()).total_seconds()
        try:
            await asyncio.wait_for(compute.wait_deallocate(spec.vm, token), timeout=max(1.0, remaining))
        except TimeoutError:
            return 0.0  # the planner fails the step with Timeout (and says what to do) on the next pass
        except errors.AzureOperationLost:
            # The operation ended Failed, or cannot be followed: forget it. The next pass reads the VM and
            # begins deallocate again unless Azure is already deallocating it (deallocate is safe to repeat).
            # Other transient errors (a poll that failed) keep the token: the operation may still be fine.
            await self._save(self.status.with_step(StepName.SHUTDOWN, continuation_token=None))
            raise
        return await self._checkpoint(StepName.SHUTDOWN, Reason.VM_DEALLOCATED, "Azure deallocated the VM.")

    async def _generalize(self, spec: Spec, compute: ports.Compute) -> float:
        step = self.status.step(StepName.GENERALIZE)
        self._events.normal(Reason.GENERALIZE_STARTED, f"Marking VM {spec.vm.name} as generalized.")
        await self._save(
            self._begin(StepName.GENERALIZE, step.attempts + 1, "Asking Azure to generalize the VM.")
        )
        try:
            await asyncio.wait_for(
                compute.generalize(spec.vm), timeout=spec.timeouts.generalize.total_seconds()
            )
        except TimeoutError:
            # Uncertain, not failed: the next pass reads the VM and either checkpoints a generalized VM or
            # generalizes again (safe to repeat); the planner ends the step with Timeout past its deadline.
            raise errors.AzureUnavailable(
                f"Azure did not answer generalize for VM {spec.vm.name} within spec.timeouts.generalize."
            ) from None
        return await self._checkpoint(
            StepName.GENERALIZE, Reason.VM_GENERALIZED, "Azure marked the VM generalized."
        )

    async def _checkpoint(self, step: StepName, reason: Reason, message: str) -> float:
        self._events.normal(reason, message)
        await self._save(self._finish(step, reason, message))
        return 0.0

    async def _succeed(self, spec: Spec) -> None:
        message = (
            f"VM {spec.vm.name} is deprovisioned, deallocated and generalized: capture an image from it."
            " It must never be started again."
        )
        self._events.normal(Reason.SUCCEEDED, message)
        status = replace(self.status, phase=Phase.SUCCEEDED, completed_at=self._now())
        await self._save(self._ready(status, ConditionStatus.TRUE, Reason.SUCCEEDED, message))
        await self._release_claim(spec)

    # -- failures and retries -----------------------------------------------------------------------

    async def _fail(self, reason: str, message: str) -> None:
        now = self._now()
        name = self.status.current_step or StepName.VALIDATE
        step = self.status.step(name)
        status = self.status.with_step(
            name,
            state=StepState.FAILED,
            started_at=step.started_at or now,
            finished_at=now,
            attempts=max(step.attempts, 1),
            message=message,
        )
        if name in _STEP_CONDITIONS:
            status = self._condition(status, _STEP_CONDITIONS[name], ConditionStatus.FALSE, reason, message)
        status = self._ready(
            replace(status, phase=Phase.FAILED, completed_at=now), ConditionStatus.FALSE, reason, message
        )
        self._events.warning(reason, message)
        await self._save(status)
        await self.release(self._current_resource())

    async def _retry(self, exc: errors.TransientError) -> float:
        self._failures += 1
        delay = retry.backoff(self._failures, retry_after=exc.retry_after)
        message = f"{exc.message} Retrying in {delay:g}s (retry {self._failures})."
        self._events.warning(exc.reason, message)
        name = self.status.current_step or StepName.VALIDATE
        status = self.status.with_step(name, message=message)
        if self.status.phase is Phase.PENDING and name is StepName.VALIDATE:
            status = replace(status, phase=Phase.VALIDATING)
        await self._save(self._ready(status, ConditionStatus.FALSE, exc.reason, message))
        return delay

    # -- reads --------------------------------------------------------------------------------------

    async def _azure_credentials(self, resource: Resource, spec: Spec) -> ports.AzureCredentials | None:
        if spec.credentials_secret is None:
            return None
        data = await self._ports.secrets.read(resource.namespace, spec.credentials_secret)
        values = {
            key: _secret_text(data, key, resource.namespace, spec.credentials_secret) for key in AZURE_KEYS
        }
        return ports.AzureCredentials(
            tenant_id=values["AZURE_TENANT_ID"],
            client_id=values["AZURE_CLIENT_ID"],
            client_secret=values["AZURE_CLIENT_SECRET"],
        )

    async def _private_key(self, spec: Spec) -> bytes:
        assert spec.ssh is not None
        resource = self._current_resource()
        data = await self._ports.secrets.read(resource.namespace, spec.ssh.private_key_secret)
        key = data.get(SSH_KEY)
        if not key:
            raise errors.SecretKeyMissing(
                f"Secret {resource.namespace}/{spec.ssh.private_key_secret} has no key {SSH_KEY}; create it"
                " with: kubectl create secret generic NAME --type=kubernetes.io/ssh-auth"
                " --from-file=ssh-privatekey=PATH"
            )
        return key

    async def _read_host_keys(
        self, spec: Spec, compute: ports.Compute, look: model.ScriptOutput | None
    ) -> tuple[str, ...]:
        """From the look's output when there was one (no second Run Command), else a fresh read."""
        assert spec.ssh is not None
        output = look or await compute.run_shell_script(spec.vm, guest.evidence_script(spec.ssh.username))
        keys = guest.parse_host_keys(output.stdout)
        if not keys:
            raise errors.HostKeysUnavailable(
                "Run Command returned no SSH host keys from /etc/ssh/ssh_host_*_key.pub of VM"
                f" {spec.vm.name}, so its SSH server cannot be verified. Pin them in spec.ssh.hostKeys."
            )
        return keys

    # -- status building ----------------------------------------------------------------------------

    def _begin(self, name: StepName, attempts: int, message: str) -> Status:
        now = self._now()
        step = self.status.step(name)
        status = self.status.with_step(
            name,
            state=StepState.RUNNING,
            started_at=step.started_at or now,
            finished_at=None,
            attempts=attempts,
            message=message,
            continuation_token=None,
        )
        if name in _STEP_CONDITIONS:
            status = self._condition(
                status, _STEP_CONDITIONS[name], ConditionStatus.FALSE, name.phase.value, message
            )
        return self._ready(
            replace(status, phase=name.phase), ConditionStatus.FALSE, name.phase.value, message
        )

    def _finish(self, name: StepName, reason: Reason | None, message: str) -> Status:
        now = self._now()
        step = self.status.step(name)
        status = self.status.with_step(
            name,
            state=StepState.SUCCEEDED,
            started_at=step.started_at or now,
            finished_at=now,
            message=message,
            continuation_token=None,
        )
        if name in _STEP_CONDITIONS and reason is not None:
            status = self._condition(status, _STEP_CONDITIONS[name], ConditionStatus.TRUE, reason, message)
        following = status.current_step
        phase = following.phase if following else status.phase
        return self._ready(
            replace(status, phase=phase),
            ConditionStatus.FALSE,
            phase.value,
            f"{message} Next: {phase.value}." if following else message,
        )

    def _resolve_unknown(self, status: Status, reason: Reason, message: str) -> Status:
        if status.condition(ConditionType.DEPROVISION_OUTCOME_UNKNOWN) is None:
            return status
        return self._condition(
            status, ConditionType.DEPROVISION_OUTCOME_UNKNOWN, ConditionStatus.FALSE, reason, message
        )

    def _ready(self, status: Status, value: ConditionStatus, reason: str, message: str) -> Status:
        return self._condition(status, ConditionType.READY, value, reason, message)

    def _condition(
        self, status: Status, kind: ConditionType, value: ConditionStatus, reason: str, message: str
    ) -> Status:
        return status.with_condition(
            kind,
            value,
            reason=reason,
            message=message,
            generation=self._current_resource().generation,
            now=self._now(),
        )

    async def _save(self, status: Status) -> None:
        """Persist `status` (only what changed) before the pass goes on; the in-memory copy follows."""
        resource = self._current_resource()
        status = replace(
            status,
            observed_generation=resource.generation,
            vm=self._vm_info or status.vm,
            started_at=status.started_at or self._now(),
        )
        body = status.to_body()
        patch = merge_patch(self._stored, body)
        if patch:
            await self._writer.patch_status(patch)
        self.status, self._stored = status, body

    async def release(self, resource: Resource) -> None:
        """Give up the VM's claim (when finished, and when the resource was deleted mid-job)."""
        self._resource = resource
        try:
            spec = Spec.from_body(resource.spec)
        except errors.InvalidSpec:
            return
        await self._release_claim(spec)

    async def _release_claim(self, spec: Spec) -> None:
        """Best effort, after the terminal status is written: a Lease whose holder finished (or is gone)
        is taken over by the next claimant, so a failed release must not touch the finished status."""
        try:
            await self._ports.locks.release(spec.vm.resource_id, self._current_resource().holder)
        except errors.VmgenError as exc:
            self._events.warning(exc.reason, f"Could not release the claim on the VM: {exc.message}")

    def _current_resource(self) -> Resource:
        assert self._resource is not None, "run_pass() sets the resource first"
        return self._resource

    def _now(self) -> datetime:
        return self._ports.clock.now().replace(microsecond=0)


def _secret_text(data: Mapping[str, bytes], key: str, namespace: str, name: str) -> str:
    value = data.get(key, b"").decode("utf-8", errors="replace").strip()
    if not value:
        raise errors.SecretKeyMissing(f"Secret {namespace}/{name} has no key {key} (or it is empty).")
    return value
