"""One VM is claimed by one VMGeneralization at a time; no secret ever leaves its Secret."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import World, condition, deprovision_runs, slow_counting_waagent


def test_a_second_resource_for_the_same_vm_waits_and_never_touches_it(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    slow_counting_waagent(vm, 2)
    world.linux_job("first", vm, host_keys=list(vm.sandbox.host_keys))
    world.wait_for(
        "first",
        lambda b: b.get("status", {}).get("phase") == "Deprovisioning",
        timeout=60,
        what="first deprovisioning",
    )
    second = world.linux_manifest("second", vm, host_keys=list(vm.sandbox.host_keys))
    world.apply(second)

    body = world.wait_for(
        "second",
        lambda b: any(
            c["type"] == "Ready" and c["reason"] == "VMClaimedByAnother"
            for c in b.get("status", {}).get("conditions", [])
        ),
        timeout=30,
        what="VMClaimedByAnother",
    )
    assert f"{world.namespace}/first" in condition(body, "Ready")["message"]

    world.wait_ready("first")
    assert deprovision_runs(vm) == 1, "the second resource must never deprovision the VM"
    # Once the first is done its claim is free: the second finds the VM generalized and adopts it.
    after = world.wait_ready("second", timeout=60)
    assert condition(after, "Ready")["reason"] == "AdoptedGeneralizedVM"
    assert after["status"]["steps"]["deprovision"]["state"] == "Skipped"
    assert deprovision_runs(vm) == 1


def test_no_secret_value_appears_in_logs_events_or_status(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.linux_job("secretive", vm)
    world.wait_ready("secretive")
    # also a failure path, where messages are richest
    world.azure_secret(
        "azure-bad",
        tenant_id=world.arm.tenant_id,
        client_id=world.arm.client_id,
        client_secret="wrong-secret-value-3f9a1c",
    )
    other = linux_vm()
    manifest = world.linux_manifest("secretive-refused", other, azure_secret="azure-bad")
    world.apply(manifest)
    world.wait_failed("secretive-refused")

    private_key = vm.sandbox.private_key.decode()
    key_lines = [line for line in private_key.splitlines() if line and "PRIVATE KEY" not in line]
    secrets = [world.arm.client_secret, "wrong-secret-value-3f9a1c", *key_lines]
    places = {
        "operator log": world.operator.logs(),
        "events": json.dumps(world.events()),
        "status": json.dumps([world.get("secretive")["status"], world.get("secretive-refused")["status"]]),
    }
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a secret value leaked into the {where}"
    assert len(places["operator log"]) > 1000, "the operator log is suspiciously empty"


def test_a_resource_deleted_mid_job_frees_the_vm_and_its_successor_does_not_deprovision_again(
    world: World, linux_vm: Any
) -> None:
    vm = linux_vm()
    slow_counting_waagent(vm, 2)
    world.linux_job("deleted", vm, host_keys=list(vm.sandbox.host_keys))
    world.wait_for("deleted", lambda b: deprovision_runs(vm) == 1, timeout=60, what="waagent started")

    world.kubectl("delete", "vmgen", "deleted", "--wait=true", "--timeout=60s")
    world.apply(world.linux_manifest("successor", vm, host_keys=list(vm.sandbox.host_keys)))

    body = world.wait_ready("successor", timeout=90)
    assert deprovision_runs(vm) == 1, "the successor must not deprovision the VM again"
    assert condition(body, "Deprovisioned")["reason"] == "DeprovisionVerified"
