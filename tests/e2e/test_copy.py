"""spec.source Copy: a copy of the VM is generalized and captured; the original keeps running, untouched.

The copy is built by the ARM simulator from real snapshots of the source's sandbox (its overlay's upper
layer), boots as a sandbox of its own with its own address, and is deprovisioned over real SSH there. The
source's guest is read on disk afterwards (user, host keys, waagent state) and the request log says what
was asked of the source: only GETs, and snapshot PUTs that name its disks as their source.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import asyncssh
import pytest

from tests.e2e.conftest import (
    World,
    assert_guest_untouched,
    condition,
    deprovision_runs,
    slow_counting_waagent,
    vm_requests,
)

COPY_TIMEOUT = 240


def copy_manifest(world: World, name: str, vm: Any, **copy: Any) -> dict[str, Any]:
    world.secrets(vm)
    manifest = world.linux_manifest(name, vm)
    spec = manifest["spec"]
    del spec["ssh"]["host"]  # the copy is reached at its own address
    spec["source"] = "Copy"
    spec["capture"] = {"managedImage": {"name": f"{world.namespace}-{name}-img"}}  # unique per test: one RG
    if copy:
        spec["copy"] = copy
    return manifest


def copy_is_gone(world: World, copy: dict[str, Any]) -> list[str]:
    """The ids of the copy's VM, NIC and disks that the simulator still holds."""
    left = [i for i in (copy["nicId"], *copy["diskIds"]) if world.arm.resource(i) is not None]
    _, _, sub, _, group, *_, name = copy["vmId"].split("/")
    with world.arm.world.lock:
        if world.arm.world.vm(sub, group, name) is not None:
            left.append(copy["vmId"])
    return left


def writes_to(world: World, vm: Any) -> list[str]:
    return [f"{r.method} {r.path}" for r in vm_requests(world.arm, vm) if r.method != "GET"]


class TestACopyIsGeneralizedAndTheSourceKeepsRunning:
    def test_the_image_comes_from_the_copy_which_is_then_deleted_and_the_source_is_untouched(
        self, world: World, linux_vm: Any, linux_copies: dict[str, Any]
    ) -> None:
        vm = linux_vm()
        world.arm.clear_requests()
        world.apply(copy_manifest(world, "web-copy", vm))

        body = world.wait_ready("web-copy", timeout=COPY_TIMEOUT)

        status = body["status"]
        assert status["phase"] == "Succeeded"
        copy = status["outputs"]["copy"]
        assert copy["state"] == "Deleted" and copy["address"] != vm.sandbox.ip
        copy_name = copy["vmId"].rsplit("/", 1)[-1]
        assert copy_name.startswith(f"{vm.name}-vmgen-") and copy_name != vm.name
        image = world.arm.resource(status["outputs"]["managedImageId"])
        assert image is not None
        assert image["properties"]["sourceVirtualMachine"]["id"].lower() == copy["vmId"].lower()
        for kind in ("Ready", "CopyReady", "Deprovisioned", "Generalized", "Captured", "CopyDeleted"):
            assert condition(body, kind)["status"] == "True", kind
        assert copy_is_gone(world, copy) == []
        assert copy_name in linux_copies  # it booted as a sandbox of its own

        source = world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)
        assert source["powerState"] == "running" and source["generalized"] is False
        assert_guest_untouched(vm)
        assert writes_to(world, vm) == []
        snapshot_puts = [
            r for r in world.arm.requests() if r.method == "PUT" and "/snapshots/" in r.path.lower()
        ]
        assert snapshot_puts
        for put in snapshot_puts:
            source_id = put.request_body["properties"]["creationData"]["sourceResourceId"]
            assert source_id.lower() in {d.lower() for d in _source_disks(world, vm)}
        assert _ssh_runs(vm) == vm.sandbox.username  # the owner still logs in to the source


class TestTheCopyNeverStartsWithoutItsPreconditions:
    def test_a_subnet_that_does_not_exist_fails_before_any_disk_is_created(
        self, world: World, linux_vm: Any, linux_copies: dict[str, Any]
    ) -> None:
        vm = linux_vm()
        world.arm.clear_requests()
        missing = (
            f"/subscriptions/{vm.subscription_id}/resourceGroups/{vm.resource_group}"
            "/providers/Microsoft.Network/virtualNetworks/nowhere/subnets/none"
        )
        world.apply(copy_manifest(world, "no-subnet", vm, subnetId=missing))

        body = world.wait_failed("no-subnet", timeout=COPY_TIMEOUT)

        assert condition(body, "Ready")["reason"] == "SubnetNotFound"
        assert missing in condition(body, "Ready")["message"]
        assert "copy" not in body["status"].get("outputs", {})
        puts = [r.path for r in world.arm.requests() if r.method == "PUT"]
        assert not [p for p in puts if "/disks/" in p.lower() or "/networkinterfaces/" in p.lower()]
        assert linux_copies == {}
        assert writes_to(world, vm) == []


class TestStopSourceFirst:
    def test_the_source_is_deallocated_and_started_once_and_runs_again(
        self, world: World, linux_vm: Any, linux_copies: dict[str, Any]
    ) -> None:
        vm = linux_vm()
        world.arm.clear_requests()
        world.apply(copy_manifest(world, "stopped-copy", vm, stopSourceFirst=True))

        body = world.wait_ready("stopped-copy", timeout=COPY_TIMEOUT)

        assert body["status"]["steps"]["stopSource"]["state"] == "Succeeded"
        assert body["status"]["steps"]["startSource"]["state"] == "Succeeded"
        operations = [r.operation for r in vm_requests(world.arm, vm) if r.method == "POST"]
        assert sorted(operations) == ["deallocate", "start"]
        source = world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)
        assert source["powerState"] == "running" and source["generalized"] is False
        assert_guest_untouched(vm)


class TestAFailureAfterTheCopyBooted:
    def test_the_copy_is_deleted_and_the_source_untouched(
        self, world: World, linux_vm: Any, linux_copies: dict[str, Any]
    ) -> None:
        vm = linux_vm()
        manifest = copy_manifest(world, "bad-key", vm)
        _replace_ssh_key(world)
        world.apply(manifest)

        body = world.wait_failed("bad-key", timeout=COPY_TIMEOUT)

        assert condition(body, "Ready")["reason"] == "SSHAuthenticationRefused"
        assert body["status"]["steps"]["copy"]["state"] == "Succeeded"
        copy = body["status"]["outputs"]["copy"]
        assert copy["state"] == "Deleted"
        assert "deleted" in condition(body, "Ready")["message"]
        assert copy_is_gone(world, copy) == []
        assert_guest_untouched(vm)

    def test_keep_on_failure_keeps_the_copy_and_status_names_it(
        self, world: World, linux_vm: Any, linux_copies: dict[str, Any]
    ) -> None:
        vm = linux_vm()
        manifest = copy_manifest(world, "keep-it", vm, keepOnFailure=True)
        _replace_ssh_key(world)
        world.apply(manifest)

        body = world.wait_failed("keep-it", timeout=COPY_TIMEOUT)

        copy = body["status"]["outputs"]["copy"]
        assert copy["state"] == "Kept"
        assert copy["vmId"] in condition(body, "Ready")["message"]
        assert sorted(copy_is_gone(world, copy)) == sorted([copy["vmId"], copy["nicId"], *copy["diskIds"]])
        assert_guest_untouched(vm)


def _replace_ssh_key(world: World) -> None:
    """A key the guest does not know: the copy boots, then SSH refuses it (a failure after the copy)."""
    world.kubectl("delete", "secret", "ssh")
    world.ssh_secret("ssh", asyncssh.generate_private_key("ssh-ed25519").export_private_key())


def _source_disks(world: World, vm: Any) -> list[str]:
    with world.arm.world.lock:
        found = world.arm.world.vm(vm.subscription_id, vm.resource_group, vm.name)
        assert found is not None
        return list(found.disk_ids())


def _ssh_runs(vm: Any) -> str:
    async def whoami() -> str:
        key = asyncssh.import_private_key(vm.sandbox.private_key)
        async with asyncssh.connect(
            vm.sandbox.ip, port=vm.sandbox.port, username=vm.sandbox.username, client_keys=[key],
            known_hosts=None, connect_timeout=10,
        ) as connection:  # fmt: skip
            result = await connection.run("whoami", check=True)
            return str(result.stdout).strip()

    return asyncio.run(whoami())


class TestRestarts:
    @pytest.mark.parametrize(
        ("operation", "stage", "kind"),
        [
            pytest.param("createDisk", "Creating", "/disks/", id="killed during disk creation"),
            pytest.param("createVm", "NicCreated", "/virtualmachines/", id="killed during VM creation"),
        ],
    )
    def test_a_killed_operator_resumes_the_copy_and_creates_nothing_twice(
        self, world: World, linux_vm: Any, linux_copies: dict[str, Any], operation: str, stage: str, kind: str
    ) -> None:
        vm = linux_vm()
        world.arm.clear_requests()
        world.arm.set_latency(operation, 3.0)
        world.apply(copy_manifest(world, "kill-copy", vm))
        world.wait_for(
            "kill-copy",
            lambda b: (
                b.get("status", {}).get("outputs", {}).get("copy", {}).get("state") == stage
                and any(r.method == "PUT" and kind in r.path.lower() for r in world.arm.requests())
            ),
            timeout=COPY_TIMEOUT,
            what=f"{operation} under way",
        )
        world.operator.kill()
        world.operator.start()

        body = world.wait_for(
            "kill-copy", lambda b: b.get("status", {}).get("phase") in ("Succeeded", "Failed"),
            timeout=COPY_TIMEOUT, what="the end",
        )  # fmt: skip

        assert body["status"]["phase"] == "Succeeded", json.dumps(body["status"].get("conditions"), indent=1)
        copy = body["status"]["outputs"]["copy"]
        copy_name = copy["vmId"].rsplit("/", 1)[-1]
        puts = [r for r in world.arm.requests() if r.method == "PUT" and copy_name in r.path]
        names = {r.path.rsplit("/", 1)[-1] for r in puts}
        assert len(names) == 2 + len(copy["diskIds"])  # the VM, its NIC, one disk per snapshot: by name
        vm_created = [r for r in puts if r.path.endswith(f"/virtualMachines/{copy_name}") and r.status == 201]
        assert len(vm_created) == 1  # a repeated PUT finds the VM (200) instead of making another
        assert list(linux_copies) == [copy_name]
        assert copy_is_gone(world, copy) == []
        assert writes_to(world, vm) == []
        assert_guest_untouched(vm)

    def test_killed_during_the_copys_deprovision_it_resumes_without_running_waagent_twice(
        self, world: World, linux_vm: Any, linux_copies: dict[str, Any]
    ) -> None:
        vm = linux_vm()
        slow_counting_waagent(vm, 2)  # in the source's files, so the copy boots with it
        world.apply(copy_manifest(world, "kill-copy-deprovision", vm))
        body = world.wait_for(
            "kill-copy-deprovision",
            lambda b: b.get("status", {}).get("steps", {}).get("deprovision", {}).get("state") == "Running",
            timeout=COPY_TIMEOUT,
            what="the copy's deprovision Running",
        )
        copy = SimpleNamespace(
            sandbox=linux_copies[body["status"]["outputs"]["copy"]["vmId"].rsplit("/", 1)[-1]]
        )
        world.wait_for(
            "kill-copy-deprovision", lambda b: deprovision_runs(copy) == 1, timeout=30, what="waagent started"
        )
        world.operator.kill()
        world.operator.start()

        body = world.wait_ready("kill-copy-deprovision", timeout=110)

        # The copy's files are gone with it; its deprovision was attempted once (verified, not rerun).
        assert body["status"]["steps"]["deprovision"]["attempts"] == 1 and deprovision_runs(vm) == 0
        assert body["status"]["steps"]["deprovision"]["state"] == "Succeeded"
        assert copy_is_gone(world, body["status"]["outputs"]["copy"]) == []
        assert writes_to(world, vm) == []
        assert_guest_untouched(vm)
