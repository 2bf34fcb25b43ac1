"""Capture targets refuse what Azure refuses: Trusted Launch managed images, and image definitions whose OS
state, Hyper-V generation or security type differ from the source VM's, each with its own error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from arm_test_support import assert_logged_bodies_match_azure, error_code, error_message
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from vmgen_testbed.arm.server import ArmSimulator


@pytest.fixture(autouse=True)
def bodies_match_azures_schema(arm: ArmSimulator) -> Iterator[None]:
    start = len(arm.requests())
    yield
    assert_logged_bodies_match_azure(arm.requests()[start:])


def seed(arm: ArmSimulator, **state: Any) -> tuple[str, str]:
    sub = str(uuid.uuid4())
    state.setdefault("generalized", True)
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm", power_state="deallocated", **state)
    return sub, f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"


def version_body(vm_id: str) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "properties": {"storageProfile": {"source": {"virtualMachineId": vm_id}}},
    }


async def create_version(client: Any, vm_id: str, name: str = "1.0.0") -> Any:
    poller = await client.gallery_image_versions.begin_create_or_update(
        "rg", "gal", "web", name, version_body(vm_id)
    )
    return await poller.result()


class TestManagedImages:
    async def test_a_managed_image_of_a_trusted_launch_vm_is_refused_with_azures_text(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm, security_type="TrustedLaunch")
        with pytest.raises(ResourceExistsError) as raised:
            await compute_client(sub).images.begin_create_or_update(
                "rg", "img", {"location": "westeurope", "properties": {"sourceVirtualMachine": {"id": vm_id}}}
            )
        assert error_code(raised.value) == "OperationNotAllowed"
        assert error_message(raised.value) == (
            "Creation of managed images are not supported for virtual machine with TrustedLaunch "
            "security type."
        )

    async def test_a_managed_image_takes_the_vms_hyper_v_generation_and_data_disks(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm, hyper_v_generation="V1", data_disks=2)
        image = await (
            await compute_client(sub).images.begin_create_or_update(
                "rg", "img", {"location": "westeurope", "properties": {"sourceVirtualMachine": {"id": vm_id}}}
            )
        ).result()
        assert image.hyper_v_generation == "V1"
        assert [disk.lun for disk in image.storage_profile.data_disks] == [0, 1]

    async def test_a_deleted_image_is_gone_and_deleting_it_again_succeeds(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm)
        client = compute_client(sub)
        body = {"location": "westeurope", "properties": {"sourceVirtualMachine": {"id": vm_id}}}
        await (await client.images.begin_create_or_update("rg", "img", body)).result()
        await (await client.images.begin_delete("rg", "img")).result()
        assert (
            arm.resource(f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/images/img")
            is None
        )
        await (await client.images.begin_delete("rg", "img")).result()
        deletes = [r.status for r in arm.requests() if r.operation == "deleteImage" and sub in r.path]
        assert deletes == [202, 204]


class TestImageDefinitionMismatches:
    async def test_a_definition_created_without_a_generation_is_v1_and_refuses_a_v2_vm(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm)
        client = compute_client(sub)
        await (
            await client.galleries.begin_create_or_update("rg", "gal", {"location": "westeurope"})
        ).result()
        definition = await (
            await client.gallery_images.begin_create_or_update(
                "rg",
                "gal",
                "web",
                {
                    "location": "westeurope",
                    "properties": {
                        "osType": "Linux",
                        "osState": "Generalized",
                        "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
                    },
                },
            )
        ).result()
        assert definition.hyper_v_generation == "V1"
        with pytest.raises(HttpResponseError) as raised:
            await create_version(client, vm_id)
        assert error_code(raised.value) == "Conflict"
        assert error_message(raised.value) == (
            f"The resource with id '{vm_id}' has a different Hypervisor generation ['V2'] than the parent "
            "gallery image Hypervisor generation ['V1']."
        )

    async def test_a_vm_that_is_not_generalized_is_refused_by_a_generalized_definition(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm, generalized=False)
        arm.seed_gallery_image(subscription_id=sub, resource_group="rg", gallery="gal", image="web")
        with pytest.raises(HttpResponseError) as raised:
            await create_version(compute_client(sub), vm_id)
        assert error_message(raised.value) == (
            "The operation 'Create Gallery Image Version' requires the Virtual Machine 'vm' to be "
            "Generalized."
        )

    async def test_a_generalized_vm_is_refused_by_a_specialized_definition(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm)
        arm.seed_gallery_image(
            subscription_id=sub, resource_group="rg", gallery="gal", image="web", os_state="Specialized"
        )
        with pytest.raises(HttpResponseError) as raised:
            await create_version(compute_client(sub), vm_id)
        assert error_code(raised.value) == "Conflict"
        assert "OS state is ['Specialized']" in error_message(raised.value)

    @pytest.mark.parametrize(
        ("vm_security", "definition_security", "shown"),
        [
            ("TrustedLaunch", None, ("TrustedLaunch", "Standard")),
            (None, "ConfidentialVM", ("Standard", "ConfidentialVM")),
        ],
    )
    async def test_a_security_type_that_differs_from_the_definitions_is_refused(
        self,
        arm: ArmSimulator,
        compute_client: Any,
        vm_security: str | None,
        definition_security: str | None,
        shown: tuple[str, str],
    ) -> None:
        sub, vm_id = seed(arm, security_type=vm_security)
        arm.seed_gallery_image(
            subscription_id=sub,
            resource_group="rg",
            gallery="gal",
            image="web",
            security_type=definition_security,
        )
        with pytest.raises(HttpResponseError) as raised:
            await create_version(compute_client(sub), vm_id)
        assert error_message(raised.value) == (
            f"The resource with id '{vm_id}' has a different security type ['{shown[0]}'] than the parent "
            f"gallery image security type ['{shown[1]}']."
        )

    async def test_a_supported_only_security_type_refuses_a_vm_source(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm, security_type="TrustedLaunch")
        arm.seed_gallery_image(
            subscription_id=sub,
            resource_group="rg",
            gallery="gal",
            image="web",
            security_type="TrustedLaunchSupported",
        )
        with pytest.raises(HttpResponseError) as raised:
            await create_version(compute_client(sub), vm_id)
        assert error_code(raised.value) == "InvalidParameter"
        assert "Currently only Vhd Blob, User Image and Gallery Image Version sources" in error_message(
            raised.value
        )

    async def test_a_trusted_launch_vm_is_captured_into_a_trusted_launch_definition(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm, security_type="TrustedLaunch")
        arm.seed_gallery_image(
            subscription_id=sub,
            resource_group="rg",
            gallery="gal",
            image="web",
            security_type="TrustedLaunch",
        )
        client = compute_client(sub)
        definition = await client.gallery_images.get("rg", "gal", "web")
        assert [(f.name, f.value) for f in definition.features] == [("SecurityType", "TrustedLaunch")]
        version = await create_version(client, vm_id)
        assert version.provisioning_state == "Succeeded"
        vm = await client.virtual_machines.get("rg", "vm")
        assert vm.security_profile.security_type == "TrustedLaunch"

    async def test_an_existing_version_cannot_change_its_source(
        self, arm: ArmSimulator, compute_client: Any
    ) -> None:
        sub, vm_id = seed(arm)
        arm.seed_vm(
            subscription_id=sub,
            resource_group="rg",
            name="other",
            power_state="deallocated",
            generalized=True,
        )
        arm.seed_gallery_image(subscription_id=sub, resource_group="rg", gallery="gal", image="web")
        client = compute_client(sub)
        await create_version(client, vm_id)
        with pytest.raises(HttpResponseError) as raised:
            await create_version(client, vm_id.replace("/vm", "/other"))
        assert error_code(raised.value) == "PropertyChangeNotAllowed"
