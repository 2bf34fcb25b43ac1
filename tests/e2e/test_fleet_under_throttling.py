"""A fleet in one subscription under Azure Compute's documented throttling, and a guest nobody can reach.

The simulator's token buckets run at the documented limits in real time (time_scale 1: a VM's
LowCostGet bucket holds 36 tokens and refills 12 a minute, its UpdateVM bucket 12 and 4 a minute). The
operator's one budget per subscription must bring every job to Ready without a single 429 in the
simulator's request log. A guest whose SSH port has nothing listening must fail with GuestUnreachable
within spec.timeouts.deprovision, without a Run Command or any Azure request per retry.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import (
    World,
    assert_guest_deprovisioned,
    assert_guest_untouched,
    condition,
    vm_requests,
)

FLEET = 50


@pytest.fixture
def throttled(arm: Any) -> Iterator[None]:
    arm.configure_throttling(enabled=True, time_scale=1.0)
    yield
    arm.configure_throttling(enabled=False)


@pytest.mark.usefixtures("throttled")
def test_a_fleet_of_50_in_one_subscription_ends_ready_without_one_429(world: World, linux_vm: Any) -> None:
    made = time.monotonic()
    vms = [linux_vm() for _ in range(FLEET)]
    print(f"\n{FLEET} sandboxes made in {time.monotonic() - made:.1f} s")
    world.azure_secret(
        "azure-sp",
        tenant_id=world.arm.tenant_id,
        client_id=world.arm.client_id,
        client_secret=world.arm.client_secret,
    )
    for i, vm in enumerate(vms):
        world.ssh_secret(f"ssh-{i}", vm.sandbox.private_key)
    world.arm.clear_requests()
    started = time.monotonic()
    for i, vm in enumerate(vms):
        world.apply(world.linux_manifest(f"fleet-{i}", vm, ssh_secret=f"ssh-{i}"))

    for i in range(FLEET):
        world.wait_ready(f"fleet-{i}", timeout=420 - (time.monotonic() - started))
    print(f"{FLEET} jobs applied to Ready in {time.monotonic() - started:.1f} s")

    throttled = [f"{r.method} {r.path}" for r in world.arm.requests() if r.api == "arm" and r.status == 429]
    assert throttled == []
    assert {vm.subscription_id for vm in vms} == {vms[0].subscription_id}, "one subscription"
    for vm in vms:
        assert_guest_deprovisioned(vm)
        assert "start" not in [r.operation for r in vm_requests(world.arm, vm)]


def test_a_port_where_nothing_listens_fails_within_the_timeout_and_asks_azure_nothing_per_retry(
    world: World, linux_vm: Any
) -> None:
    vm = linux_vm()
    world.secrets(vm)
    manifest = world.linux_manifest("closed-port", vm, host_keys=list(vm.sandbox.host_keys))
    manifest["spec"]["ssh"]["port"] = 2  # nothing listens there: connection refused
    manifest["spec"]["timeouts"] = {"deprovision": "8s"}
    world.arm.clear_requests()
    world.apply(manifest)

    body = world.wait_failed("closed-port", timeout=60)

    ready = condition(body, "Ready")
    assert ready["reason"] == "GuestUnreachable"
    assert f"{vm.sandbox.ip}:2" in ready["message"] and "spec.timeouts.deprovision" in ready["message"]
    assert condition(body, "Deprovisioned")["reason"] == "GuestUnreachable"
    operations = [r.operation for r in vm_requests(world.arm, vm)]
    assert "runCommand" not in operations, "an unreachable guest never costs a Run Command"
    retries = body["status"]["steps"]["deprovision"].get("retries", 0)
    assert retries >= 3, "it was retried before giving up"
    assert len(operations) <= 3, f"the retries asked Azure nothing: {operations}"


def test_a_host_name_that_cannot_resolve_fails_with_its_own_reason(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.secrets(vm)
    manifest = world.linux_manifest("no-such-host", vm, host_keys=list(vm.sandbox.host_keys))
    # A typo the CRD's pattern lets through and the resolver refuses without sending a query (the
    # tests send nothing off the machine; a real missing record fails the same way, later).
    manifest["spec"]["ssh"]["host"] = "web-01..internal"
    manifest["spec"]["timeouts"] = {"deprovision": "5s"}
    world.arm.clear_requests()
    world.apply(manifest)

    body = world.wait_failed("no-such-host", timeout=60)

    ready = condition(body, "Ready")
    assert ready["reason"] == "GuestHostUnresolvable"
    assert "spec.ssh.host 'web-01..internal' does not resolve" in ready["message"]
    assert "runCommand" not in [r.operation for r in vm_requests(world.arm, vm)]
    assert_guest_untouched(vm)
