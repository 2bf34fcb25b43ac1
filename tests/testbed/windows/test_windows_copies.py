"""Copies of a modelled Windows VM, and domain membership as Azure and Windows show it.

A snapshot of a Windows VM's OS disk holds that machine's state; a VM built from a disk made from it
boots a new machine with that state, its own Run Command target and its own WinRM endpoint. A domain
join shows inside the guest (Win32_ComputerSystem, read by the operator's own script) and, when the
JsonADDomainExtension made it, in the VM's extensions (GET .../extensions and the VM's `resources`).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute.models import RunCommandInput

from vmgen.domain import copy_safety
from vmgen_testbed.arm import schema
from vmgen_testbed.arm.server import ArmSimulator

LOCATION = "westeurope"


async def run_powershell(compute: Any, vm: Any, name: str, script: str) -> str:
    poller = await compute.virtual_machines.begin_run_command(
        vm.resource_group, name, RunCommandInput(command_id="RunPowerShellScript", script=script.splitlines())
    )
    return str((await poller.result()).value[0].message)


async def membership(compute: Any, vm: Any, name: str) -> copy_safety.GuestDomain:
    return copy_safety.parse_domain_membership(
        await run_powershell(compute, vm, name, copy_safety.domain_membership_script())
    )


async def copy_of(compute: Any, network: Any, vm: Any, name: str) -> Any:
    """Snapshot -> disk -> NIC in the source's subnet -> VM, as vmgen builds a copy."""
    rg = vm.resource_group
    source = await compute.virtual_machines.get(rg, vm.name)
    os_disk = source.storage_profile.os_disk.managed_disk.id
    snapshot = await (
        await compute.snapshots.begin_create_or_update(
            rg,
            f"{name}-snap",
            {
                "location": LOCATION,
                "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": os_disk}},
            },
        )
    ).result()
    disk = await (
        await compute.disks.begin_create_or_update(
            rg,
            f"{name}-os",
            {
                "location": LOCATION,
                "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": snapshot.id}},
            },
        )
    ).result()
    subnet = (await network.network_interfaces.get(rg, f"{vm.name}-nic")).ip_configurations[0].subnet.id
    nic = await (
        await network.network_interfaces.begin_create_or_update(
            rg,
            f"{name}-nic",
            {
                "location": LOCATION,
                "properties": {
                    "ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet}}}]
                },
            },
        )
    ).result()
    body = {
        "location": LOCATION,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {
                "osDisk": {"createOption": "Attach", "osType": "Windows", "managedDisk": {"id": disk.id}}
            },
            "networkProfile": {"networkInterfaces": [{"id": nic.id, "properties": {"primary": True}}]},
        },
    }
    return await (await compute.virtual_machines.begin_create_or_update(rg, name, body)).result()


class TestACopyBootsTheSameWindows:
    async def test_a_vm_from_a_snapshot_of_the_os_disk_boots_a_new_machine_with_the_sources_state(
        self,
        arm: ArmSimulator,
        compute_client: Any,
        network_client: Any,
        windows_vm: Callable[..., Any],
        windows_copies: dict[str, Any],
    ) -> None:
        vm = windows_vm(domain="corp.contoso.com")
        compute, network = compute_client(vm.subscription_id), network_client(vm.subscription_id)
        source = vm.machine.snapshot()

        await copy_of(compute, network, vm, f"{vm.name}-copy")

        copy = windows_copies[f"{vm.name}-copy"]
        assert copy.machine is not vm.machine and copy.endpoint.https_port != vm.endpoint.https_port
        booted = copy.machine.snapshot()
        for key in ("computerName", "domain", "partOfDomain", "users", "imageState", "pantherPresent"):
            assert booted[key] == source[key], key
        assert booted["computerName"] == vm.name.upper()[:15]
        assert arm.vm_state(vm.subscription_id, vm.resource_group, f"{vm.name}-copy")["hasGuest"] is True

    async def test_run_command_on_the_copy_reaches_the_copy_and_never_the_source(
        self,
        arm: ArmSimulator,
        compute_client: Any,
        network_client: Any,
        windows_vm: Callable[..., Any],
        windows_copies: dict[str, Any],
    ) -> None:
        vm = windows_vm()
        compute, network = compute_client(vm.subscription_id), network_client(vm.subscription_id)
        await copy_of(compute, network, vm, f"{vm.name}-copy")
        copy = windows_copies[f"{vm.name}-copy"]
        copy.machine.join_domain("only.the.copy")  # tells the two machines apart

        assert (await membership(compute, vm, f"{vm.name}-copy")).domain == "only.the.copy"
        assert (await membership(compute, vm, vm.name)).part_of_domain is False

    async def test_the_copys_own_winrm_endpoint_answers_until_its_vm_is_deleted(
        self,
        arm: ArmSimulator,
        compute_client: Any,
        network_client: Any,
        windows_vm: Callable[..., Any],
        windows_copies: dict[str, Any],
    ) -> None:
        vm = windows_vm()
        compute, network = compute_client(vm.subscription_id), network_client(vm.subscription_id)
        await copy_of(compute, network, vm, f"{vm.name}-copy")
        copy = windows_copies[f"{vm.name}-copy"]
        assert _answers(copy.endpoint, vm.ca_path)

        await (await compute.virtual_machines.begin_delete(vm.resource_group, f"{vm.name}-copy")).result()

        assert not _answers(copy.endpoint, vm.ca_path)
        assert _answers(vm.endpoint, vm.ca_path)  # the source's endpoint is its own


def _answers(endpoint: Any, ca_path: Any) -> bool:
    """Whether the endpoint's HTTPS listener accepts a connection (any HTTP answer counts)."""
    context = ssl.create_default_context(cafile=str(ca_path))
    url = f"https://{endpoint.host}:{endpoint.https_port}/wsman"
    try:
        urllib.request.urlopen(
            urllib.request.Request(url, data=b"", method="POST"), context=context, timeout=5
        )
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


class TestDomainMembershipIsVisibleWhereAzureAndWindowsShowIt:
    @pytest.fixture(autouse=True)
    def bodies_match_azures_schema(self, arm: ArmSimulator) -> Iterator[None]:
        start = len(arm.requests())
        yield
        checked = set()
        for record in arm.requests()[start:]:
            if record.api == "arm" and record.response_body is not None:
                definition = schema.response_definition(record.operation, record.status or 0)
                if definition is not None:  # the run command's own bodies are checked elsewhere
                    schema.validate(definition, record.response_body)
                    checked.add(definition)
        assert "VirtualMachineExtensionsListResult" in checked

    async def test_a_machine_joined_in_the_guest_reports_it_and_has_no_extension(
        self, arm: ArmSimulator, compute_client: Any, windows_vm: Callable[..., Any]
    ) -> None:
        vm = windows_vm(domain="corp.contoso.com")
        compute = compute_client(vm.subscription_id)

        found = await membership(compute, vm, vm.name)

        assert found == copy_safety.GuestDomain(
            computer_name=vm.name.upper()[:15], part_of_domain=True, domain="corp.contoso.com"
        )
        listed = [e async for e in _extensions(compute, vm)]
        assert listed == []

    async def test_a_machine_not_joined_reports_its_workgroup(
        self, arm: ArmSimulator, compute_client: Any, windows_vm: Callable[..., Any]
    ) -> None:
        vm = windows_vm()
        compute = compute_client(vm.subscription_id)

        found = await membership(compute, vm, vm.name)

        assert (found.part_of_domain, found.domain) == (False, "WORKGROUP")
        assert [e async for e in _extensions(compute, vm)] == []

    async def test_a_join_by_the_extension_shows_in_the_vms_extensions_with_the_domain(
        self, arm: ArmSimulator, compute_client: Any, windows_vm: Callable[..., Any]
    ) -> None:
        vm = windows_vm(domain="corp.contoso.com", domain_extension=True)
        compute = compute_client(vm.subscription_id)

        listed = [e async for e in _extensions(compute, vm)]
        one = await compute.virtual_machine_extensions.get(
            vm.resource_group, vm.name, "JsonADDomainExtension"
        )
        body = await compute.virtual_machines.get(vm.resource_group, vm.name)

        assert [(e.properties.publisher, e.properties.type) for e in listed] == [
            ("Microsoft.Compute", "JsonADDomainExtension")
        ]
        assert one.properties.settings["Name"] == "corp.contoso.com"
        assert [r.name for r in body.resources] == ["JsonADDomainExtension"]
        assert (await membership(compute, vm, vm.name)).part_of_domain is True
        with pytest.raises(ResourceNotFoundError):
            await compute.virtual_machine_extensions.get(vm.resource_group, vm.name, "CustomScriptExtension")

    async def test_the_control_surface_joins_a_vm_to_a_domain(
        self, arm: ArmSimulator, compute_client: Any, windows_vm: Callable[..., Any]
    ) -> None:
        vm = windows_vm()
        url = f"{arm.control_url}/vms/{vm.subscription_id}/{vm.resource_group}/{vm.name}/domain-join"
        request = urllib.request.Request(
            url,
            data=json.dumps({"domain": "corp.contoso.com", "extension": True}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        context = ssl.create_default_context(cafile=arm.ca_bundle)

        status = await asyncio.to_thread(lambda: urllib.request.urlopen(request, context=context).status)

        assert status == 200

        assert vm.machine.snapshot()["domain"] == "corp.contoso.com"
        listed = [e async for e in _extensions(compute_client(vm.subscription_id), vm)]
        assert [e.name for e in listed] == ["JsonADDomainExtension"]


async def _extensions(compute: Any, vm: Any) -> Any:
    answer = await compute.virtual_machine_extensions.list(vm.resource_group, vm.name)
    for extension in answer.value or []:
        yield extension
