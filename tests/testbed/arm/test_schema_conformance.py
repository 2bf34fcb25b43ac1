"""Every body the simulator answers matches Azure's published REST API definitions."""

from __future__ import annotations

import uuid
from typing import Any

import jsonschema
import pytest
from azure.core.exceptions import AzureError
from azure.mgmt.compute.models import RunCommandInput

from vmgen_testbed.arm import schema
from vmgen_testbed.arm.server import ArmSimulator, Fault
from vmgen_testbed.guest import ScriptResult


class EchoGuest:
    async def power_on(self) -> None:
        return None

    async def power_off(self) -> None:
        return None

    async def run_script(self, script: str, *, shell: str, timeout: float) -> ScriptResult:  # noqa: ASYNC109 (the Guest protocol)
        return ScriptResult(0, script, "")


async def exercise_every_operation(arm: ArmSimulator, client: Any, sub: str) -> None:
    vm_id = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
    vms = client.virtual_machines
    await vms.get("rg", "vm", expand="instanceView")
    await vms.instance_view("rg", "vm")
    await (
        await vms.begin_run_command("rg", "vm", RunCommandInput(command_id="RunShellScript", script=["id"]))
    ).result()
    arm.inject(Fault(kind="failed-operation", operation="powerOff", error_code="InternalExecutionError"))
    with pytest.raises(AzureError):
        await (await vms.begin_power_off("rg", "vm")).result()
    with pytest.raises(AzureError):
        await vms.generalize("rg", "vm")
    with pytest.raises(AzureError):
        await vms.get("rg", "nope")
    with pytest.raises(AzureError):
        await client.images.begin_create_or_update(
            "rg", "i", {"location": "westeurope", "properties": {"sourceVirtualMachine": {"id": vm_id}}}
        )
    await (await vms.begin_deallocate("rg", "vm")).result()
    await vms.generalize("rg", "vm")
    await (
        await client.images.begin_create_or_update(
            "rg", "i", {"location": "westeurope", "properties": {"sourceVirtualMachine": {"id": vm_id}}}
        )
    ).result()
    disk = (await vms.get("rg", "vm")).storage_profile.os_disk.managed_disk.id
    await (
        await client.snapshots.begin_create_or_update(
            "rg",
            "s",
            {
                "location": "westeurope",
                "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}},
            },
        )
    ).result()
    await (await client.galleries.begin_create_or_update("rg", "g", {"location": "westeurope"})).result()
    await (
        await client.gallery_images.begin_create_or_update(
            "rg",
            "g",
            "d",
            {
                "location": "westeurope",
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "hyperVGeneration": "V2",
                    "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
                },
            },
        )
    ).result()
    await (
        await client.gallery_image_versions.begin_create_or_update(
            "rg",
            "g",
            "d",
            "1.0.0",
            {
                "location": "westeurope",
                "properties": {"storageProfile": {"source": {"virtualMachineId": vm_id}}},
            },
        )
    ).result()


async def test_every_logged_response_body_validates_against_azures_schema(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub = str(uuid.uuid4())
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm", guest=EchoGuest())
    await exercise_every_operation(arm, compute_client(sub), sub)
    records = [r for r in arm.requests() if r.api == "arm" and r.response_body is not None]
    checked = set()
    for record in records:
        definition = schema.response_definition(record.operation, record.status or 0)
        assert definition is not None, f"no schema for {record.operation} {record.status}"
        schema.validate(definition, record.response_body)
        checked.add(definition)
    assert checked >= {
        "VirtualMachine",
        "VirtualMachineInstanceView",
        "OperationStatusResult",
        "RunCommandResult",
        "CloudError",
        "Image",
        "Gallery",
        "GalleryImage",
        "GalleryImageVersion",
        "Snapshot",
    }


def test_the_schema_check_rejects_a_body_azure_would_not_send() -> None:
    with pytest.raises(jsonschema.ValidationError, match="'info' is not one of"):
        schema.validate("RunCommandResult", {"value": [{"code": "x", "level": "info"}]})
    with pytest.raises(jsonschema.ValidationError, match="'location' is a required property"):
        schema.validate("VirtualMachine", {"name": "vm"})
