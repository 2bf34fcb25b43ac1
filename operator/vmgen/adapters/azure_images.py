"""Capture through the real async SDK: snapshots, managed images, image definitions, gallery image versions.

`AzureImages(session)` implements `images.ImageCapture` on an `azure.AzureSession` (the credential and
clients of an `AzureCompute`: `AzureImages(compute.session)`), turning SDK objects into `domain.images`
values and SDK exceptions into `errors` through `azure.translate`.

Traps it avoids:
- Every creation is an LRO whose continuation token is returned right after ARM accepted it, so the
  workflow records it before waiting; `wait_*` resumes with the same `begin_*` call and
  `continuation_token` (the body is then not sent again). A token that cannot be resumed, or an
  operation that ended Failed with a retryable code, is `AzureOperationLost`: read the resource again.
- Azure answers a gallery image version whose source does not match its definition (Hypervisor
  generation, security type, OS state) with code `Conflict`, which the shared table treats as "another
  operation is in progress, retry". Here, where a Conflict on a PUT of a version or image is a mismatch
  that no retry fixes, it becomes `AzureOperationNotAllowed` with Azure's text.
- Deletes begin and wait in one call: ARM's DELETE is idempotent (204 for a missing resource).
- Replication is read with `$expand=ReplicationStatus`; without it Azure reports no per-region state.
- An image definition's security type lives in its `features` (`SecurityType`); none means Standard.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.polling import AsyncLROPoller
from azure.mgmt.compute import models as azmodels
from azure.mgmt.compute.aio import ComputeManagementClient

from vmgen.adapters import azure
from vmgen.domain import errors, images, model

__all__ = ["AzureImages", "lost_or_failed", "os_type_of", "resume"]

_T = TypeVar("_T")
_MISSING = frozenset({"ResourceNotFound", "NotFound", "ParentResourceNotFound", "ResourceGroupNotFound"})


class AzureImages:
    """`images.ImageCapture` on a shared `AzureSession` (which its owner closes)."""

    def __init__(self, session: azure.AzureSession) -> None:
        self._session = session

    # ---- snapshots --------------------------------------------------------------------------------

    async def begin_snapshot(
        self,
        ref: images.ResourceRef,
        *,
        location: str,
        disk_id: str,
        incremental: bool,
        tags: images.Tags = (),
    ) -> model.ContinuationToken:
        body = azmodels.Snapshot(
            {
                "location": location,
                "tags": dict(tags),
                "properties": {
                    "creationData": {"createOption": "Copy", "sourceResourceId": disk_id},
                    "incremental": incremental,
                },
            }
        )
        with self._session.translated():
            poller = await self._compute(ref).snapshots.begin_create_or_update(
                ref.resource_group, ref.name, body, polling_interval=self._poll()
            )
        return model.ContinuationToken(poller.continuation_token())

    async def wait_snapshot(self, ref: images.ResourceRef, token: model.ContinuationToken) -> images.Snapshot:
        snapshots = self._compute(ref).snapshots
        found = await resume(
            self._session,
            "snapshot",
            lambda: snapshots.begin_create_or_update(
                ref.resource_group,
                ref.name,
                azmodels.Snapshot({}),
                continuation_token=token,
                polling_interval=self._poll(),
            ),
        )
        return _snapshot(found)

    async def get_snapshot(self, ref: images.ResourceRef) -> images.Snapshot | None:
        found = await self._get(lambda: self._compute(ref).snapshots.get(ref.resource_group, ref.name))
        return _snapshot(found) if found is not None else None

    async def delete_snapshot(self, ref: images.ResourceRef) -> None:
        await self._delete(lambda: self._compute(ref).snapshots.begin_delete(ref.resource_group, ref.name))

    # ---- managed images ---------------------------------------------------------------------------

    async def begin_managed_image(
        self, ref: images.ResourceRef, request: images.ManagedImageRequest
    ) -> model.ContinuationToken:
        body = azmodels.Image(
            {
                "location": request.location,
                "tags": dict(request.tags),
                "properties": {
                    "sourceVirtualMachine": {"id": request.source_vm},
                    "hyperVGeneration": request.hyper_v_generation,
                    "storageProfile": {"zoneResilient": request.zone_resilient},
                },
            }
        )
        with _mismatches_refused(), self._session.translated():
            poller = await self._compute(ref).images.begin_create_or_update(
                ref.resource_group, ref.name, body, polling_interval=self._poll()
            )
        return model.ContinuationToken(poller.continuation_token())

    async def wait_managed_image(
        self, ref: images.ResourceRef, token: model.ContinuationToken
    ) -> images.ManagedImage:
        operations = self._compute(ref).images
        found = await resume(
            self._session,
            "managed image",
            lambda: operations.begin_create_or_update(
                ref.resource_group,
                ref.name,
                azmodels.Image({}),
                continuation_token=token,
                polling_interval=self._poll(),
            ),
        )
        return _managed_image(found)

    async def get_managed_image(self, ref: images.ResourceRef) -> images.ManagedImage | None:
        found = await self._get(lambda: self._compute(ref).images.get(ref.resource_group, ref.name))
        return _managed_image(found) if found is not None else None

    async def delete_managed_image(self, ref: images.ResourceRef) -> None:
        await self._delete(lambda: self._compute(ref).images.begin_delete(ref.resource_group, ref.name))

    # ---- gallery ----------------------------------------------------------------------------------

    async def get_image_definition(self, ref: images.ImageDefinitionRef) -> images.ImageDefinition | None:
        client = self._session.compute(ref.subscription_id)
        found = await self._get(
            lambda: client.gallery_images.get(ref.resource_group, ref.gallery, ref.image_definition)
        )
        if found is None:
            return None
        features = {str(f.name).lower(): str(f.value) for f in found.features or [] if f.name}
        return images.ImageDefinition(
            id=str(found.id),
            os_type=os_type_of(found.os_type),
            os_state=images.OsState(_text(found.os_state) or "Generalized"),
            hyper_v_generation=_text(found.hyper_v_generation) or "V1",  # Azure's default
            security_type=images.SecurityType.parse(features.get("securitytype")),
        )

    async def begin_image_version(
        self, ref: images.ImageVersionRef, request: images.ImageVersionRequest
    ) -> model.ContinuationToken:
        source_key = "virtualMachineId" if "/virtualmachines/" in request.source_id.lower() else "id"
        publishing: dict[str, Any] = {
            "targetRegions": [
                {
                    "name": region.name,
                    "regionalReplicaCount": region.replica_count,
                    **(
                        {"storageAccountType": region.storage_account_type}
                        if region.storage_account_type
                        else {}
                    ),
                }
                for region in request.target_regions
            ],
            "excludeFromLatest": request.exclude_from_latest,
        }
        if request.end_of_life is not None:
            publishing["endOfLifeDate"] = request.end_of_life.isoformat()
        body = azmodels.GalleryImageVersion(
            {
                "location": request.location,
                "tags": dict(request.tags),
                "properties": {
                    "publishingProfile": publishing,
                    "storageProfile": {"source": {source_key: request.source_id}},
                },
            }
        )
        definition = ref.definition
        client = self._session.compute(definition.subscription_id)
        with _mismatches_refused(), self._session.translated():
            poller = await client.gallery_image_versions.begin_create_or_update(
                definition.resource_group,
                definition.gallery,
                definition.image_definition,
                ref.version,
                body,
                polling_interval=self._poll(),
            )
        return model.ContinuationToken(poller.continuation_token())

    async def get_image_version(self, ref: images.ImageVersionRef) -> images.ImageVersion | None:
        definition = ref.definition
        client = self._session.compute(definition.subscription_id)
        found = await self._get(
            lambda: client.gallery_image_versions.get(
                definition.resource_group,
                definition.gallery,
                definition.image_definition,
                ref.version,
                expand="ReplicationStatus",
            )
        )
        if found is None:
            return None
        source = found.storage_profile.source if found.storage_profile else None
        status = found.replication_status
        return images.ImageVersion(
            id=images.GalleryImageVersionId(str(found.id)),
            provisioning_state=_text(found.provisioning_state) or "Unknown",
            source_id=str((source.virtual_machine_id or source.id or "") if source else ""),
            aggregated=images.ReplicationState.parse(_text(status.aggregated_state) if status else None),
            regions=tuple(
                images.RegionReplication(
                    region=str(region.region),
                    state=images.ReplicationState.parse(_text(region.state)),
                    progress=region.progress,
                    details=str(region.details or ""),
                )
                for region in (status.summary or [] if status else [])
            ),
            tags=_tags(found.tags),
        )

    async def delete_image_version(self, ref: images.ImageVersionRef) -> None:
        definition = ref.definition
        client = self._session.compute(definition.subscription_id)
        await self._delete(
            lambda: client.gallery_image_versions.begin_delete(
                definition.resource_group, definition.gallery, definition.image_definition, ref.version
            )
        )

    # ---- plumbing -----------------------------------------------------------------------------------

    def _compute(self, ref: images.ResourceRef) -> ComputeManagementClient:
        return self._session.compute(ref.subscription_id)

    def _poll(self) -> float:
        return self._session.settings.poll_interval

    async def _get(self, call: Callable[[], Awaitable[_T]]) -> _T | None:
        with self._session.translated():
            try:
                return await call()
            except ResourceNotFoundError as exc:
                if exc.error is not None and exc.error.code in _MISSING:
                    return None
                raise

    async def _delete(self, begin: Callable[[], Awaitable[AsyncLROPoller[None]]]) -> None:
        with self._session.translated():
            poller = await begin()
            await poller.result()


async def resume(
    session: azure.AzureSession, what: str, begin: Callable[[], Awaitable[AsyncLROPoller[_T]]]
) -> _T:
    """Resume an LRO from its continuation token and wait for its result, in vmgen's errors."""
    with session.translated():
        try:
            poller = await begin()
        except ValueError as exc:
            raise errors.AzureOperationLost(
                f"The {what} operation saved in status cannot be resumed ({exc}); vmgen reads the resource "
                "again and creates it again unless it exists."
            ) from exc
        try:
            return await poller.result()
        except HttpResponseError as exc:
            raise lost_or_failed(exc, what, session.secret) from exc


def lost_or_failed(exc: HttpResponseError, what: str, secret: str | None) -> errors.VmgenError:
    """An LRO that ended Failed: a retryable code means "read again and retry", any other is final."""
    failed = azure.translate(exc, secret=secret)
    ended = exc.status_code is not None and exc.status_code < 400
    if ended and isinstance(failed, errors.TransientError):
        return errors.AzureOperationLost(
            f"Azure ended the {what} operation Failed ({failed.message}); vmgen reads the resource again."
        )
    return failed  # ended with a final code (AzureOperationFailed/NotAllowed), or refused outright


@contextlib.contextmanager
def _mismatches_refused() -> Iterator[None]:
    """A Conflict on a version or image PUT is a source/definition mismatch, not a busy resource."""
    try:
        yield
    except errors.AzureConflict as exc:
        cause = exc.__cause__
        if (
            isinstance(cause, HttpResponseError)
            and cause.error is not None
            and cause.error.code == "Conflict"
        ):
            raise errors.AzureOperationNotAllowed(f"Azure refused the operation: {exc.message}") from cause
        raise


def os_type_of(value: object) -> model.OsType | None:
    text = (_text(value) or "").lower()
    return next((member for member in model.OsType if member.value.lower() == text), None)


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _tags(tags: dict[str, str] | None) -> images.Tags:
    return tuple(sorted((str(k), str(v)) for k, v in (tags or {}).items()))


def _snapshot(found: azmodels.Snapshot) -> images.Snapshot:
    creation = found.creation_data
    return images.Snapshot(
        id=images.SnapshotId(str(found.id)),
        provisioning_state=_text(found.provisioning_state) or "Unknown",
        source_disk_id=str(creation.source_resource_id or "") if creation else "",
        os_type=os_type_of(found.os_type),
        incremental=bool(found.incremental),
    )


def _managed_image(found: azmodels.Image) -> images.ManagedImage:
    source = found.source_virtual_machine
    return images.ManagedImage(
        id=images.ImageId(str(found.id)),
        provisioning_state=_text(found.provisioning_state) or "Unknown",
        source_vm=str(source.id) if source and source.id else None,
        hyper_v_generation=_text(found.hyper_v_generation) or "V1",
        tags=_tags(found.tags),
    )
