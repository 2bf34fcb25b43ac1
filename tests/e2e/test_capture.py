"""The image path end to end: a running Linux VM is snapshotted, generalized, captured as a managed image
and published as a gallery image version replicated to two regions, by the real operator process.

The simulator's request log is the witness of order (the snapshot is taken before anything touches the
guest) and of sources (the image from the VM, the version from the image or straight from the VM).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from tests.e2e import capture_world as cw
from tests.e2e.conftest import World, assert_guest_deprovisioned, condition
from vmgen_testbed.arm.galleries import REPLICATION
from vmgen_testbed.arm.server import Fault

STEPS = ("validate", "snapshot", "deprovision", "shutdown", "generalize", "capture", "publish")


class TestTheImagePath:
    def test_snapshot_managed_image_and_version_in_two_regions_end_ready_with_their_ids_in_outputs(
        self, world: World, linux_vm: Any
    ) -> None:
        vm = linux_vm()
        version = cw.gallery(world, vm)
        world.arm.clear_requests()
        applied = time.monotonic()
        cw.capture_job(world, "golden", vm, version=version)

        body = world.wait_ready("golden", timeout=150)
        took = time.monotonic() - applied

        status = body["status"]
        assert status["phase"] == "Succeeded"
        assert [s for s in STEPS if status["steps"][s]["state"] == "Succeeded"] == list(STEPS)
        for kind in ("Ready", "SourcePreserved", "Deprovisioned", "Generalized", "Captured", "Published"):
            assert condition(body, kind)["status"] == "True", kind
        out = status["outputs"]
        azure_vm = world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)
        assert azure_vm["generalized"] is True
        (snapshot_id,) = out["snapshots"]
        snapshot = world.arm.resource(snapshot_id)
        assert snapshot is not None and snapshot["properties"]["provisioningState"] == "Succeeded"
        image = world.arm.resource(out["managedImageId"])
        assert image is not None and image["properties"]["provisioningState"] == "Succeeded"
        assert image["properties"]["sourceVirtualMachine"]["id"].lower() == status["vm"]["id"].lower()
        assert image["properties"]["hyperVGeneration"] == "V2"
        published = world.arm.resource(out["galleryImageVersionId"])
        assert published is not None and published["properties"]["provisioningState"] == "Succeeded"
        # Both were asked for: the version is made from the managed image, not from the VM again.
        assert published["properties"]["storageProfile"]["source"]["id"] == out["managedImageId"]
        assert [r["name"] for r in published["properties"]["publishingProfile"]["targetRegions"]] == list(
            cw.REGIONS
        )
        assert out["replication"] == {region: "Completed" for region in cw.REGIONS}
        assert out["managedImageId"] in condition(body, "Ready")["message"]
        assert_guest_deprovisioned(vm)

        requests = cw.arm_requests(world)
        ops = [r.operation for r in requests]
        creation = next(r for r in requests if r.operation == "createSnapshot")
        assert creation.request_body["properties"]["creationData"] == {
            "createOption": "Copy",
            "sourceResourceId": snapshot["properties"]["creationData"]["sourceResourceId"],
        }
        assert "_OsDisk_" in creation.request_body["properties"]["creationData"]["sourceResourceId"]
        # Order: snapshot, then the look at the guest before deprovision, deallocate, generalize, the image,
        # the version; and the snapshot was complete before anything touched the guest.
        firsts = [ops.index(op) for op in ("createSnapshot", "runCommand", "deallocate", "generalize")]
        firsts += [ops.index(op) for op in ("createImage", "createGalleryImageVersion")]
        assert firsts == sorted(firsts), ops
        taken = cw.snapshot_files(world, snapshot_id)
        assert "var/lib/waagent/ovf-env.xml" in taken, "the snapshot was taken after deprovision"
        assert f"home/{vm.sandbox.username}" in taken
        for op in ("createSnapshot", "createImage", "createGalleryImageVersion", "deallocate", "generalize"):
            assert ops.count(op) == 1, (op, ops)
        assert "start" not in ops
        tally = ", ".join(f"{op} {n}" for op, n in sorted(Counter(ops).items()))
        print(f"\napply to Ready: {took:.1f} s; ARM requests for one capture job: {len(requests)} ({tally})")
        assert len(requests) < 150

    def test_a_version_alone_is_published_straight_from_the_vm(self, world: World, linux_vm: Any) -> None:
        vm = linux_vm()
        version = cw.gallery(world, vm)
        world.arm.clear_requests()
        cw.capture_job(world, "from-vm", vm, version=version, managed_image=False, snapshot=False)

        body = world.wait_ready("from-vm", timeout=120)

        out = body["status"]["outputs"]
        assert "managedImageId" not in out and "snapshots" not in out
        published = world.arm.resource(out["galleryImageVersionId"])
        assert published is not None
        source = published["properties"]["storageProfile"]["source"]
        assert source["virtualMachineId"].lower() == body["status"]["vm"]["id"].lower()
        assert cw.count(world, "createImage") == 0 and cw.count(world, "createSnapshot") == 0
        assert cw.count(world, "createGalleryImageVersion") == 1

    def test_a_trusted_launch_vm_is_published_to_a_trusted_launch_definition_straight_from_the_vm(
        self, world: World, linux_vm: Any
    ) -> None:
        vm = linux_vm()
        world.arm.seed_vm(
            subscription_id=vm.subscription_id,
            resource_group=vm.resource_group,
            name=vm.name,
            guest=vm.sandbox,
            security_type="TrustedLaunch",
        )
        version = cw.gallery(world, vm, security_type="TrustedLaunch")
        world.arm.clear_requests()
        cw.capture_job(world, "trusted", vm, version=version, managed_image=False)

        body = world.wait_ready("trusted", timeout=120)

        published = world.arm.resource(cw.outputs(body)["galleryImageVersionId"])
        assert published is not None and published["properties"]["provisioningState"] == "Succeeded"
        source = published["properties"]["storageProfile"]["source"]
        assert source["virtualMachineId"].lower() == body["status"]["vm"]["id"].lower()
        assert cw.count(world, "createImage") == 0

    def test_every_disk_of_the_vm_is_snapshotted_from_that_disk(self, world: World, linux_vm: Any) -> None:
        vm = linux_vm()
        world.arm.seed_vm(
            subscription_id=vm.subscription_id,
            resource_group=vm.resource_group,
            name=vm.name,
            guest=vm.sandbox,
            data_disks=2,
        )
        world.arm.clear_requests()
        cw.capture_job(world, "all-disks", vm, managed_image=False)

        body = world.wait_ready("all-disks", timeout=120)

        snapshots = cw.outputs(body)["snapshots"]
        assert [s.rsplit("/", 1)[-1].split("-vmgen-")[0] for s in snapshots] == [
            f"{vm.name}-os",
            f"{vm.name}-lun0",
            f"{vm.name}-lun1",
        ]
        sources = []
        for snapshot_id in snapshots:
            snapshot = world.arm.resource(snapshot_id)
            assert snapshot is not None and snapshot["properties"]["provisioningState"] == "Succeeded"
            sources.append(snapshot["properties"]["creationData"]["sourceResourceId"].rsplit("/", 1)[-1])
        assert ["_OsDisk_" in s for s in sources] == [True, False, False]
        assert ["_DataDisk_0_" in sources[1], "_DataDisk_1_" in sources[2]] == [True, True]
        assert cw.count(world, "createSnapshot") == 3


class TestReplication:
    def test_replication_slower_than_several_polls_shows_progress_and_still_ends_ready(
        self, world: World, linux_vm: Any
    ) -> None:
        vm = linux_vm()
        version = cw.gallery(world, vm)
        world.arm.clear_requests()
        world.arm.set_latency(REPLICATION, 14.0)  # the publish step looks every 5 s
        try:
            cw.capture_job(world, "slow", vm, version=version, managed_image=False, snapshot=False)
            replicating = world.wait_for(
                "slow",
                lambda b: set(cw.outputs(b).get("replication", {}).values()) == {"Replicating"},
                timeout=120,
                what="per-region progress in status.outputs.replication",
            )
            body = world.wait_ready("slow", timeout=120)
        finally:
            world.arm.set_latency(REPLICATION, 0.0)

        assert replicating["status"]["phase"] == "Replicating"
        assert set(cw.outputs(replicating)["replication"]) == set(cw.REGIONS)
        assert "Replicating" in replicating["status"]["steps"]["publish"]["message"]
        assert cw.outputs(body)["replication"] == {region: "Completed" for region in cw.REGIONS}
        looks = [
            r
            for r in cw.arm_requests(world)
            if r.operation == "getGalleryImageVersion" and r.query.get("$expand") == "ReplicationStatus"
        ]
        assert len(looks) >= 3, "replication outlived several polls"
        assert cw.count(world, "createGalleryImageVersion") == 1

    def test_a_version_that_azure_ended_failed_is_deleted_and_made_again(
        self, world: World, linux_vm: Any
    ) -> None:
        vm = linux_vm()
        version = cw.gallery(world, vm)
        world.arm.clear_requests()
        world.arm.inject(Fault(kind="failed-operation", operation="createGalleryImageVersion", count=1))
        try:
            cw.capture_job(world, "failed-once", vm, version=version, managed_image=False, snapshot=False)
            body = world.wait_ready("failed-once", timeout=150)
        finally:
            world.arm.clear_faults()

        assert cw.count(world, "createGalleryImageVersion") == 2
        assert cw.count(world, "deleteGalleryImageVersion") == 1
        published = world.arm.resource(cw.outputs(body)["galleryImageVersionId"])
        assert published is not None and published["properties"]["provisioningState"] == "Succeeded"
        warnings = [
            e
            for e in world.events()
            if e["type"] == "Warning" and e["involvedObject"]["name"] == "failed-once"
        ]
        assert any("ended Failed" in e["message"] for e in warnings), warnings

    def test_a_failed_version_left_by_an_earlier_attempt_is_recovered_by_the_recreated_resource(
        self, world: World, linux_vm: Any
    ) -> None:
        """The first resource is deleted while its version replicates, and Azure then ends that version
        Failed; the resource applied again adopts the generalized VM, deletes the Failed version and makes
        it again."""
        vm = linux_vm()
        version = cw.gallery(world, vm)
        world.arm.clear_requests()
        world.arm.set_latency(REPLICATION, 4.0)
        try:
            manifest = cw.capture_job(world, "again", vm, version=version, managed_image=False)
            first = world.wait_for(
                "again",
                lambda b: (
                    cw.step_state(b, "publish") == "Running"
                    and bool(cw.outputs(b).get("galleryImageVersionId"))
                ),
                timeout=120,
                what="publishing",
            )
            version_id = cw.outputs(first)["galleryImageVersionId"]
            world.arm.inject(Fault(kind="failed-operation", operation="createGalleryImageVersion", count=1))
            world.kubectl("delete", "vmgen", "again", "--timeout=60s")
            deadline = time.monotonic() + 30
            while (world.arm.resource(version_id) or {}).get("properties", {}).get(
                "provisioningState"
            ) != "Failed":
                assert time.monotonic() < deadline, "the version did not end Failed"
                time.sleep(0.1)
        finally:
            world.arm.clear_faults()
            world.arm.set_latency(REPLICATION, 0.0)

        world.apply(manifest)
        body = world.wait_ready("again", timeout=120)

        assert condition(body, "Generalized")["reason"] == "AdoptedGeneralizedVM"
        assert cw.outputs(body)["galleryImageVersionId"] == version_id
        published = world.arm.resource(version_id)
        assert published is not None and published["properties"]["provisioningState"] == "Succeeded"
        assert cw.count(world, "createGalleryImageVersion") == 2
        assert cw.count(world, "deleteGalleryImageVersion") == 1
        assert cw.count(world, "deallocate") == 1 and cw.count(world, "generalize") == 1
        assert_guest_deprovisioned(vm)


class TestARecreatedResource:
    def test_applied_again_after_a_finished_job_it_adopts_its_own_image_and_version(
        self, world: World, linux_vm: Any
    ) -> None:
        """GitOps may delete and apply a finished resource again (a prune, a sync): with Retain, what the
        first one made is still there, tagged as this resource's, and is adopted instead of made again."""
        vm = linux_vm()
        version = cw.gallery(world, vm)
        world.arm.clear_requests()
        manifest = cw.capture_job(world, "reapplied", vm, version=version, snapshot=False)
        first = cw.outputs(world.wait_ready("reapplied", timeout=150))
        world.kubectl("delete", "vmgen", "reapplied", "--timeout=60s")

        world.apply(manifest)
        body = world.wait_ready("reapplied", timeout=120)

        again = cw.outputs(body)
        assert again["managedImageId"] == first["managedImageId"]
        assert again["galleryImageVersionId"] == first["galleryImageVersionId"]
        assert first["managedImageId"] in condition(body, "Ready")["message"]
        assert cw.count(world, "createImage") == 1 and cw.count(world, "createGalleryImageVersion") == 1
