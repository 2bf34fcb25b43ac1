"""status.outputs read back from the API server: each field, each malformed value, each empty one left out.

What a job created is found again only through these ids (a restart, deletionPolicy: Delete), so a
wrong type must read as "nothing recorded" and an empty value must not be written at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from vmgen.domain.outputs import CopyOutputs, Outputs


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({}, Outputs(), id="nothing recorded"),
        pytest.param(
            {"snapshots": ["/s/1", 7, "/s/2"], "managedImageId": "/i/1", "galleryImageVersionId": "/v/1"},
            Outputs(snapshots=("/s/1", "/s/2"), managed_image_id="/i/1", gallery_image_version_id="/v/1"),
            id="ids are read and snapshots that are not text dropped",
        ),
        pytest.param(
            {"snapshots": None, "managedImageId": None, "galleryImageVersionId": None, "replication": None},
            Outputs(),
            id="nulls are nothing",
        ),
        pytest.param({"replication": ["westeurope"]}, Outputs(), id="replication that is not an object"),
        pytest.param(
            {"replication": {"westeurope": "Completed", 1: 2}},
            Outputs(replication={"westeurope": "Completed", "1": "2"}),
            id="replication keys and values are read as text",
        ),
        pytest.param(
            {"findings": [{"reason": "VMNotRunning", "message": "stopped"}, {}, "x"]},
            Outputs(
                findings=({"reason": "VMNotRunning", "message": "stopped"}, {"reason": "", "message": ""})
            ),
            id="findings keep reason and message, objects only",
        ),
        pytest.param({"findings": None, "copy": "vm"}, Outputs(), id="null findings and a copy that is text"),
        pytest.param(
            {
                "copy": {
                    "vmId": "/vm/c",
                    "nicId": "/nic/c",
                    "diskIds": ["/d/0", 1],
                    "address": "10.0.0.9",
                    "state": "Ready",
                }
            },
            Outputs(copy=CopyOutputs("/vm/c", "/nic/c", ("/d/0",), "10.0.0.9", "Ready")),
            id="the copy is read field by field",
        ),
        pytest.param(
            {"copy": {"vmId": None, "nicId": None, "diskIds": None, "address": None, "state": None}},
            Outputs(),
            id="a copy of nulls is nothing",
        ),
    ],
)
def test_outputs_read_each_field_or_nothing(body: dict[str, Any], expected: Outputs) -> None:
    assert Outputs.from_body(body) == expected


def test_every_field_is_written_and_empty_ones_are_left_out() -> None:
    full = Outputs(
        snapshots=("/s/1",),
        managed_image_id="/i/1",
        gallery_image_version_id="/v/1",
        replication={"westeurope": "Completed"},
        findings=({"reason": "R", "message": "M"},),
        copy=CopyOutputs(vm_id="/vm/c", disk_ids=("/d/0",), state="Ready"),
    )

    assert full.to_body() == {
        "snapshots": ["/s/1"],
        "managedImageId": "/i/1",
        "galleryImageVersionId": "/v/1",
        "replication": {"westeurope": "Completed"},
        "findings": [{"reason": "R", "message": "M"}],
        "copy": {"vmId": "/vm/c", "state": "Ready", "diskIds": ["/d/0"]},
    }
    assert Outputs.from_body(full.to_body()) == full
    assert Outputs().to_body() == {}
    assert CopyOutputs(nic_id="/nic/c", address="10.0.0.9").to_body() == {
        "nicId": "/nic/c",
        "address": "10.0.0.9",
    }


def test_a_snapshot_is_recorded_once_in_the_order_it_was_made() -> None:
    outputs = Outputs().with_snapshot("/s/1").with_snapshot("/s/2").with_snapshot("/s/1")

    assert outputs.snapshots == ("/s/1", "/s/2")


def test_with_copy_changes_only_the_named_fields_of_the_copy() -> None:
    outputs = Outputs(managed_image_id="/i/1", copy=CopyOutputs(vm_id="/vm/c")).with_copy(state="Deleted")

    assert outputs == Outputs(managed_image_id="/i/1", copy=CopyOutputs(vm_id="/vm/c", state="Deleted"))
