"""`AzureImages` against the ARM simulator: snapshots, managed images, image definitions and gallery image
versions through the real async SDK, resumed from continuation tokens, in vmgen's error tree."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.contract.operator.conftest import RESOURCE_GROUP
from vmgen.adapters import azure, azure_images
from vmgen.domain import errors, images, model
from vmgen_testbed.arm.galleries import REPLICATION
from vmgen_testbed.arm.server import Fault


async def eventually(
    probe: Callable[[], Awaitable[images.ImageVersion | None]], done: Callable[[images.ImageVersion], bool]
) -> images.ImageVersion:
    """Read until `done`, within a deadline (replication is its own step: the operator polls too)."""
    deadline = time.monotonic() + 10
    while (found := await probe()) is None or not done(found):
        assert time.monotonic() < deadline, f"still {found} after 10 s"
        await asyncio.sleep(0.05)
    return found


@pytest.fixture
def capture(compute: azure.AzureCompute) -> azure_images.AzureImages:
    return azure_images.AzureImages(compute.session)


def ref(vm: model.VmRef, name: str) -> images.ResourceRef:
    return images.ResourceRef(vm.subscription_id, vm.resource_group, f"{vm.name}-{name}")


def definition(arm: Any, vm: model.VmRef, **features: Any) -> images.ImageDefinitionRef:
    gallery, image = f"gal{vm.name.replace('-', '')}", "web"
    arm.seed_gallery_image(
        subscription_id=vm.subscription_id,
        resource_group=RESOURCE_GROUP,
        gallery=gallery,
        image=image,
        **features,
    )
    return images.ImageDefinitionRef(vm.subscription_id, RESOURCE_GROUP, gallery, image)


def version_request(source: str, *regions: str) -> images.ImageVersionRequest:
    return images.ImageVersionRequest(
        location="westeurope",
        source_id=source,
        target_regions=tuple(images.TargetRegion(r, 1, "Standard_LRS") for r in regions or ("westeurope",)),
        end_of_life=datetime(2031, 1, 1, tzinfo=UTC),
    )


class TestSnapshots:
    async def test_a_snapshot_of_the_os_disk_is_begun_recorded_and_waited_for(
        self,
        arm: Any,
        capture: azure_images.AzureImages,
        compute: azure.AzureCompute,
        seed_vm: Callable[..., model.VmRef],
    ) -> None:
        vm = seed_vm()
        disk_id = arm.world.vm(vm.subscription_id, vm.resource_group, vm.name).os_disk_id
        token = await capture.begin_snapshot(
            ref(vm, "os"), location="westeurope", disk_id=disk_id, incremental=True
        )
        assert isinstance(token, str) and token

        snapshot = await capture.wait_snapshot(ref(vm, "os"), token)

        assert (snapshot.provisioning_state, snapshot.source_disk_id) == ("Succeeded", disk_id)
        assert (snapshot.os_type, snapshot.incremental) == (model.OsType.LINUX, True)
        assert await capture.get_snapshot(ref(vm, "os")) == snapshot

    async def test_a_missing_snapshot_reads_as_none_and_deleting_it_is_harmless(
        self, capture: azure_images.AzureImages, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm()
        assert await capture.get_snapshot(ref(vm, "nope")) is None
        await capture.delete_snapshot(ref(vm, "nope"))

    async def test_a_snapshot_that_ends_failed_with_a_retryable_code_is_an_operation_lost(
        self, arm: Any, capture: azure_images.AzureImages, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm()
        disk_id = arm.world.vm(vm.subscription_id, vm.resource_group, vm.name).os_disk_id
        arm.inject(Fault(kind="failed-operation", operation="createSnapshot"))
        token = await capture.begin_snapshot(
            ref(vm, "os"), location="westeurope", disk_id=disk_id, incremental=False
        )
        with pytest.raises(errors.AzureOperationLost, match="snapshot operation Failed"):
            await capture.wait_snapshot(ref(vm, "os"), token)


class TestManagedImages:
    async def test_an_image_of_a_generalized_vm_is_created_from_its_token(
        self, capture: azure_images.AzureImages, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm(power_state="deallocated", generalized=True)
        request = images.ManagedImageRequest(
            location="westeurope", source_vm=vm.resource_id, hyper_v_generation="V2"
        )
        token = await capture.begin_managed_image(ref(vm, "img"), request)
        image = await capture.wait_managed_image(ref(vm, "img"), token)
        assert (image.provisioning_state, image.source_vm, image.hyper_v_generation) == (
            "Succeeded",
            vm.resource_id,
            "V2",
        )
        await capture.delete_managed_image(ref(vm, "img"))
        assert await capture.get_managed_image(ref(vm, "img")) is None

    async def test_an_image_of_a_trusted_launch_vm_is_refused_for_good(
        self, capture: azure_images.AzureImages, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm(power_state="deallocated", generalized=True, security_type="TrustedLaunch")
        request = images.ManagedImageRequest(
            location="westeurope", source_vm=vm.resource_id, hyper_v_generation="V2"
        )
        with pytest.raises(errors.AzureOperationNotAllowed, match="TrustedLaunch security type"):
            await capture.begin_managed_image(ref(vm, "img"), request)


class TestImageDefinitions:
    async def test_a_definition_is_read_with_os_type_state_generation_and_security_type(
        self, arm: Any, capture: azure_images.AzureImages, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm()
        found = await capture.get_image_definition(
            definition(
                arm, vm, os_state="Specialized", hyper_v_generation="V1", security_type="TrustedLaunch"
            )
        )
        assert found is not None
        assert (found.os_type, found.os_state, found.hyper_v_generation, found.security_type) == (
            model.OsType.LINUX,
            images.OsState.SPECIALIZED,
            "V1",
            images.SecurityType.TRUSTED_LAUNCH,
        )

    async def test_a_definition_without_features_is_standard_and_a_missing_one_is_none(
        self, arm: Any, capture: azure_images.AzureImages, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm()
        found = await capture.get_image_definition(definition(arm, vm))
        assert found is not None and found.security_type is images.SecurityType.STANDARD
        missing = images.ImageDefinitionRef(vm.subscription_id, RESOURCE_GROUP, "nogallery", "web")
        assert await capture.get_image_definition(missing) is None


class TestImageVersions:
    async def test_a_version_replicates_per_region_and_is_ready_when_all_completed(
        self, arm: Any, capture: azure_images.AzureImages, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm(power_state="deallocated", generalized=True)
        version = images.ImageVersionRef(definition(arm, vm), "1.0.0")
        arm.set_latency(REPLICATION, 0.6)
        try:
            token = await capture.begin_image_version(
                version, version_request(vm.resource_id, "westeurope", "northeurope")
            )
            assert token
            during = await capture.get_image_version(version)
            assert during is not None and not during.ready
            assert during.aggregated is images.ReplicationState.IN_PROGRESS
            assert [(r.region, r.state) for r in during.regions] == [
                ("westeurope", images.ReplicationState.REPLICATING),
                ("northeurope", images.ReplicationState.REPLICATING),
            ]
            current = await eventually(lambda: capture.get_image_version(version), lambda found: found.ready)
        finally:
            arm.set_latency(REPLICATION, 0.0)
        assert current.source_id == vm.resource_id
        assert {(r.state, r.progress) for r in current.regions} == {(images.ReplicationState.COMPLETED, 100)}

    async def test_a_mismatched_generation_is_refused_for_good_not_retried(
        self, arm: Any, capture: azure_images.AzureImages, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm(power_state="deallocated", generalized=True)
        version = images.ImageVersionRef(definition(arm, vm, hyper_v_generation="V1"), "1.0.0")
        with pytest.raises(errors.AzureOperationNotAllowed, match="different Hypervisor generation"):
            await capture.begin_image_version(version, version_request(vm.resource_id))

    async def test_a_failed_version_reads_failed_and_is_deleted(
        self, arm: Any, capture: azure_images.AzureImages, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm(power_state="deallocated", generalized=True)
        version = images.ImageVersionRef(definition(arm, vm), "1.0.0")
        arm.inject(Fault(kind="failed-operation", operation="createGalleryImageVersion"))
        await capture.begin_image_version(version, version_request(vm.resource_id))
        found = await eventually(
            lambda: capture.get_image_version(version), lambda found: found.provisioning_state != "Creating"
        )
        assert (found.provisioning_state, found.aggregated) == ("Failed", images.ReplicationState.FAILED)
        await capture.delete_image_version(version)
        assert await capture.get_image_version(version) is None

    async def test_a_version_from_a_managed_image_names_the_image_as_its_source(
        self, arm: Any, capture: azure_images.AzureImages, seed_vm: Callable[..., model.VmRef]
    ) -> None:
        vm = seed_vm(power_state="deallocated", generalized=True)
        request = images.ManagedImageRequest(
            location="westeurope", source_vm=vm.resource_id, hyper_v_generation="V2"
        )
        image = await capture.wait_managed_image(
            ref(vm, "img"), await capture.begin_managed_image(ref(vm, "img"), request)
        )
        version = images.ImageVersionRef(definition(arm, vm), "2.0.0")
        await capture.begin_image_version(version, version_request(image.id))
        found = await capture.get_image_version(version)
        assert found is not None and found.source_id == image.id
