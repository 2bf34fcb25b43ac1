"""The capture steps' pure rules as tables (domain/capture.py): the names of what vmgen creates (stable
across operator versions, or a restarted operator would create a second copy), the references built from
the spec, and every precondition finding, exactly.
"""

from __future__ import annotations

from typing import Any

import pytest

from vmgen.domain import capture, capture_spec, images, model
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec

OWNER = "team/web-job"
VM_ID = "/subscriptions/sub-1/resourceGroups/rg-vms/providers/Microsoft.Compute/virtualMachines/web-01"
VERSION: dict[str, Any] = {
    "resourceGroup": "rg-images",
    "gallery": "golden",
    "imageDefinition": "web",
    "version": "1.4.0",
    "targetRegions": [{"name": "westeurope"}],
}


def spec(name: str = "web-01", **body: Any) -> Spec:
    vm = {"subscriptionId": "sub-1", "resourceGroup": "rg-vms", "name": name}
    return Spec.from_body({"vm": vm, "sshSecretRef": {"name": "ssh"}, **body})


def vm(**changes: Any) -> model.VmObservation:
    fields: dict[str, Any] = {
        "id": model.VmResourceId(VM_ID),
        "os_type": model.OsType.LINUX,
        "power_state": model.PowerState.RUNNING,
        "generalized": False,
        "agent_ready": True,
        "os_disk_id": "/disks/os",
        "data_disks": ((0, "/disks/d0"), (3, "/disks/d3")),
    }
    return model.VmObservation(**{**fields, **changes})


def definition(**changes: Any) -> images.ImageDefinition:
    fields: dict[str, Any] = {
        "id": "/galleries/golden/images/web",
        "os_type": model.OsType.LINUX,
        "os_state": images.OsState.GENERALIZED,
        "hyper_v_generation": "",
        "security_type": images.SecurityType.STANDARD,
    }
    return images.ImageDefinition(**{**fields, **changes})


GALLERY = capture_spec.capture({"capture": {"galleryImageVersion": VERSION}}).gallery_image_version
assert GALLERY is not None


class TestNames:
    def test_the_owner_hash_is_the_same_in_every_operator_version(self) -> None:
        # Pinned: a changed hash would make a restarted, upgraded operator miss what an earlier one made.
        assert capture.owner_hash(OWNER) == "7fb1110c"

    def test_one_snapshot_per_disk_in_the_vms_subscription_and_group_named_after_the_owner(self) -> None:
        ref = images.ResourceRef
        assert capture.snapshots(spec(), vm(), owner=OWNER) == (
            capture.DiskSnapshot(ref("sub-1", "rg-vms", "web-01-os-vmgen-7fb1110c"), "/disks/os"),
            capture.DiskSnapshot(ref("sub-1", "rg-vms", "web-01-lun0-vmgen-7fb1110c"), "/disks/d0"),
            capture.DiskSnapshot(ref("sub-1", "rg-vms", "web-01-lun3-vmgen-7fb1110c"), "/disks/d3"),
        )

    def test_data_disks_can_be_left_out_and_disks_without_an_id_are_skipped(self) -> None:
        without = spec(preserveSource={"snapshot": True, "includeDataDisks": False})
        assert [s.disk_id for s in capture.snapshots(without, vm(), owner=OWNER)] == ["/disks/os"]
        assert [s.disk_id for s in capture.snapshots(spec(), vm(os_disk_id=""), owner=OWNER)] == [
            "/disks/d0",
            "/disks/d3",
        ]

    def test_a_long_vm_name_is_cut_to_fifty_characters_in_snapshot_names(self) -> None:
        long = "v" * 64
        (first, *_) = capture.snapshots(spec(long), vm(), owner=OWNER)
        assert first.ref.name == f"{'v' * 50}-os-vmgen-7fb1110c"


class TestReferences:
    @pytest.mark.parametrize(
        ("image", "group"),
        [
            pytest.param({"name": "img"}, "rg-vms", id="in the VM's resource group by default"),
            pytest.param({"name": "img", "resourceGroup": "rg-img"}, "rg-img", id="or in the one named"),
        ],
    )
    def test_the_managed_image(self, image: dict[str, str], group: str) -> None:
        ref = capture.managed_image_ref(spec(capture={"managedImage": image}))
        assert ref == images.ResourceRef("sub-1", group, "img")

    def test_the_gallery_version_is_in_the_vms_subscription(self) -> None:
        assert capture.version_ref(spec(capture={"galleryImageVersion": VERSION})) == images.ImageVersionRef(
            images.ImageDefinitionRef("sub-1", "rg-images", "golden", "web"), "1.4.0"
        )

    def test_nothing_is_referenced_without_a_capture(self) -> None:
        assert (capture.managed_image_ref(spec()), capture.version_ref(spec())) == (None, None)

    def test_the_ids_in_outputs_are_parsed_whole(self) -> None:
        snapshot = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/snapshots/web-X"
        version = (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute"
            "/galleries/g/images/d/versions/1.0.0"
        )
        assert capture.created((snapshot,), "", version) == capture.Created(
            (images.ResourceRef("s", "rg", "web-X"),),
            None,
            images.ImageVersionRef(images.ImageDefinitionRef("s", "rg", "g", "d"), "1.0.0"),
        )


class TestManagedImageFindings:
    def test_an_image_of_that_name_made_by_someone_else_is_not_adopted(self) -> None:
        found = images.ManagedImage(images.ImageId("/images/img"), "Succeeded", None, "V1", (("other", "x"),))
        assert capture.image_findings("/images/img", found, recorded="", owner=OWNER) == (
            capture.Finding(
                Reason.CAPTURE_FAILED,
                "Managed image /images/img exists already and was not made by this resource (its tag"
                " vmgen-owner does not name team/web-job). Choose another spec.capture.managedImage.name, or"
                " delete that image, then recreate this resource; it adopts the generalized VM.",
            ),
        )

    @pytest.mark.parametrize("security", ["TrustedLaunch", "ConfidentialVM"])
    def test_a_secure_vm_cannot_be_captured_as_a_managed_image(self, security: str) -> None:
        with_image = spec(capture={"managedImage": {"name": "img"}})
        assert capture.managed_image_findings(with_image, vm(security_type=security)) == (
            capture.Finding(
                Reason.MANAGED_IMAGE_NOT_SUPPORTED,
                f"VM web-01 is a {security} VM, and Azure cannot make a managed image of it. Remove"
                " spec.capture.managedImage and publish a gallery image version to a definition with the"
                f" {security} feature instead. The VM was not touched.",
            ),
        )

    def test_a_standard_vm_can(self) -> None:
        assert capture.managed_image_findings(spec(capture={"managedImage": {"name": "img"}}), vm()) == ()


# Which VMs (securityProfile.securityType) a definition of each SecurityType feature takes (Azure's rules).
ACCEPTED = {
    images.SecurityType.STANDARD: {"Standard"},
    images.SecurityType.TRUSTED_LAUNCH: {"TrustedLaunch"},
    images.SecurityType.CONFIDENTIAL_VM: {"ConfidentialVM"},
    images.SecurityType.TRUSTED_LAUNCH_SUPPORTED: {"Standard", "TrustedLaunch"},
    images.SecurityType.CONFIDENTIAL_VM_SUPPORTED: {"Standard", "ConfidentialVM"},
    images.SecurityType.TRUSTED_LAUNCH_AND_CONFIDENTIAL_VM_SUPPORTED: {
        "Standard",
        "TrustedLaunch",
        "ConfidentialVM",
    },
    images.SecurityType.UNKNOWN: set(),  # a feature vmgen does not know: refused, never guessed
}


def mismatch(*found: str) -> tuple[capture.Finding, ...]:
    return (
        capture.Finding(
            Reason.IMAGE_DEFINITION_MISMATCH,
            f"The gallery golden image definition web does not fit VM web-01: {'; '.join(found)}. Use a"
            " definition that matches, then recreate this resource. The VM was not touched.",
        ),
    )


class TestDefinitionFindings:
    def test_a_missing_definition_says_where_and_what_to_create(self) -> None:
        assert capture.definition_findings(GALLERY, vm(), None) == (
            capture.Finding(
                Reason.IMAGE_DEFINITION_NOT_FOUND,
                "Azure has no gallery golden image definition web in resource group rg-images. Create it"
                " (osState Generalized, the VM's OS type, Hyper-V generation and security type), then"
                " recreate this resource. The VM was not touched.",
            ),
        )

    @pytest.mark.parametrize(
        ("observed", "found", "expected"),
        [
            pytest.param(vm(), definition(), (), id="a fitting definition"),
            pytest.param(
                vm(os_type=model.OsType.WINDOWS),
                definition(),
                mismatch("its OS type is Linux, the VM's is Windows"),
                id="another OS type",
            ),
            pytest.param(vm(os_type=None), definition(), (), id="a VM of unknown OS type is not judged"),
            pytest.param(
                vm(), definition(os_type=None), (), id="a definition without an OS type is not judged"
            ),
            pytest.param(
                vm(),
                definition(os_state=images.OsState.SPECIALIZED),
                mismatch("its OS state is Specialized, and vmgen publishes generalized images"),
                id="a specialized definition",
            ),
            pytest.param(vm(hyper_v_generation="v1"), definition(), (), id="an unsaid generation is V1"),
            pytest.param(
                vm(),
                definition(hyper_v_generation="V2"),
                mismatch("its Hyper-V generation is V2, the VM's is V1"),
                id="a V2 definition for a V1 VM",
            ),
            pytest.param(
                vm(hyper_v_generation="V2"),
                definition(),
                mismatch("its Hyper-V generation is V1, the VM's is V2"),
                id="a V1 definition for a V2 VM",
            ),
            pytest.param(
                vm(security_type="TrustedLaunch", os_type=model.OsType.WINDOWS),
                definition(),
                mismatch(
                    "its OS type is Linux, the VM's is Windows",
                    "its security type Standard does not accept a TrustedLaunch VM",
                ),
                id="every mismatch at once",
            ),
        ],
    )
    def test_what_does_not_fit(
        self,
        observed: model.VmObservation,
        found: images.ImageDefinition,
        expected: tuple[capture.Finding, ...],
    ) -> None:
        assert capture.definition_findings(GALLERY, observed, found) == expected

    @pytest.mark.parametrize(("kind", "accepted"), ACCEPTED.items())
    def test_which_vms_each_security_type_accepts(
        self, kind: images.SecurityType, accepted: set[str]
    ) -> None:
        for security in ("Standard", "TrustedLaunch", "ConfidentialVM"):
            findings = capture.definition_findings(
                GALLERY, vm(security_type=security), definition(security_type=kind)
            )
            refused = mismatch(f"its security type {kind.value} does not accept a {security} VM")
            assert findings == (() if security in accepted else refused), security

    def test_every_security_type_a_definition_can_have_is_in_the_table(self) -> None:
        assert set(ACCEPTED) == set(images.SecurityType)


class TestVersionFindings:
    def existing(self) -> images.ImageVersion:
        return images.ImageVersion(
            images.GalleryImageVersionId("/versions/1.4.0"),
            "Succeeded",
            "",
            images.ReplicationState.COMPLETED,
            (),
        )

    def test_a_version_someone_else_made_blocks_publishing(self) -> None:
        assert capture.version_findings(GALLERY, self.existing(), owned=False) == (
            capture.Finding(
                Reason.IMAGE_VERSION_EXISTS,
                "Gallery image version 1.4.0 of web exists already and was not made by this resource. Choose"
                " another spec.capture.galleryImageVersion.version, then recreate this resource. The VM was"
                " not touched.",
            ),
        )

    def test_an_own_version_or_none_does_not(self) -> None:
        assert capture.version_findings(GALLERY, self.existing(), owned=True) == ()
        assert capture.version_findings(GALLERY, None, owned=False) == ()
