"""One VM is claimed by one VMGeneralization at a time; no secret ever leaves its Secret."""

from __future__ import annotations

import base64
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


def secret_forms(world: World, secret: str, key: str) -> list[str]:
    """Every form in which the value of `key` in Secret `secret` could leak: as stored in `.data`
    (base64, whole and its start), as plain text, and each line of a multi-line value (a key's first
    and last lines included; the PEM armour lines are not secret)."""
    stored: str = json.loads(world.kubectl("get", "secret", secret, "-o", "json").stdout)["data"][key]
    plain = base64.b64decode(stored).decode()
    lines = [line for line in plain.splitlines() if line.strip() and not line.startswith("-----")]
    forms = [stored, stored[:32], plain.strip(), *lines]
    assert len(plain) > 16 and all(len(form) >= 8 for form in forms), f"{secret}/{key} is too short to scan"
    return forms


def test_no_secret_value_appears_in_logs_events_or_status(world: World, linux_vm: Any) -> None:
    log_start = world.operator.log_offset()
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

    secrets = {
        f"{secret}/{key}": secret_forms(world, secret, key)
        for secret, key in (
            ("ssh", "ssh-privatekey"),
            ("azure-sp", "AZURE_CLIENT_SECRET"),
            ("azure-bad", "AZURE_CLIENT_SECRET"),
        )
    }
    log = world.operator.logs(since=log_start)
    places = {
        "operator log (this test's part, vmgen's and kopf's lines)": log,
        "events (all namespaces)": world.control_plane.kubectl("get", "events", "-A", "-o", "json").stdout,
        "resources, status and annotations (all namespaces)": world.control_plane.kubectl(
            "get", "vmgen", "-A", "-o", "json"
        ).stdout,
    }
    for where, text in places.items():
        for name, forms in secrets.items():
            for form in forms:
                assert form not in text, f"a form of {name} leaked into the {where}"
    # The scan means something only if the jobs under test were logged, by vmgen and by kopf.
    for job in ("secretive", "secretive-refused"):
        mine = [line for line in log.splitlines() if f"[{world.namespace}/{job}]" in line]
        assert any("kopf." in line for line in mine), f"no kopf log line about {job} in this test's log"
        assert any("vmgen" in line for line in mine), f"no vmgen log line about {job} in this test's log"


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
