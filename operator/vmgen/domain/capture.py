"""Pure rules of the snapshot, capture and publish steps: names, preconditions and progress.

Everything a capture step creates has a name derived from the resource (`owner_hash`), so a restarted
operator (or a recreated resource of the same name) finds what an earlier attempt made with a GET and
never creates a second copy: ARM's PUT is create-or-update by name. Preconditions are checked before
anything touches the VM (in validation, and in preflight mode), each mismatch with its own reason:
- a gallery version needs its image definition, of the VM's OS type, `Generalized`, of the VM's Hyper-V
  generation, and of a security type that accepts the VM (a Trusted Launch VM needs a TrustedLaunch or
  *Supported definition; a Standard VM cannot go into a TrustedLaunch-only one);
- a managed image cannot be made from a Trusted Launch or Confidential VM (Azure refuses it);
- the version must not exist yet, unless an earlier attempt of this same resource made it (its tag).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from vmgen.domain import images, model
from vmgen.domain.capture_spec import GalleryVersionSpec
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec

OWNER_TAG = "vmgen-owner"
"""Tag on everything vmgen creates: `<namespace>/<name>` of the VMGeneralization."""
POLL_SECONDS = 5.0
"""How often a snapshot, image or replicating version is looked at again."""

_SECURE = frozenset({"TrustedLaunch", "ConfidentialVM"})
_ACCEPTS = {
    images.SecurityType.STANDARD: frozenset({"Standard"}),
    images.SecurityType.TRUSTED_LAUNCH: frozenset({"TrustedLaunch"}),
    images.SecurityType.CONFIDENTIAL_VM: frozenset({"ConfidentialVM"}),
    images.SecurityType.TRUSTED_LAUNCH_SUPPORTED: frozenset({"Standard", "TrustedLaunch"}),
    images.SecurityType.CONFIDENTIAL_VM_SUPPORTED: frozenset({"Standard", "ConfidentialVM"}),
    images.SecurityType.TRUSTED_LAUNCH_AND_CONFIDENTIAL_VM_SUPPORTED: frozenset(
        {"Standard", "TrustedLaunch", "ConfidentialVM"}
    ),
}


@dataclass(frozen=True)
class Finding:
    """One thing that blocks generalization or capture, with the reason it fails under."""

    reason: Reason
    message: str


def owner_hash(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()[:8]


def tags(owner: str) -> images.Tags:
    return ((OWNER_TAG, owner),)


def made_by(found: images.Tags, owner: str) -> bool:
    """Whether a resource's tags say that `owner` (an earlier attempt of this resource) created it."""
    return (OWNER_TAG, owner) in found


def image_findings(
    image_id: str, found: images.ManagedImage | None, *, recorded: str, owner: str
) -> tuple[Finding, ...]:
    """A managed image of that name that this resource did not make (not recorded, not tagged) is not
    adopted: claiming it would put another's image in status, and deletionPolicy Delete would remove it."""
    if found is None or recorded == image_id or made_by(found.tags, owner):
        return ()
    return (
        Finding(
            Reason.CAPTURE_FAILED,
            f"Managed image {image_id} exists already and was not made by this resource (its tag"
            f" {OWNER_TAG} does not name {owner}). Choose another spec.capture.managedImage.name, or delete"
            " that image, then recreate this resource; it adopts the generalized VM.",
        ),
    )


@dataclass(frozen=True)
class DiskSnapshot:
    ref: images.ResourceRef
    disk_id: str


def snapshots(spec: Spec, vm: model.VmObservation, *, owner: str) -> tuple[DiskSnapshot, ...]:
    """One snapshot per disk (the OS disk, and data disks unless excluded), in the VM's resource group."""
    suffix = owner_hash(owner)
    disks = [("os", vm.os_disk_id)]
    if spec.preserve_source.include_data_disks:
        disks += [(f"lun{lun}", disk_id) for lun, disk_id in vm.data_disks]
    return tuple(
        DiskSnapshot(
            images.ResourceRef(
                spec.vm.subscription_id, spec.vm.resource_group, f"{spec.vm.name[:50]}-{label}-vmgen-{suffix}"
            ),
            disk_id,
        )
        for label, disk_id in disks
        if disk_id
    )


def snapshot_id(ref: images.ResourceRef) -> str:
    return (
        f"/subscriptions/{ref.subscription_id}/resourceGroups/{ref.resource_group}"
        f"/providers/Microsoft.Compute/snapshots/{ref.name}"
    )


def managed_image_ref(spec: Spec) -> images.ResourceRef | None:
    image = spec.capture.managed_image
    if image is None:
        return None
    return images.ResourceRef(
        spec.vm.subscription_id, image.resource_group or spec.vm.resource_group, image.name
    )


def managed_image_id(ref: images.ResourceRef) -> str:
    return (
        f"/subscriptions/{ref.subscription_id}/resourceGroups/{ref.resource_group}"
        f"/providers/Microsoft.Compute/images/{ref.name}"
    )


def version_ref(spec: Spec) -> images.ImageVersionRef | None:
    version = spec.capture.gallery_image_version
    if version is None:
        return None
    definition = images.ImageDefinitionRef(
        spec.vm.subscription_id, version.resource_group, version.gallery, version.image_definition
    )
    return images.ImageVersionRef(definition, version.version)


def version_id(ref: images.ImageVersionRef) -> str:
    d = ref.definition
    return (
        f"/subscriptions/{d.subscription_id}/resourceGroups/{d.resource_group}/providers/Microsoft.Compute"
        f"/galleries/{d.gallery}/images/{d.image_definition}/versions/{ref.version}"
    )


def managed_image_findings(spec: Spec, vm: model.VmObservation) -> tuple[Finding, ...]:
    if spec.capture.managed_image is None or vm.security_type not in _SECURE:
        return ()
    return (
        Finding(
            Reason.MANAGED_IMAGE_NOT_SUPPORTED,
            f"VM {spec.vm.name} is a {vm.security_type} VM, and Azure cannot make a managed image of it."
            " Remove spec.capture.managedImage and publish a gallery image version to a definition with the"
            f" {vm.security_type} feature instead. The VM was not touched.",
        ),
    )


def definition_findings(
    version: GalleryVersionSpec, vm: model.VmObservation, definition: images.ImageDefinition | None
) -> tuple[Finding, ...]:
    """What makes the image definition unfit for this VM (empty: it fits)."""
    where = f"gallery {version.gallery} image definition {version.image_definition}"
    if definition is None:
        return (
            Finding(
                Reason.IMAGE_DEFINITION_NOT_FOUND,
                f"Azure has no {where} in resource group {version.resource_group}. Create it (osState"
                " Generalized, the VM's OS type, Hyper-V generation and security type), then recreate this"
                " resource. The VM was not touched.",
            ),
        )
    found: list[str] = []
    if vm.os_type is not None and definition.os_type is not None and definition.os_type is not vm.os_type:
        found.append(f"its OS type is {definition.os_type.value}, the VM's is {vm.os_type.value}")
    if definition.os_state is not images.OsState.GENERALIZED:
        found.append(f"its OS state is {definition.os_state.value}, and vmgen publishes generalized images")
    vm_generation = vm.hyper_v_generation or "V1"
    if (definition.hyper_v_generation or "V1").upper() != vm_generation.upper():
        found.append(
            f"its Hyper-V generation is {definition.hyper_v_generation or 'V1'}, the VM's is {vm_generation}"
        )
    if vm.security_type not in _ACCEPTS.get(definition.security_type, frozenset()):
        found.append(
            f"its security type {definition.security_type.value} does not accept a {vm.security_type} VM"
        )
    if not found:
        return ()
    return (
        Finding(
            Reason.IMAGE_DEFINITION_MISMATCH,
            f"The {where} does not fit VM {vm.id.rsplit('/', 1)[-1]}: {'; '.join(found)}."
            " Use a definition that matches, then recreate this resource. The VM was not touched.",
        ),
    )


def version_findings(
    version: GalleryVersionSpec, existing: images.ImageVersion | None, *, owned: bool
) -> tuple[Finding, ...]:
    """A version of that number that another resource (or a person) made blocks publishing."""
    if existing is None or owned:
        return ()
    return (
        Finding(
            Reason.IMAGE_VERSION_EXISTS,
            f"Gallery image version {version.version} of {version.image_definition} exists already and was"
            " not made by this resource. Choose another spec.capture.galleryImageVersion.version, then"
            " recreate this resource. The VM was not touched.",
        ),
    )


@dataclass(frozen=True)
class Created:
    """What status.outputs says this resource created, as references to delete (deletionPolicy Delete)."""

    snapshots: tuple[images.ResourceRef, ...]
    managed_image: images.ResourceRef | None
    version: images.ImageVersionRef | None


def created(outputs_snapshots: tuple[str, ...], image_id: str, version_id_: str) -> Created:
    """Parse the ARM ids in status.outputs; ids that are not what vmgen writes are ignored (never guessed)."""

    def parts(resource_id: str) -> list[str]:
        return resource_id.strip("/").split("/")

    def ref(resource_id: str, kind: str) -> images.ResourceRef | None:
        p = parts(resource_id)
        if len(p) == 8 and p[0] == "subscriptions" and p[2] == "resourceGroups" and p[6] == kind:
            return images.ResourceRef(p[1], p[3], p[7])
        return None

    version: images.ImageVersionRef | None = None
    p = parts(version_id_)  # an empty id is [''], matched by nothing
    if len(p) == 12 and p[6] == "galleries" and p[8] == "images" and p[10] == "versions":
        version = images.ImageVersionRef(images.ImageDefinitionRef(p[1], p[3], p[7], p[9]), p[11])
    snapshots = tuple(r for s in outputs_snapshots if (r := ref(s, "snapshots")) is not None)
    return Created(snapshots, ref(image_id, "images"), version)
