"""The capture path against the port fakes: snapshot first, approval gate, preflight, image and version."""

from __future__ import annotations

from typing import Any

from tests.unit import fakes
from tests.unit.test_workflow import World
from vmgen.domain import capture, images, model, planner
from vmgen.domain.reasons import Reason

DEFINITION = images.ImageDefinition(
    id="/galleries/golden/images/web",
    os_type=model.OsType.LINUX,
    os_state=images.OsState.GENERALIZED,
    hyper_v_generation="V2",
    security_type=images.SecurityType.TRUSTED_LAUNCH_SUPPORTED,
)
VERSION = {
    "resourceGroup": "rg-images",
    "gallery": "golden",
    "imageDefinition": "web",
    "version": "1.4.0",
    "targetRegions": [{"name": "westeurope"}, {"name": "northeurope", "replicaCount": 2}],
}
CAPTURE: dict[str, Any] = {"managedImage": {"name": "web-golden-img"}, "galleryImageVersion": VERSION}


def capture_world(vm: fakes.FakeVm | None = None, **spec: Any) -> World:
    world = World(vm or fakes.linux_vm(), preserveSource={"snapshot": True}, capture=CAPTURE, **spec)
    world.azure.definitions["web"] = DEFINITION
    return world


def writes(world: World) -> list[str]:
    return [op for op in world.azure.operations() if not op.startswith(("observe", "get_", "run_shell"))]


class TestTheImagePath:
    async def test_snapshot_image_and_version_end_ready_with_their_ids_in_outputs(self) -> None:
        world = capture_world()

        await world.run(passes=60)

        assert world.status["phase"] == "Succeeded"
        assert [name for name, s in world.status["steps"].items() if s["state"] == "Succeeded"] == [
            "validate", "snapshot", "deprovision", "shutdown", "generalize", "capture", "publish",
        ]  # fmt: skip
        outputs = world.status["outputs"]
        assert [s.rsplit("/", 1)[-1].split("-vmgen-")[0] for s in outputs["snapshots"]] == [
            "web-01-os",
            "web-01-lun0",
        ]
        assert outputs["managedImageId"].endswith("/images/web-golden-img")
        assert outputs["galleryImageVersionId"].endswith("/galleries/golden/images/web/versions/1.4.0")
        assert outputs["replication"] == {"westeurope": "Completed", "northeurope": "Completed"}
        assert world.azure.versions["1.4.0"].source == outputs["managedImageId"]
        assert "captured as" in world.condition("Ready")["message"]

    async def test_the_snapshots_are_taken_before_deprovision_and_the_image_after_generalize(self) -> None:
        world = capture_world()

        await world.run(passes=60)

        ops = writes(world)
        assert ops.index("begin_snapshot") < ops.index("begin_deallocate")
        assert world.vm.guest.deprovision_runs == 1
        assert ops.index("generalize") < ops.index("begin_managed_image") < ops.index("begin_image_version")
        assert ops.count("begin_snapshot") == 2 and ops.count("begin_managed_image") == 1

    async def test_a_restart_while_replicating_creates_nothing_twice(self) -> None:
        world = capture_world()
        world.azure.settle_after = 3
        for _ in range(60):
            await world.step()
            if world.step_state("publish") == "Running":
                break
        world.restart()

        await world.run(passes=60)

        ops = writes(world)
        assert world.status["phase"] == "Succeeded"
        assert (
            ops.count("begin_snapshot"),
            ops.count("begin_managed_image"),
            ops.count("begin_image_version"),
        ) == (
            2,
            1,
            1,
        )

    async def test_a_version_azure_ended_failed_is_deleted_and_made_again(self) -> None:
        world = capture_world()
        world.azure.end_states["version/1.4.0"] = "Failed"

        await world.run(passes=60)

        assert world.status["phase"] == "Succeeded"
        assert writes(world).count("delete_image_version") == 1
        assert writes(world).count("begin_image_version") == 2
        assert Reason.CAPTURE_FAILED in world.events.reasons("Warning")

    async def test_an_adopted_generalized_vm_is_still_captured(self) -> None:
        vm = fakes.linux_vm(power_state=model.PowerState.DEALLOCATED, generalized=True)
        world = World(vm, capture={"managedImage": {"name": "img"}})

        await world.run(passes=30)

        assert world.status["phase"] == "Succeeded"
        assert world.step_state("deprovision") == "Skipped"
        assert world.step_state("capture") == "Succeeded"


class TestWhatAnAdoptedVmFindsInAzure:
    async def test_an_image_and_version_tagged_as_this_resources_are_adopted_with_their_ids(self) -> None:
        vm = fakes.linux_vm(power_state=model.PowerState.DEALLOCATED, generalized=True)
        world = World(vm, capture=CAPTURE)
        world.azure.definitions["web"] = DEFINITION
        ours = capture.tags(world.resource().holder)
        world.azure.managed_images["web-golden-img"] = fakes.FakeResource("vm", "Succeeded", tags=ours)
        regions = ("westeurope", "northeurope")
        world.azure.versions["1.4.0"] = fakes.FakeResource("img", "Succeeded", regions=regions, tags=ours)

        await world.run(passes=30)

        assert world.status["phase"] == "Succeeded"
        assert world.status["outputs"]["managedImageId"].endswith("/images/web-golden-img")
        assert world.status["outputs"]["galleryImageVersionId"].endswith("/versions/1.4.0")
        assert "begin_managed_image" not in writes(world) and "begin_image_version" not in writes(world)

    async def test_a_version_that_another_made_is_neither_adopted_nor_deleted(self) -> None:
        vm = fakes.linux_vm(power_state=model.PowerState.DEALLOCATED, generalized=True)
        world = World(vm, capture={"galleryImageVersion": VERSION})
        world.azure.definitions["web"] = DEFINITION
        world.azure.versions["1.4.0"] = fakes.FakeResource("x", "Failed", tags=capture.tags("other/one"))

        await world.run(passes=30)

        assert world.status["phase"] == "Failed"
        assert world.condition("Ready")["reason"] == Reason.IMAGE_VERSION_EXISTS
        assert "delete_image_version" not in writes(world) and "begin_image_version" not in writes(world)

    async def test_a_managed_image_that_another_made_is_not_adopted(self) -> None:
        vm = fakes.linux_vm(power_state=model.PowerState.DEALLOCATED, generalized=True)
        world = World(vm, capture={"managedImage": {"name": "img"}})
        world.azure.managed_images["img"] = fakes.FakeResource("vm", "Succeeded")

        await world.run(passes=30)

        assert world.status["phase"] == "Failed"
        assert world.condition("Ready")["reason"] == Reason.CAPTURE_FAILED
        assert "managedImageId" not in world.status.get("outputs", {})


class TestPreconditions:
    async def test_a_definition_with_another_os_state_fails_before_anything_touches_the_vm(self) -> None:
        world = capture_world()
        world.azure.definitions["web"] = images.ImageDefinition(
            "d", model.OsType.LINUX, images.OsState.SPECIALIZED, "V2", images.SecurityType.STANDARD
        )

        await world.run()

        assert world.condition("Ready")["reason"] == Reason.IMAGE_DEFINITION_MISMATCH
        assert "OS state is Specialized" in world.condition("Ready")["message"]
        assert writes(world) == [] and world.vm.guest.deprovision_runs == 0

    async def test_a_missing_definition_fails_with_its_own_reason(self) -> None:
        world = capture_world()
        del world.azure.definitions["web"]

        await world.run()

        assert world.condition("Ready")["reason"] == Reason.IMAGE_DEFINITION_NOT_FOUND
        assert writes(world) == []

    async def test_a_managed_image_of_a_trusted_launch_vm_is_refused_up_front(self) -> None:
        world = capture_world(fakes.linux_vm(security_type="TrustedLaunch"))

        await world.run()

        assert world.condition("Ready")["reason"] == Reason.MANAGED_IMAGE_NOT_SUPPORTED
        assert writes(world) == []


class TestApprovalAndPreflight:
    async def test_manual_approval_snapshots_then_waits_and_the_guest_is_untouched(self) -> None:
        world = capture_world(approval="Manual")

        delays = [await world.step() for _ in range(8)]

        assert world.status["phase"] == "AwaitingApproval"
        assert world.condition("AwaitingApproval")["status"] == "True"
        assert planner.APPROVE_ANNOTATION in world.condition("Ready")["message"]
        assert world.step_state("snapshot") == "Succeeded"
        assert world.vm.guest.deprovision_runs == 0 and "begin_deallocate" not in writes(world)
        assert delays[-1] == planner.APPROVAL_RECHECK_SECONDS

        world.annotations[planner.APPROVE_ANNOTATION] = "true"
        await world.run(passes=60)

        assert world.status["phase"] == "Succeeded"
        assert world.condition("AwaitingApproval")["status"] == "False"

    async def test_preflight_of_a_good_vm_reports_nothing_and_changes_nothing(self) -> None:
        world = capture_world(mode="Preflight")

        await world.run()

        assert world.status["phase"] == "PreflightComplete"
        assert world.condition("Ready")["status"] == "True"
        assert world.condition("PreflightPassed")["reason"] == Reason.PREFLIGHT_PASSED
        assert "findings" not in world.status.get("outputs", {})
        assert writes(world) == [] and world.vm.guest.deprovision_runs == 0
        assert list(world.status["steps"]) == ["preflight"]

    async def test_preflight_reports_exactly_the_two_blockers(self) -> None:
        world = capture_world(fakes.linux_vm(security_type="TrustedLaunch"), mode="Preflight")
        world.azure.definitions["web"] = images.ImageDefinition(
            "d", model.OsType.LINUX, images.OsState.GENERALIZED, "V1", images.SecurityType.TRUSTED_LAUNCH
        )

        await world.run()

        findings = world.status["outputs"]["findings"]
        assert [f["reason"] for f in findings] == [
            Reason.MANAGED_IMAGE_NOT_SUPPORTED,
            Reason.IMAGE_DEFINITION_MISMATCH,
        ]
        assert "Hyper-V generation is V1" in findings[1]["message"]
        assert world.condition("Ready")["status"] == "False"
        assert world.condition("Ready")["reason"] == Reason.PREFLIGHT_FAILED
        assert writes(world) == []

    async def test_preflight_turns_a_refused_ssh_login_into_a_finding(self) -> None:
        world = World(mode="Preflight")
        world.deprovisioner.faults.add("probe", fakes.errors.AuthenticationRefused("publickey refused"))

        await world.run()

        assert [f["reason"] for f in world.status["outputs"]["findings"]] == [
            Reason.SSH_AUTHENTICATION_REFUSED
        ]
        assert world.vm.guest.deprovision_runs == 0


class TestDeletionPolicy:
    async def test_delete_removes_what_the_job_created_and_never_the_vm(self) -> None:
        world = capture_world(deletionPolicy="Delete")
        await world.run(passes=60)
        assert world.azure.snapshots and world.azure.managed_images and world.azure.versions

        await world.flow.clean_up(world.resource())

        assert (world.azure.snapshots, world.azure.managed_images, world.azure.versions) == ({}, {}, {})
        assert "web-01" in world.azure.vms
        assert not any(op.startswith("delete_vm") for op in world.azure.operations())
        assert Reason.RESOURCES_DELETED in world.events.reasons("Normal")

    async def test_a_second_clean_up_after_a_partial_one_deletes_again_without_error(self) -> None:
        world = capture_world(deletionPolicy="Delete")
        await world.run(passes=60)
        del world.azure.snapshots[next(iter(world.azure.snapshots))]

        await world.flow.clean_up(world.resource())
        await world.flow.clean_up(world.resource())

        assert world.azure.operations().count("delete_image_version") == 2


class TestWindowsPreflight:
    async def test_preflight_of_a_windows_vm_reports_every_guest_blocker_and_never_starts_sysprep(
        self,
    ) -> None:
        from tests.unit.test_workflow import windows_world

        world = windows_world(
            findings={"roles": ["AD-Domain-Services"], "pendingReboot": ["PendingFileRenameOperations"]}
        )
        world.spec["mode"] = "Preflight"

        await world.run()

        reasons = [f["reason"] for f in world.status["outputs"]["findings"]]
        assert Reason.UNSUPPORTED_SERVER_ROLE in reasons and len(reasons) == 2
        assert world.status["phase"] == "PreflightComplete"
        assert world.windows.machine.sysprep_starts == 0
        assert writes(world) == []
