"""The pass: observe -> plan -> perform one action -> record. Nothing else lives here.

```
  run_pass(resource)
     | parse spec ----------------------------- InvalidSpec -> Failed
     | no status yet? write Pending (Accepted) before anything that can wait
     | namespace policy (domain/policy.py) ----- refused -> Failed, no claim, no Azure call
     | claim the VM's Lease ------------------- held by another -> planner says Wait
     | the guest unreachable last time? reach it first -- still not: retry, no Azure request
     | Azure client for the Secret's credentials (a lease on the account shared per credential)
     | observe the VM (fresh GET + instance view)
     | planner.plan(spec, status, observation)  pure: exactly one action
     | steps.perform(pass, action)              one step module's I/O, status saved around it
     v
  seconds until the next pass (None once terminal)
```

Errors come only from `vmgen.domain.errors`: permanent ones end the resource Failed with their reason
and message (a 403 from the Kubernetes API only after `retry.FORBIDDEN_RETRIES` in a row: a restarted
API server refuses everyone until its RBAC caches have synced); transient ones are counted on the
current step (`retries`, persisted, so a restart keeps the backoff) and retried with capped exponential
backoff (Retry-After wins), shown as Warning events and in the step's message. No secret value is ever
put in status, events or logs: Secrets are read into `SshTarget` and `AzureCredentials`, whose reprs
hide them, and messages only name the Secret.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vmgen import steps
from vmgen.domain import errors, planner, policy, ports, retry, secrets
from vmgen.domain.spec import Spec
from vmgen.domain.status import Stamp, Status, StepName, VmInfo
from vmgen.steps import prepare_linux, record
from vmgen.steps.base import Pass, Ports, Record, Resource

__all__ = ["ACCEPTED", "Ports", "Resource", "Workflow"]

ACCEPTED = (
    "Accepted: checking the spec, claiming the VM and reading it from Azure next"
    " (with many jobs in flight this waits for a free ARM request slot)."
)


@dataclass
class _AzureClient:
    """The open Azure client of a resource, the credentials it was made with, and how to close it."""

    credentials: ports.AzureCredentials | None
    compute: ports.Compute
    stack: contextlib.AsyncExitStack


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
        self._ports = ports
        self._record = Record(stored, writer)
        self._events = events
        self._client: _AzureClient | None = None

    @property
    def status(self) -> Status:
        return self._record.status

    async def run_pass(self, resource: Resource) -> float | None:
        """Perform at most one side effect. Returns seconds until the next pass, None once terminal."""
        if self.status.phase.terminal:
            await self.release(resource)
            return None
        try:
            spec = Spec.from_body(resource.spec)
        except errors.InvalidSpec as exc:
            self._events.warning(exc.reason, exc.message)
            stamp = Stamp(now=self._ports.clock.now().replace(microsecond=0), generation=resource.generation)
            status = self.status.fail(exc.reason, exc.message, at=stamp)
            await self._record.save(status, generation=resource.generation, vm=None, now=stamp.now)
            return None
        self._record.plan(spec.steps)
        p = Pass(resource=resource, spec=spec, ports=self._ports, events=self._events, record=self._record)
        try:
            if self._record.unwritten:  # say so before anything that can wait (issue 10: within 1 s)
                await p.save(self.status.accepted(ACCEPTED, at=p.at))
            return await self._attempt(p)
        except errors.PermanentError as exc:
            if isinstance(exc, errors.KubernetesForbidden) and not retry.forbidden_is_final(_retries(p)):
                return await _retry(p, exc)  # maybe an API server whose RBAC caches are still syncing
            message = exc.message
            if isinstance(exc, errors.AzureAuthenticationFailed):
                message += secrets.credential_hint(
                    namespace=resource.namespace, secret=spec.credentials_secret
                )
            await record.fail_with(p, exc.reason, message)
            return None
        except errors.TransientError as exc:
            return await _retry(p, exc)

    async def _attempt(self, p: Pass) -> float | None:
        # The cluster admin's policy first: a refused resource claims nothing and calls no Azure API.
        rules = await self._ports.policy.rules(p.resource.namespace)
        policy.check(rules, p.spec.vm, uses_operator_identity=p.spec.credentials_secret is None)
        holder = await self._ports.locks.acquire(p.spec.vm.resource_id, p.resource.holder)
        if holder is not None:  # another resource holds the VM
            action = planner.plan(p.spec, self.status, None, now=p.now(), confirmed=False, claimed_by=holder)
            return await steps.perform(p, action)
        if (delay := await prepare_linux.reach_before_observing(p)) is not None:
            return delay  # the guest still cannot be reached: this try cost no Azure request
        p.compute = await self._compute(await self._azure_credentials(p))
        observation = await p.compute.observe(p.target)  # the copy, once the steps act on it
        if observation is not None:
            p.observation = observation
            if p.target == p.spec.vm:  # status.vm describes the source; outputs.copy the copy
                p.vm = VmInfo.observed(observation)
        action = planner.plan(
            p.spec,
            self.status,
            observation,
            now=p.now(),
            confirmed=p.resource.confirmed,
            approved=p.resource.approved,
        )
        return await steps.perform(p, action)

    async def _azure_credentials(self, p: Pass) -> ports.AzureCredentials | None:
        if p.spec.credentials_secret is None:
            return None
        return await self._ports.secrets.azure_credentials(p.resource.namespace, p.spec.credentials_secret)

    async def _compute(self, credentials: ports.AzureCredentials | None) -> ports.Compute:
        """One Azure client for the life of this resource (tokens are reused), renewed when the Secret's
        credentials change."""
        if self._client is None or self._client.credentials != credentials:
            await self.aclose()
            stack = contextlib.AsyncExitStack()
            compute = await stack.enter_async_context(self._ports.compute(credentials))
            self._client = _AzureClient(credentials, compute, stack)
        return self._client.compute

    async def aclose(self) -> None:
        """Close the Azure client; the daemon calls this when it stops driving the resource."""
        client, self._client = self._client, None
        if client is not None:
            await client.stack.aclose()

    async def clean_up(self, resource: Resource) -> None:
        """deletionPolicy Delete: remove what this resource created (never the VM). Deletes are idempotent,
        so a retry after a partial clean-up simply deletes again."""
        spec = Spec.from_body(resource.spec)
        p = Pass(resource=resource, spec=spec, ports=self._ports, events=self._events, record=self._record)
        p.compute = await self._compute(await self._azure_credentials(p))
        await steps.cleanup.delete_created(p)

    async def release(self, resource: Resource) -> None:
        """Give up the VM's claim (when finished, and when the resource was deleted mid-job)."""
        try:
            spec = Spec.from_body(resource.spec)
        except errors.InvalidSpec:
            return
        p = Pass(resource=resource, spec=spec, ports=self._ports, events=self._events, record=self._record)
        await p.release_claim()


def _retries(p: Pass) -> int:
    """Transient failures in a row of the current step (persisted: a restart keeps counting)."""
    return p.status.step(p.status.current_step or StepName.VALIDATE).retries


async def _retry(p: Pass, exc: errors.VmgenError) -> float:
    name = p.status.current_step or StepName.VALIDATE
    failures = p.status.step(name).retries + 1
    retry_after = exc.retry_after if isinstance(exc, errors.TransientError) else None
    delay = retry.backoff(failures, retry_after=retry_after)
    message = f"{exc.message} Retrying in {delay:g}s (retry {failures})."
    p.events.warning(exc.reason, message)
    await p.save(p.status.retrying(exc.reason, message, at=p.at))
    return delay
