"""spec.source Copy for Windows: sysprep runs through Run Command on a copy, and a copy that could break
the original's domain trust never boots beside it.

The copy is built by the ARM simulator from real snapshots of the source's modelled machine and boots as
a machine of its own (windows_copies): Run Command on the copy reaches it, never the source. The
domain-join guard is decided in validation, before any snapshot or disk: a domain-joined source (its
guest says so over a read-only WinRM query, or Azure shows the JsonADDomainExtension), or one whose
membership cannot be ruled out, needs an explicit isolated spec.copy.subnetId.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import World, condition
from tests.e2e.test_copy import copy_is_gone, writes_to
from tests.e2e.windows_jobs import assert_no_secret_leaked, windows_manifest, winrm_secrets

COPY_TIMEOUT = 240
DOMAIN = "corp.contoso.com"


def windows_copy(world: World, name: str, vm: Any, *, winrm: bool = False, **copy: Any) -> dict[str, Any]:
    """A Run Command job with source Copy and a managed image; `winrm` adds spec.winrm (the source's
    listener, used only for the read-only domain query)."""
    winrm_secrets(world, vm)
    manifest = windows_manifest(world, name, vm, transport="RunCommand")
    spec = manifest["spec"]
    if winrm:
        spec["winrm"] = windows_manifest(world, name, vm)["spec"]["winrm"]
    spec["source"] = "Copy"
    spec["capture"] = {"managedImage": {"name": f"{world.namespace}-{name}-img"}}
    if copy:
        spec["copy"] = copy
    world.apply(manifest)
    return manifest


def isolated_subnet(world: World, vm: Any) -> str:
    return str(
        world.arm.seed_subnet(
            subscription_id=vm.subscription_id,
            resource_group=vm.resource_group,
            vnet=f"isolated-{uuid.uuid4().hex[:6]}",
            subnet="build",
            prefix="10.9.0.0/24",
        )
    )


def puts(world: World) -> list[str]:
    return [f"PUT {r.path}" for r in world.arm.requests() if r.api == "arm" and r.method == "PUT"]


class TestAWindowsCopyIsGeneralizedThroughRunCommand:
    def test_a_domain_joined_source_with_an_isolated_subnet_ends_ready_and_is_untouched(
        self, world: World, windows_vm: Any, windows_copies: dict[str, Any]
    ) -> None:
        vm = windows_vm(domain=DOMAIN, domain_extension=True)
        subnet = isolated_subnet(world, vm)
        before = vm.machine.snapshot()
        world.arm.clear_requests()
        windows_copy(world, "win-copy", vm, subnetId=subnet)

        body = world.wait_ready("win-copy", timeout=COPY_TIMEOUT)

        status = body["status"]
        assert status["phase"] == "Succeeded"
        for kind in ("Ready", "CopyReady", "Deprovisioned", "Generalized", "Captured", "CopyDeleted"):
            assert condition(body, kind)["status"] == "True", kind
        assert condition(body, "Deprovisioned")["reason"] == "SysprepSucceeded"
        copy = status["outputs"]["copy"]
        copy_name = copy["vmId"].rsplit("/", 1)[-1]
        assert copy["state"] == "Deleted" and copy_name.startswith(f"{vm.name}-vmgen-")
        image = world.arm.resource(status["outputs"]["managedImageId"])
        assert image is not None
        assert image["properties"]["sourceVirtualMachine"]["id"].lower() == copy["vmId"].lower()
        assert image["properties"]["storageProfile"]["osDisk"]["osType"] == "Windows"
        assert copy_is_gone(world, copy) == []
        # sysprep ran once in the copy's own machine, through Run Command (/shutdown) ...
        machine = windows_copies[copy_name].machine.snapshot()
        assert (machine["sysprepStarts"], machine["imageState"]) == (
            1,
            "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE",
        )
        assert "/shutdown" in machine["sysprepCommandLines"][0]
        assert (machine["computerName"], machine["domain"]) == (before["computerName"], DOMAIN)
        nic_puts = [r for r in world.arm.requests() if r.operation == "createNetworkInterface"]
        assert {
            r.request_body["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"]
            for r in nic_puts
        } == {subnet}
        copy_commands = [
            r for r in world.arm.requests() if r.is_for_vm(copy_name) and r.operation == "createRunCommand"
        ]
        assert copy_commands
        # ... and the source saw only reads and snapshot reads, its machine unchanged
        source = world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)
        assert source["powerState"] == "running" and source["generalized"] is False
        assert vm.machine.snapshot() == before
        assert writes_to(world, vm) == []
        snapshot_sources = {
            r.request_body["properties"]["creationData"]["sourceResourceId"].lower()
            for r in world.arm.requests()
            if r.operation == "createSnapshot"
        }
        assert snapshot_sources and all(vm.name.lower() in s for s in snapshot_sources)
        assert_no_secret_leaked(world, vm, "win-copy")


class TestADomainJoinedCopyNeedsAnIsolatedSubnet:
    def test_a_source_whose_guest_reports_a_domain_fails_before_anything_is_created(
        self, world: World, windows_vm: Any, windows_copies: dict[str, Any]
    ) -> None:
        vm = windows_vm(domain=DOMAIN)
        before = vm.machine.snapshot()
        world.arm.clear_requests()
        windows_copy(world, "win-joined", vm, winrm=True)

        body = world.wait_failed("win-joined", timeout=COPY_TIMEOUT)

        ready = condition(body, "Ready")
        assert ready["reason"] == "CopyNeedsIsolatedSubnet"
        assert DOMAIN in ready["message"] and "spec.copy.subnetId" in ready["message"]
        assert "domain trust" in ready["message"]
        assert body["status"]["steps"]["validate"]["state"] == "Failed"
        assert "copy" not in body["status"].get("outputs", {})
        assert puts(world) == []  # no snapshot, disk, NIC or VM
        assert windows_copies == {}
        assert vm.endpoint.requests > 0  # the guest was asked, over WinRM ...
        assert vm.machine.snapshot() == before  # ... read-only
        assert writes_to(world, vm) == []  # and no Run Command on the source

    def test_a_source_that_cannot_be_ruled_out_fails_too_when_only_run_command_is_given(
        self, world: World, windows_vm: Any, windows_copies: dict[str, Any]
    ) -> None:
        vm = windows_vm()
        world.arm.clear_requests()
        windows_copy(world, "win-unknown", vm)

        body = world.wait_failed("win-unknown", timeout=COPY_TIMEOUT)

        ready = condition(body, "Ready")
        assert ready["reason"] == "CopyNeedsIsolatedSubnet"
        assert "cannot rule it out" in ready["message"]
        assert puts(world) == [] and windows_copies == {}
        assert vm.endpoint.requests == 0
        assert writes_to(world, vm) == []
        assert vm.machine.snapshot()["sysprepStarts"] == 0

    def test_the_domain_join_extension_in_the_sources_own_subnet_fails_before_anything_is_created(
        self, world: World, windows_vm: Any, windows_copies: dict[str, Any]
    ) -> None:
        vm = windows_vm(domain=DOMAIN, domain_extension=True)
        own = (
            f"/subscriptions/{vm.subscription_id}/resourceGroups/{vm.resource_group}/providers"
            f"/Microsoft.Network/virtualNetworks/{vm.resource_group}-vnet/subnets/default"
        )
        world.arm.clear_requests()
        windows_copy(world, "win-own-subnet", vm, subnetId=own)

        body = world.wait_failed("win-own-subnet", timeout=COPY_TIMEOUT)

        ready = condition(body, "Ready")
        assert ready["reason"] == "CopyNeedsIsolatedSubnet"
        assert (
            "JsonADDomainExtension" in ready["message"]
            and f"({own}) is the source's own subnet" in ready["message"]
        )
        assert puts(world) == [] and windows_copies == {}
        assert vm.endpoint.requests == 0 and writes_to(world, vm) == []


class TestPreflightModeOfAWindowsCopy:
    def test_it_reports_the_guard_and_reads_the_source_only_over_winrm(
        self, world: World, windows_vm: Any, windows_copies: dict[str, Any]
    ) -> None:
        vm = windows_vm(domain=DOMAIN)
        before = vm.machine.snapshot()
        world.arm.clear_requests()
        winrm_secrets(world, vm)
        manifest = windows_manifest(world, "win-check", vm, transport="RunCommand")
        manifest["spec"].update(
            mode="Preflight", source="Copy", winrm=windows_manifest(world, "win-check", vm)["spec"]["winrm"]
        )
        world.apply(manifest)

        body = world.wait_for(
            "win-check",
            lambda b: b.get("status", {}).get("phase") == "PreflightComplete",
            timeout=COPY_TIMEOUT,
            what="PreflightComplete",
        )

        findings = body["status"]["outputs"]["findings"]
        assert [f["reason"] for f in findings] == ["CopyNeedsIsolatedSubnet"], findings
        assert DOMAIN in findings[0]["message"]
        assert condition(body, "Ready")["status"] == "False"
        assert vm.endpoint.requests > 0  # the preflight script and the domain query, over WinRM ...
        assert vm.machine.snapshot() == before
        assert puts(world) == [] and writes_to(world, vm) == []  # ... and no Run Command on the source


class TestARestartedOperatorFinishesAWindowsCopy:
    def test_killed_during_the_copys_sysprep_it_resumes_and_sysprep_runs_once_in_the_copy(
        self, world: World, windows_vm: Any, windows_copies: dict[str, Any]
    ) -> None:
        vm = windows_vm(sysprep_seconds=4.0)  # the copy's disk carries it: sysprep runs as long there
        before = vm.machine.snapshot()
        windows_copy(world, "win-copy-kill", vm, subnetId=isolated_subnet(world, vm))
        world.wait_for(
            "win-copy-kill",
            lambda b: any(g.machine.snapshot()["sysprepStarts"] == 1 for g in windows_copies.values()),
            timeout=COPY_TIMEOUT,
            what="sysprep started in the copy",
        )

        world.operator.kill()
        world.operator.start()
        body = world.wait_ready("win-copy-kill", timeout=COPY_TIMEOUT)

        copy = body["status"]["outputs"]["copy"]
        (machine,) = [g.machine.snapshot() for g in windows_copies.values()]
        assert machine["sysprepStarts"] == 1
        assert machine["imageState"] == "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
        assert copy_is_gone(world, copy) == []
        assert vm.machine.snapshot() == before and writes_to(world, vm) == []
