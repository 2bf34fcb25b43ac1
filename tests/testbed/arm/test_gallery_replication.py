"""Gallery image versions replicate to their target regions over a configurable time, can be made to fail, and
are deleted as long-running operations."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from arm_test_support import assert_logged_bodies_match_azure

from vmgen_testbed.arm.galleries import REPLICATION
from vmgen_testbed.arm.server import ArmSimulator, Fault


@pytest.fixture(autouse=True)
def bodies_match_azures_schema(arm: ArmSimulator) -> Iterator[None]:
    start = len(arm.requests())
    yield
    assert_logged_bodies_match_azure(arm.requests()[start:])


@pytest.fixture
def slow_replication(arm: ArmSimulator) -> Any:
    arm.set_latency(REPLICATION, 1.0)
    yield
    arm.set_latency(REPLICATION, 0.0)


def seed(arm: ArmSimulator) -> tuple[str, str]:
    sub = str(uuid.uuid4())
    arm.seed_vm(
        subscription_id=sub, resource_group="rg", name="vm", power_state="deallocated", generalized=True
    )
    arm.seed_gallery_image(subscription_id=sub, resource_group="rg", gallery="gal", image="web")
    return sub, f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"


def two_regions(vm_id: str) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "properties": {
            "storageProfile": {"source": {"virtualMachineId": vm_id}},
            "publishingProfile": {
                "targetRegions": [
                    {"name": "westeurope", "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS"},
                    {"name": "northeurope", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"},
                ],
                "excludeFromLatest": True,
                "endOfLifeDate": "2030-01-01T00:00:00Z",
            },
        },
    }


class TestReplication:
    async def test_replication_progresses_per_region_and_ends_completed(
        self, arm: ArmSimulator, compute_client: Any, slow_replication: None
    ) -> None:
        sub, vm_id = seed(arm)
        versions = compute_client(sub).gallery_image_versions
        started = time.monotonic()
        poller = await versions.begin_create_or_update("rg", "gal", "web", "1.0.0", two_regions(vm_id))
        await asyncio.sleep(0.5)
        during = await versions.get("rg", "gal", "web", "1.0.0", expand="ReplicationStatus")
        assert during.provisioning_state == "Creating"
        assert during.replication_status.aggregated_state == "InProgress"
        assert [(s.region, s.state) for s in during.replication_status.summary] == [
            ("westeurope", "Replicating"),
            ("northeurope", "Replicating"),
        ]
        assert all(0 < s.progress < 100 for s in during.replication_status.summary)
        version = await poller.result()
        assert time.monotonic() - started >= 1.0
        after = await versions.get("rg", "gal", "web", "1.0.0", expand="ReplicationStatus")
        assert (version.provisioning_state, after.replication_status.aggregated_state) == (
            "Succeeded",
            "Completed",
        )
        assert {(s.state, s.progress) for s in after.replication_status.summary} == {("Completed", 100)}

    async def test_the_publishing_profile_keeps_regions_replicas_and_end_of_life(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm)
        versions = compute_client(sub).gallery_image_versions
        await (
            await versions.begin_create_or_update("rg", "gal", "web", "1.0.0", two_regions(vm_id))
        ).result()
        profile = (await versions.get("rg", "gal", "web", "1.0.0")).publishing_profile
        assert [
            (r.name, r.regional_replica_count, r.storage_account_type) for r in profile.target_regions
        ] == [
            ("westeurope", 1, "Standard_LRS"),
            ("northeurope", 2, "Standard_ZRS"),
        ]
        assert profile.exclude_from_latest is True
        assert profile.end_of_life_date.year == 2030

    async def test_a_get_without_expand_shows_no_replication_status(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm)
        versions = compute_client(sub).gallery_image_versions
        await (
            await versions.begin_create_or_update("rg", "gal", "web", "1.0.0", two_regions(vm_id))
        ).result()
        assert (await versions.get("rg", "gal", "web", "1.0.0")).replication_status is None


class TestFailedVersions:
    async def test_an_injected_failure_leaves_the_version_failed_and_it_can_be_deleted_and_made_again(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm)
        versions = compute_client(sub).gallery_image_versions
        arm.inject(Fault(kind="failed-operation", operation="createGalleryImageVersion"))
        poller = await versions.begin_create_or_update("rg", "gal", "web", "1.0.0", two_regions(vm_id))
        with pytest.raises(Exception, match="InternalExecutionError"):
            await poller.result()
        failed = await versions.get("rg", "gal", "web", "1.0.0", expand="ReplicationStatus")
        assert (failed.provisioning_state, failed.replication_status.aggregated_state) == ("Failed", "Failed")
        assert all(s.state == "Failed" and s.details for s in failed.replication_status.summary)

        await (await versions.begin_delete("rg", "gal", "web", "1.0.0")).result()
        again = await (
            await versions.begin_create_or_update("rg", "gal", "web", "1.0.0", two_regions(vm_id))
        ).result()
        assert again.provisioning_state == "Succeeded"

    async def test_a_version_from_a_managed_image_is_published(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm)
        client = compute_client(sub)
        image = await (
            await client.images.begin_create_or_update(
                "rg", "img", {"location": "westeurope", "properties": {"sourceVirtualMachine": {"id": vm_id}}}
            )
        ).result()
        body = {"location": "westeurope", "properties": {"storageProfile": {"source": {"id": image.id}}}}
        version = await (
            await client.gallery_image_versions.begin_create_or_update("rg", "gal", "web", "2.0.0", body)
        ).result()
        assert (version.provisioning_state, version.storage_profile.source.id) == ("Succeeded", image.id)
