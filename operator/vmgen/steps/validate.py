"""Validation: the guest's credentials are readable before anything touches the VM.

Azure's side (VM exists, OS type, power state, agent) was already judged by the planner on a fresh read;
what is left is I/O: reading the Secret the next step will need, so that a missing Secret or key fails
here, with the VM untouched, and never looks like an interrupted irreversible action later.
"""

from __future__ import annotations

from vmgen.domain import planner
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName
from vmgen.steps.base import Executor, Pass


async def validate(p: Pass, action: planner.Validate) -> float:
    p.events.normal(Reason.VALIDATION_STARTED, f"Validating VM {p.spec.vm.name}.")
    await p.save(p.status.begin(StepName.VALIDATE, message="Reading the guest's SSH Secret.", at=p.at))
    ssh = p.spec.ssh
    assert ssh is not None  # the planner fails a Linux VM without spec.ssh
    await p.ports.secrets.ssh_private_key(p.resource.namespace, ssh.private_key_secret)
    message = f"VM {p.spec.vm.name} runs Linux; SSH Secret {ssh.private_key_secret} is usable."
    p.events.normal(Reason.VALIDATION_SUCCEEDED, message)
    await p.save(p.status.finish(StepName.VALIDATE, reason=None, message=message, at=p.at))
    return 0.0


EXECUTORS: dict[type, Executor] = {planner.Validate: validate}
