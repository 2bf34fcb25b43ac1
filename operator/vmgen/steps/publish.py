"""Publish: a gallery image version of the generalized VM, watched until every region has replicated.

The version's number comes from the spec, so a GET after a restart finds what an earlier pass began;
the version is made from the managed image when the job made one, else straight from the VM
(`storageProfile.source.virtualMachineId`). A version that Azure ended Failed (this attempt's or an earlier
one's) is deleted and made again. Replication that outlives a poll is normal: status.outputs.replication
shows each region's state meanwhile, and the step checkpoints once provisioning is Succeeded and the
aggregated replication Completed, bounded by spec.timeouts.capture. A version found by number counts
as this resource's only when its id is in status.outputs or its `vmgen-owner` tag names this resource;
another's version is neither adopted nor, when Failed, deleted: the step fails with ImageVersionExists.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from vmgen.domain import capture, errors, images, planner
from vmgen.domain.reasons import Reason
from vmgen.domain.status import StepName, StepState
from vmgen.steps.base import Executor, Pass


async def publish(p: Pass, action: planner.PublishVersion) -> float:
    ref = capture.version_ref(p.spec)
    wanted = p.spec.capture.gallery_image_version
    assert ref is not None and wanted is not None  # PUBLISH is planned only then
    version_id = capture.version_id(ref)
    if p.status.step(StepName.PUBLISH).state is not StepState.RUNNING:
        p.events.normal(Reason.REPLICATING, f"Publishing gallery image version {wanted.version}.")
        await p.save(
            p.status.begin(StepName.PUBLISH, message=f"Publishing version {wanted.version}.", at=p.at)
        )
    azure = p.azure()
    found = await azure.get_image_version(ref)
    _refuse_anothers(p, found, version_id)
    if found is not None and found.ready:
        message = f"Gallery image version {version_id} published and replicated to every target region."
        p.events.normal(Reason.IMAGE_VERSION_PUBLISHED, message)
        # Recorded here too: a version an earlier attempt made (tagged as ours) is adopted with its id.
        outputs = replace(p.status.outputs, gallery_image_version_id=version_id, replication=_regions(found))
        status = p.status.with_outputs(outputs)
        await p.save(
            status.finish(StepName.PUBLISH, reason=Reason.IMAGE_VERSION_PUBLISHED, message=message, at=p.at)
        )
        return 0.0
    if found is None or found.provisioning_state == "Failed":
        if found is not None:
            p.events.warning(
                Reason.CAPTURE_FAILED, f"Version {wanted.version} ended Failed; deleting and making it again."
            )
            await azure.delete_image_version(ref)
        source = p.status.outputs.managed_image_id or p.observed().id
        await azure.begin_image_version(
            ref,
            images.ImageVersionRequest(
                location=p.observed().location,
                source_id=source,
                target_regions=tuple(
                    images.TargetRegion(r.name, r.replica_count, r.storage_account_type)
                    for r in wanted.target_regions
                ),
                exclude_from_latest=wanted.exclude_from_latest,
                end_of_life=datetime.fromisoformat(wanted.end_of_life_date)
                if wanted.end_of_life_date
                else None,
                tags=capture.tags(p.resource.holder),
            ),
        )
        outputs = replace(p.status.outputs, gallery_image_version_id=version_id)
        await p.save(p.status.with_outputs(outputs))
    elif found.regions:
        outputs = replace(p.status.outputs, gallery_image_version_id=version_id, replication=_regions(found))
        await p.save(p.status.with_outputs(outputs).with_step(StepName.PUBLISH, message=_progress(found)))
    started = p.status.step(StepName.PUBLISH).started_at
    if started is not None and p.now() - started > p.spec.timeouts.capture:
        raise errors.PermanentError(
            f"Gallery image version {wanted.version} did not finish replicating within spec.timeouts.capture"
            f" ({_progress(found) if found else 'not found'}). Check it in Azure; the VM is generalized.",
            reason=Reason.TIMEOUT,
        )
    return capture.POLL_SECONDS


def _refuse_anothers(p: Pass, found: images.ImageVersion | None, version_id: str) -> None:
    """Never adopt, nor delete when Failed, a version that this resource did not make (not recorded in
    status, not tagged as ours): deletionPolicy Delete would later remove it too."""
    if found is None or p.status.outputs.gallery_image_version_id == version_id:
        return
    if not capture.made_by(found.tags, p.resource.holder):
        raise errors.PermanentError(
            f"Gallery image version {version_id} exists already and was not made by this resource (its tag"
            f" {capture.OWNER_TAG} does not name {p.resource.holder}). The VM is generalized: choose another"
            " spec.capture.galleryImageVersion.version, then recreate this resource; it adopts the VM.",
            reason=Reason.IMAGE_VERSION_EXISTS,
        )


def _regions(version: images.ImageVersion) -> dict[str, str]:
    return {r.region: r.state.value for r in version.regions}


def _progress(version: images.ImageVersion) -> str:
    regions = ", ".join(f"{r.region} {r.state.value}" for r in version.regions) or "no region reported yet"
    return f"Version {version.provisioning_state}, replication {version.aggregated.value}: {regions}."


EXECUTORS: dict[type, Executor] = {planner.PublishVersion: publish}
