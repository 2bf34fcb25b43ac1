"""Validation: the guest's credentials are readable before anything touches the VM.

Azure's side (VM exists, OS type, power state, agent) was already judged by the planner on a fresh read;
what is left is I/O: reading the Secret the next step will need, and the capture targets (the image
definition fits the VM, the version is free), so that a missing Secret or a mismatched definition fails
here, with the VM untouched, and never looks like an interrupted irreversible action later.
"""

from __future__ import annotations

from vmgen.domain import capture, errors, model, planner
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName
from vmgen.steps.base import Executor, Pass


async def validate(p: Pass, action: planner.Validate) -> float:
    p.events.normal(Reason.VALIDATION_STARTED, f"Validating VM {p.spec.vm.name}.")
    await p.save(p.status.begin(StepName.VALIDATE, message="Reading the guest's SSH Secret.", at=p.at))
    ssh = p.spec.ssh
    assert ssh is not None  # the planner fails a Linux VM without spec.ssh
    await p.ports.secrets.ssh_private_key(p.resource.namespace, ssh.private_key_secret)
    if findings := await capture_findings(p, p.observed()):
        raise errors.PermanentError(" ".join(f.message for f in findings), reason=findings[0].reason)
    message = f"VM {p.spec.vm.name} runs Linux; SSH Secret {ssh.private_key_secret} is usable."
    if p.spec.capture.wanted:
        message += " The capture targets fit the VM."
    p.events.normal(Reason.VALIDATION_SUCCEEDED, message)
    await p.save(p.status.finish(StepName.VALIDATE, reason=None, message=message, at=p.at))
    return 0.0


async def capture_findings(p: Pass, vm: model.VmObservation) -> tuple[capture.Finding, ...]:
    """The capture targets, checked against Azure before anything touches the VM (reads only)."""
    findings = capture.managed_image_findings(p.spec, vm)
    wanted, ref = p.spec.capture.gallery_image_version, capture.version_ref(p.spec)
    if wanted is None or ref is None:
        return findings
    azure = p.azure()
    definition = await azure.get_image_definition(ref.definition)
    findings += capture.definition_findings(wanted, vm, definition)
    existing = await azure.get_image_version(ref)
    owned = p.status.outputs.gallery_image_version_id == capture.version_id(ref) or (
        existing is not None and capture.made_by(existing.tags, p.resource.holder)
    )
    return findings + capture.version_findings(wanted, existing, owned=owned)


EXECUTORS: dict[type, Executor] = {planner.Validate: validate}
