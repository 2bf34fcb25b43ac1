"""Capture: a managed image of the generalized VM (spec.capture.managedImage).

The image's name comes from the spec, so a GET tells a pass whether an earlier one (before a restart)
already began it: nothing is created twice. A pass begins the image when it is missing (and again when
Azure ended it Failed, after deleting that one), records its id in status.outputs.managedImageId as soon as
Azure accepted it, and checkpoints once it is Succeeded; meanwhile it looks again every few seconds,
bounded by spec.timeouts.capture. The VM's Hyper-V generation is carried over, as Azure requires.
An image found by name counts as this resource's only when its id is in status.outputs or its
`vmgen-owner` tag names this resource (a recreated resource adopts its earlier attempt's image, and
records the id); anyone else's image of that name fails the step instead of being claimed.
"""

from __future__ import annotations

from dataclasses import replace

from vmgen.domain import capture, errors, images, planner
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName, StepState
from vmgen.steps.base import Executor, Pass


async def capture_image(p: Pass, action: planner.CaptureImage) -> float:
    ref = capture.managed_image_ref(p.spec)
    assert ref is not None and p.spec.capture.managed_image is not None  # CAPTURE is planned only then
    image_id = capture.managed_image_id(ref)
    if p.status.step(StepName.CAPTURE).state is not StepState.RUNNING:
        p.events.normal(Reason.CAPTURING, f"Creating managed image {ref.name} from {p.target_label}.")
        await p.save(p.status.begin(StepName.CAPTURE, message=f"Creating managed image {ref.name}.", at=p.at))
    azure = p.azure()
    found = await azure.get_managed_image(ref)
    recorded, owner = p.status.outputs.managed_image_id, p.resource.holder
    if findings := capture.image_findings(image_id, found, recorded=recorded, owner=owner):
        raise errors.PermanentError(findings[0].message, reason=findings[0].reason)
    if found is not None and found.provisioning_state == "Succeeded":
        message = f"Managed image {image_id} created from {p.target_label}."
        p.events.normal(Reason.MANAGED_IMAGE_CREATED, message)
        # Recorded here too: an image an earlier attempt made (tagged as ours) is adopted with its id.
        status = p.status.with_outputs(replace(p.status.outputs, managed_image_id=image_id))
        await p.save(
            status.finish(StepName.CAPTURE, reason=Reason.MANAGED_IMAGE_CREATED, message=message, at=p.at)
        )
        return 0.0
    if found is None or found.provisioning_state == "Failed":
        if found is not None:
            await azure.delete_managed_image(ref)
        vm = p.observed()
        await azure.begin_managed_image(
            ref,
            images.ManagedImageRequest(
                location=p.spec.capture.managed_image.location or vm.location,
                source_vm=vm.id,
                hyper_v_generation=vm.hyper_v_generation or "V1",
                zone_resilient=p.spec.capture.managed_image.zone_resilient,
                tags=capture.tags(p.resource.holder),
            ),
        )
        await p.save(p.status.with_outputs(replace(p.status.outputs, managed_image_id=image_id)))
    started = p.status.step(StepName.CAPTURE).started_at
    if started is not None and p.now() - started > p.spec.timeouts.capture:
        raise errors.PermanentError(
            f"Managed image {ref.name} was not created within spec.timeouts.capture. The VM is generalized;"
            " check the image in Azure, then recreate this resource (it adopts the generalized VM).",
            reason=Reason.TIMEOUT,
        )
    return capture.POLL_SECONDS


EXECUTORS: dict[type, Executor] = {planner.CaptureImage: capture_image}
