"""The irreversible path made safe: a capture target that cannot work fails before anything touches the
VM; a Manual approval holds the guest untouched until a person approves; Preflight only reads; and
deletionPolicy decides what happens to what the job created, never to the VM.

"Untouched" is checked three ways: the guest's users, host keys, waagent state and home are byte for
byte what they were; the VM is running and not generalized in Azure; and the request log holds no write
(no snapshot, no deallocate, no generalize), only GETs and, for Preflight, the read-only Run Command.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e import capture_world as cw
from tests.e2e.conftest import World, assert_guest_deprovisioned, condition


def assert_vm_untouched(world: World, vm: Any, before: dict[str, str]) -> None:
    assert cw.guest_files(vm) == before, "the guest changed"
    azure = world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)
    assert azure["powerState"] == "running" and azure["generalized"] is False


class TestMismatchedCaptureTargetsFailBeforeTheVmIsTouched:
    @pytest.mark.parametrize(
        ("definition", "named"),
        [
            ({"os_state": "Specialized"}, "its OS state is Specialized"),
            ({"hyper_v_generation": "V1"}, "its Hyper-V generation is V1, the VM's is V2"),
            ({"security_type": "TrustedLaunch"}, "security type TrustedLaunch does not accept a Standard"),
        ],
        ids=["os-state", "hyper-v-generation", "security-type"],
    )
    def test_an_image_definition_that_does_not_fit_the_vm_fails_validation(
        self, world: World, linux_vm: Any, definition: dict[str, Any], named: str
    ) -> None:
        vm = linux_vm()
        version = cw.gallery(world, vm, **definition)
        before = cw.guest_files(vm)
        world.arm.clear_requests()
        cw.capture_job(world, "mismatch", vm, version=version)

        body = world.wait_failed("mismatch")

        ready = condition(body, "Ready")
        assert ready["reason"] == "ImageDefinitionMismatch"
        assert named in ready["message"] and "The VM was not touched." in ready["message"]
        assert cw.step_state(body, "snapshot") in (None, "Pending")
        assert "snapshots" not in cw.outputs(body)
        assert_vm_untouched(world, vm, before)
        assert cw.writes(world) == [], [r.operation for r in cw.writes(world)]
        assert "runCommand" not in cw.operations(world)

    def test_a_managed_image_of_a_trusted_launch_vm_is_refused_before_the_vm_is_touched(
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
        before = cw.guest_files(vm)
        world.arm.clear_requests()
        cw.capture_job(world, "trusted", vm, version=version)

        body = world.wait_failed("trusted")

        assert condition(body, "Ready")["reason"] == "ManagedImageNotSupported"
        assert_vm_untouched(world, vm, before)
        assert cw.writes(world) == []


class TestDeletionPolicy:
    def test_delete_removes_the_snapshot_image_and_version_but_never_the_vm(
        self, world: World, linux_vm: Any
    ) -> None:
        vm = linux_vm()
        version = cw.gallery(world, vm)
        cw.capture_job(world, "cleaned", vm, version=version, deletionPolicy="Delete")
        body = world.wait_ready("cleaned", timeout=150)
        out = cw.outputs(body)
        created = [*out["snapshots"], out["managedImageId"], out["galleryImageVersionId"]]
        assert all(world.arm.resource(i) is not None for i in created)

        world.kubectl("delete", "vmgen", "cleaned", "--timeout=90s")

        assert [i for i in created if world.arm.resource(i) is not None] == []
        assert world.kubectl("get", "vmgen", "cleaned", check=False).returncode != 0
        azure = world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)  # raises when deleted
        assert azure["generalized"] is True
        assert "deleteVm" not in cw.operations(world)
        deleted = {e["reason"] for e in world.events() if e["involvedObject"]["name"] == "cleaned"}
        assert "ResourcesDeleted" in deleted

    def test_retain_keeps_what_the_job_created(self, world: World, linux_vm: Any) -> None:
        vm = linux_vm()
        version = cw.gallery(world, vm)
        cw.capture_job(world, "kept", vm, version=version)  # deletionPolicy defaults to Retain
        body = world.wait_ready("kept", timeout=150)
        out = cw.outputs(body)
        created = [*out["snapshots"], out["managedImageId"], out["galleryImageVersionId"]]
        world.arm.clear_requests()

        world.kubectl("delete", "vmgen", "kept", "--timeout=60s")

        assert all(world.arm.resource(i) is not None for i in created)
        assert world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["generalized"] is True
        assert not [r for r in cw.arm_requests(world) if r.method == "DELETE"]

    def test_delete_while_awaiting_approval_removes_the_snapshots_and_leaves_the_vm_as_it_was(
        self, world: World, linux_vm: Any
    ) -> None:
        """GitOps: merged, looked at, not approved after all: deleting the resource undoes the snapshot."""
        vm = linux_vm()
        before = cw.guest_files(vm)
        cw.capture_job(
            world, "withdrawn", vm, managed_image=False, approval="Manual", deletionPolicy="Delete"
        )
        waiting = world.wait_for(
            "withdrawn",
            lambda b: b.get("status", {}).get("phase") == "AwaitingApproval",
            timeout=90,
            what="AwaitingApproval",
        )
        (snapshot_id,) = cw.outputs(waiting)["snapshots"]
        assert world.arm.resource(snapshot_id) is not None

        world.kubectl("delete", "vmgen", "withdrawn", "--timeout=90s")

        assert world.arm.resource(snapshot_id) is None
        assert_vm_untouched(world, vm, before)


class TestManualApproval:
    def test_the_guest_is_untouched_until_the_approve_annotation_is_set(
        self, world: World, linux_vm: Any
    ) -> None:
        vm = linux_vm()
        before = cw.guest_files(vm)
        world.arm.clear_requests()
        cw.capture_job(world, "gated", vm, managed_image=False, approval="Manual")

        waiting = world.wait_for(
            "gated",
            lambda b: any(
                c["type"] == "AwaitingApproval" and c["status"] == "True"
                for c in b.get("status", {}).get("conditions", [])
            ),
            timeout=90,
            what="AwaitingApproval",
        )
        time.sleep(3)  # a few more passes: still nothing may happen

        assert world.get("gated")["status"]["phase"] == "AwaitingApproval"
        assert 'vmgen.io/approve: "true"' in condition(waiting, "AwaitingApproval")["message"]
        assert condition(waiting, "Ready")["status"] == "False"
        assert len(cw.outputs(waiting)["snapshots"]) == 1, "snapshots are taken before the gate"
        assert [r.operation for r in cw.writes(world)] == ["createSnapshot"]
        assert "runCommand" not in cw.operations(world)
        assert_vm_untouched(world, vm, before)

        world.kubectl("annotate", "vmgen", "gated", "vmgen.io/approve=true")
        body = world.wait_ready("gated", timeout=90)

        assert condition(body, "AwaitingApproval")["status"] == "False"
        assert body["status"]["steps"]["approval"]["state"] == "Succeeded"
        assert_guest_deprovisioned(vm)
        assert world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["generalized"] is True


class TestPreflight:
    def test_a_good_vm_passes_and_nothing_but_reads_reach_azure_or_the_guest(
        self, world: World, linux_vm: Any
    ) -> None:
        vm = linux_vm()
        version = cw.gallery(world, vm)
        before = cw.guest_files(vm)
        world.arm.clear_requests()
        world.secrets(vm)
        manifest = world.linux_manifest("checked", vm)  # no pinned host keys: read through Run Command
        manifest["spec"].update(
            mode="Preflight",
            preserveSource={"snapshot": True},
            capture={"managedImage": {"name": f"{vm.name}-img"}, "galleryImageVersion": version},
        )
        world.apply(manifest)

        body = world.wait_for(
            "checked",
            lambda b: b.get("status", {}).get("phase") == "PreflightComplete",
            timeout=90,
            what="PreflightComplete",
        )

        assert condition(body, "Ready")["status"] == "True"
        assert condition(body, "PreflightPassed")["status"] == "True"
        assert cw.outputs(body).get("findings", []) == []
        assert_vm_untouched(world, vm, before)
        ops = cw.operations(world)
        assert {r.method for r in cw.arm_requests(world)} <= {"GET", "POST"}
        assert cw.writes(world) == [], [r.operation for r in cw.writes(world)]
        assert "runCommand" in ops, "the host keys are read through Run Command"
        assert not {"createSnapshot", "createImage", "createGalleryImageVersion"} & set(ops)

    def test_a_vm_with_two_blockers_reports_exactly_those_and_changes_nothing(
        self, world: World, linux_vm: Any
    ) -> None:
        vm, stranger = linux_vm(), linux_vm()
        version = cw.gallery(world, vm, hyper_v_generation="V1")
        before = cw.guest_files(vm)
        world.arm.clear_requests()
        world.secrets(vm, ssh_key=stranger.sandbox.private_key)  # a key the guest does not accept
        manifest = world.linux_manifest("blocked", vm, host_keys=list(vm.sandbox.host_keys))
        manifest["spec"].update(
            mode="Preflight",
            capture={"galleryImageVersion": version},
        )
        world.apply(manifest)

        body = world.wait_for(
            "blocked",
            lambda b: b.get("status", {}).get("phase") == "PreflightComplete",
            timeout=90,
            what="PreflightComplete",
        )

        findings = cw.outputs(body)["findings"]
        reasons = sorted(f["reason"] for f in findings)
        assert reasons == ["ImageDefinitionMismatch", "SSHAuthenticationRefused"], findings
        assert condition(body, "Ready")["status"] == "False"
        assert condition(body, "PreflightPassed")["status"] == "False"
        assert_vm_untouched(world, vm, before)
        assert cw.writes(world) == [], [r.operation for r in cw.writes(world)]
        assert {r.method for r in cw.arm_requests(world)} == {"GET"}
