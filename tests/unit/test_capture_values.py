"""The capture path's values, parsed and written back exactly: outputs, capture spec, created resources."""

from __future__ import annotations

from typing import Any

import pytest

from vmgen.domain import capture, capture_spec, errors
from vmgen.domain.outputs import Outputs

SNAPSHOT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/snapshots/web-os-vmgen-1"
IMAGE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/web-img"
VERSION = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/web/versions/1.4.0"
)
OUTPUTS = {
    "snapshots": [SNAPSHOT],
    "managedImageId": IMAGE,
    "galleryImageVersionId": VERSION,
    "replication": {"westeurope": "Completed", "northeurope": "Replicating"},
    "findings": [{"reason": "VMNotRunning", "message": "start it"}],
}


class TestOutputs:
    def test_every_field_survives_a_round_trip(self) -> None:
        assert Outputs.from_body(OUTPUTS).to_body() == OUTPUTS

    def test_an_empty_body_writes_nothing(self) -> None:
        assert Outputs.from_body({}).to_body() == {}
        assert Outputs().to_body() == {}

    def test_values_of_the_wrong_type_are_dropped_not_crashed_on(self) -> None:
        parsed = Outputs.from_body({"snapshots": [1, SNAPSHOT], "replication": ["x"], "findings": ["x", {}]})
        assert parsed.snapshots == (SNAPSHOT,)
        assert parsed.replication == {}
        assert parsed.findings == ({"reason": "", "message": ""},)

    def test_a_snapshot_is_recorded_once(self) -> None:
        once = Outputs().with_snapshot(SNAPSHOT)
        assert once.with_snapshot(SNAPSHOT).snapshots == (SNAPSHOT,)
        assert once.with_snapshot("other").snapshots == (SNAPSHOT, "other")


class TestCreated:
    def test_the_ids_vmgen_writes_are_parsed_into_references(self) -> None:
        made = capture.created((SNAPSHOT,), IMAGE, VERSION)
        assert made.snapshots == (capture.images.ResourceRef("s", "rg", "web-os-vmgen-1"),)
        assert made.managed_image == capture.images.ResourceRef("s", "rg", "web-img")
        assert made.version is not None
        assert (made.version.definition.gallery, made.version.definition.image_definition) == ("g", "web")
        assert (made.version.version, made.version.definition.resource_group) == ("1.4.0", "rg")

    @pytest.mark.parametrize(
        "bad",
        [
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/snapshots",
            "not an id",
            "",
        ],
    )
    def test_anything_else_is_ignored_never_guessed(self, bad: str) -> None:
        made = capture.created((bad,), bad, bad)
        assert (made.snapshots, made.managed_image, made.version) == ((), None, None)


def spec(**body: Any) -> dict[str, Any]:
    return body


class TestCaptureSpec:
    def test_defaults(self) -> None:
        assert capture_spec.mode({}) is capture_spec.Mode.GENERALIZE
        assert capture_spec.approval({}) is capture_spec.Approval.AUTOMATIC
        assert capture_spec.deletion_policy({}) is capture_spec.DeletionPolicy.RETAIN
        assert capture_spec.preserve_source({}) == capture_spec.PreserveSource(False, True, True)
        assert capture_spec.capture({}) == capture_spec.CaptureSpec(None, None)
        assert not capture_spec.capture({}).wanted

    def test_every_field_is_read(self) -> None:
        parsed = capture_spec.capture(
            {
                "capture": {
                    "managedImage": {
                        "name": "img",
                        "resourceGroup": "rg2",
                        "location": "eu",
                        "zoneResilient": True,
                    },
                    "galleryImageVersion": {
                        "resourceGroup": "rg3",
                        "gallery": "g",
                        "imageDefinition": "web",
                        "version": "1.2.3",
                        "targetRegions": [
                            {"name": "westeurope", "replicaCount": 2, "storageAccountType": "Standard_ZRS"}
                        ],
                        "excludeFromLatest": True,
                        "endOfLifeDate": "2027-01-01T00:00:00Z",
                    },
                }
            }
        )
        assert parsed.managed_image == capture_spec.ManagedImageSpec("img", "rg2", "eu", True)
        assert parsed.gallery_image_version == capture_spec.GalleryVersionSpec(
            "rg3",
            "g",
            "web",
            "1.2.3",
            (capture_spec.TargetRegionSpec("westeurope", 2, "Standard_ZRS"),),
            True,
            "2027-01-01T00:00:00Z",
        )
        assert parsed.wanted
        assert capture_spec.preserve_source(
            {"preserveSource": {"snapshot": True, "includeDataDisks": False, "incremental": False}}
        ) == capture_spec.PreserveSource(True, False, False)
        assert capture_spec.mode({"mode": "Preflight"}) is capture_spec.Mode.PREFLIGHT
        assert capture_spec.approval({"approval": "Manual"}) is capture_spec.Approval.MANUAL
        assert (
            capture_spec.deletion_policy({"deletionPolicy": "Delete"}) is capture_spec.DeletionPolicy.DELETE
        )

    def test_a_minimal_version_gets_its_defaults(self) -> None:
        version = capture_spec.capture(
            {
                "capture": {
                    "galleryImageVersion": {
                        "resourceGroup": "rg",
                        "gallery": "g",
                        "imageDefinition": "d",
                        "version": "1.0.0",
                        "targetRegions": [{"name": "westeurope"}],
                    }
                }
            }
        ).gallery_image_version
        assert version is not None
        assert (version.exclude_from_latest, version.end_of_life_date) == (False, None)
        assert version.target_regions == (capture_spec.TargetRegionSpec("westeurope", 1, None),)
        image = capture_spec.capture({"capture": {"managedImage": {"name": "i"}}}).managed_image
        assert image == capture_spec.ManagedImageSpec("i", None, None, False)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"mode": "Both"}, "spec.mode must be one of Generalize, Preflight, not 'Both'"),
            ({"approval": "Later"}, "spec.approval must be one of Automatic, Manual"),
            ({"deletionPolicy": "Purge"}, "spec.deletionPolicy must be one of Retain, Delete"),
            ({"preserveSource": "yes"}, "spec.preserveSource must be an object"),
            ({"capture": {"managedImage": {}}}, "spec.capture.managedImage.name is required"),
            (
                {"capture": {"galleryImageVersion": {"version": "1.0"}}},
                "must be a semantic version N.N.N, not '1.0'",
            ),
            (
                {"capture": {"galleryImageVersion": {"version": "1.0.0", "targetRegions": []}}},
                "spec.capture.galleryImageVersion.targetRegions must list at least one region",
            ),
            (
                {
                    "capture": {
                        "galleryImageVersion": {
                            "version": "1.0.0",
                            "targetRegions": ["x"],
                            "resourceGroup": "rg",
                            "gallery": "g",
                            "imageDefinition": "d",
                        }
                    }
                },
                "targetRegions entries must be objects with a name",
            ),
            (
                {
                    "capture": {
                        "galleryImageVersion": {
                            "version": "1.0.0",
                            "targetRegions": [{"name": "w", "replicaCount": 0}],
                            "resourceGroup": "rg",
                            "gallery": "g",
                            "imageDefinition": "d",
                        }
                    }
                },
                "replicaCount must be a whole number of at least 1",
            ),
            (
                {"capture": {"galleryImageVersion": {"version": "1.0.0", "targetRegions": [{"name": "w"}]}}},
                "spec.capture.galleryImageVersion.resourceGroup is required",
            ),
        ],
    )
    def test_unusable_input_names_the_field(self, body: dict[str, Any], field: str) -> None:
        with pytest.raises(errors.InvalidSpec) as raised:
            capture_spec.mode(body)
            capture_spec.approval(body)
            capture_spec.deletion_policy(body)
            capture_spec.preserve_source(body)
            capture_spec.capture(body)
        assert field in raised.value.message


REGIONS = [{"name": "westeurope"}]
GALLERY = {
    "resourceGroup": "rg",
    "gallery": "g",
    "imageDefinition": "d",
    "version": "1.0.0",
    "targetRegions": REGIONS,
}


class TestEachUnusableCaptureFieldIsNamedExactly:
    @pytest.mark.parametrize(
        ("capture", "message"),
        [
            pytest.param("yes", "spec.capture must be an object", id="the block"),
            pytest.param({"managedImage": "img"}, "spec.capture.managedImage must be an object", id="image"),
            pytest.param(
                {"managedImage": {"name": 5}}, "spec.capture.managedImage.name is required", id="name"
            ),
            pytest.param(
                {"galleryImageVersion": ["1.0.0"]},
                "spec.capture.galleryImageVersion must be an object",
                id="the version block",
            ),
            *(
                pytest.param(
                    {"galleryImageVersion": {k: v for k, v in GALLERY.items() if k != key}},
                    f"spec.capture.galleryImageVersion.{key} is required",
                    id=key,
                )
                for key in ("version", "gallery", "imageDefinition")
            ),
            pytest.param(
                {"galleryImageVersion": {**GALLERY, "targetRegions": [{"replicaCount": 2}]}},
                "spec.capture.galleryImageVersion.targetRegions.name is required",
                id="a region without a name",
            ),
        ],
    )
    def test_the_message(self, capture: Any, message: str) -> None:
        with pytest.raises(errors.InvalidSpec) as raised:
            capture_spec.capture({"capture": capture})
        assert raised.value.message == message

    @pytest.mark.parametrize("value", ["", 5, None])
    def test_an_optional_text_that_is_empty_or_not_text_means_the_default(self, value: Any) -> None:
        image = capture_spec.capture({"capture": {"managedImage": {"name": "i", "resourceGroup": value}}})
        assert image.managed_image == capture_spec.ManagedImageSpec("i", None, None, False)
