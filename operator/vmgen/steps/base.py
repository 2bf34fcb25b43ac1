"""What every step executor gets: the resource, its parsed spec, the ports, and the status record.

A `Pass` is built fresh by the workflow for each pass and handed to exactly one executor; nothing of it
outlives the pass except what `Pass.save()` wrote to the status subresource. `Record` holds the status
as the API server has it and writes each new status as one merge patch of only what changed, so a
restart finds exactly what the last save wrote.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from vmgen.domain import api, copy_plan, errors, model
from vmgen.domain import ports as domain_ports
from vmgen.domain.spec import Spec
from vmgen.domain.status import Stamp, Status, StepName, VmInfo, merge_patch

__all__ = ["Executor", "Pass", "Ports", "Record", "Resource"]


@dataclass(frozen=True)
class Resource:
    """What a pass needs from the VMGeneralization object (its status is kept by `Record`)."""

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
        return self.annotations.get(api.CONFIRM_ANNOTATION, "").strip().lower() == "true"

    @property
    def approved(self) -> bool:
        return self.annotations.get(api.APPROVE_ANNOTATION, "").strip().lower() == "true"


@dataclass(frozen=True)
class Ports:
    compute: domain_ports.ComputeFactory
    deprovisioner: domain_ports.Deprovisioner
    secrets: domain_ports.SecretReader
    locks: domain_ports.VmLocks
    clock: domain_ports.Clock
    policy: domain_ports.NamespacePolicy
    windows: domain_ports.WindowsGuests


class Record:
    """The status subresource of one VMGeneralization: what it holds, and how it is changed."""

    def __init__(self, stored: Mapping[str, Any] | None, writer: domain_ports.StatusWriter) -> None:
        self.status = Status.from_body(stored)
        self._stored = copy.deepcopy(dict(stored or {}))
        self._writer = writer

    @property
    def unwritten(self) -> bool:
        """The API server holds no status of ours yet (a resource just applied)."""
        return not self._stored.get("phase")

    def plan(self, order: tuple[StepName, ...]) -> None:
        """This pass's spec decides the job's steps (it is not stored: the spec is)."""
        self.status = self.status.planned(order)

    async def save(self, status: Status, *, generation: int | None, vm: VmInfo | None, now: datetime) -> None:
        """Persist `status` (only what changed) before the pass goes on; the in-memory copy follows."""
        status = replace(
            status,
            observed_generation=generation,
            vm=vm or status.vm,
            started_at=status.started_at or now,
        )
        body = status.to_body()
        patch = merge_patch(self._stored, body)
        if patch:
            await self._writer.patch_status(patch)
        self.status, self._stored = status, body


@dataclass
class Pass:
    """One pass over one resource. `compute` is None when the pass was planned without Azure (the VM
    is claimed by another resource)."""

    resource: Resource
    spec: Spec
    ports: Ports
    events: domain_ports.EventRecorder
    record: Record
    compute: domain_ports.Compute | None = None
    vm: VmInfo | None = None
    observation: model.VmObservation | None = None
    """This pass's fresh read of the VM (None when it was not read: claimed by another, or missing)."""

    @property
    def status(self) -> Status:
        return self.record.status

    def now(self) -> datetime:
        return self.ports.clock.now().replace(microsecond=0)

    @property
    def at(self) -> Stamp:
        return Stamp(now=self.now(), generation=self.resource.generation)

    @property
    def target(self) -> model.VmRef:
        """The VM this pass acts on: spec.vm, or its copy once built (spec.source Copy)."""
        return copy_plan.target(self.spec, self.status)

    @property
    def target_label(self) -> str:
        """How messages name the target: "VM web-01", or "the copy web-01-copy of VM web-01"."""
        target = self.target
        if target == self.spec.vm:
            return f"VM {target.name}"
        return f"the copy {target.name} of VM {self.spec.vm.name}"

    @property
    def ssh_host(self) -> str:
        return copy_plan.ssh_host(self.spec, self.status)

    def observed(self) -> model.VmObservation:
        assert self.observation is not None, "the planner plans this action only for an observed VM"
        return self.observation

    def azure(self) -> domain_ports.Compute:
        assert self.compute is not None, "only waits and failures are planned without an observation"
        return self.compute

    async def save(self, status: Status) -> None:
        await self.record.save(status, generation=self.resource.generation, vm=self.vm, now=self.now())

    async def release_claim(self) -> None:
        """Best effort, after the terminal status is written: a Lease whose holder finished (or is gone)
        is taken over by the next claimant, so a failed release must not touch the finished status."""
        try:
            await self.ports.locks.release(self.spec.vm.resource_id, self.resource.holder)
        except errors.VmgenError as exc:
            self.events.warning(exc.reason, f"Could not release the claim on the VM: {exc.message}")


Executor = Callable[[Pass, Any], Awaitable[float | None]]
"""Performs one planner action; returns seconds until the next pass, None once terminal."""
