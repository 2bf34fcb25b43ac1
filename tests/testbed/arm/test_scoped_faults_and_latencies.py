"""Faults and latencies scoped to one VM or one resource, so that many jobs can run side by side.

The kill and fault matrices (tests/e2e/test_kill_matrix.py, test_fault_matrix.py) run dozens of jobs at
once, each held or failed at its own point: a latency set with `vm=` slows only that VM's requests and
operations; a poll fault with `vm=` lands on the polls of that VM's operations (a poll's path names only
the operation); a fault with `resource=` lands only on requests naming that resource (a snapshot, an
image or a gallery, which are not VMs). A hold keeps an operation in flight until the test releases it,
however loaded the machine, and a Windows guest's sysprep can be held the same way.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from vmgen_testbed.arm.server import ArmSimulator, Fault
from vmgen_testbed.windows.machine import WindowsMachine


@pytest.fixture
def sub(arm: ArmSimulator) -> Iterator[str]:
    subscription = str(uuid.uuid4())
    for name in ("vm-1", "vm-12"):
        arm.seed_vm(subscription_id=subscription, resource_group="rg", name=name)
    yield subscription
    arm.clear_faults()
    arm.reset_latencies()


async def test_a_latency_set_for_one_vm_slows_that_vm_only(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.set_latency("get", 2.0, vm="vm-1")
    client = compute_client(sub)
    await client.virtual_machines.get("rg", "vm-12")  # the token and the connection, once
    began = time.monotonic()
    await client.virtual_machines.get("rg", "vm-12")
    other = time.monotonic() - began
    began = time.monotonic()
    await client.virtual_machines.get("rg", "vm-1")
    slowed = time.monotonic() - began
    assert slowed >= 2.0 and other < slowed - 1.0, (slowed, other)
    assert arm.latency("get", vm="vm-1") == 2.0 and arm.latency("get", vm="vm-12") == 0.0


async def test_a_poll_fault_scoped_to_a_vm_lands_on_that_vms_operation_only(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    client = compute_client(sub, retry_backoff_factor=0.01)
    arm.inject(Fault(kind="503", operation="operationStatus", vm="vm-1"))
    other = await client.virtual_machines.begin_deallocate("rg", "vm-12")
    await other.result()
    polls = [r for r in arm.requests() if r.operation == "operationStatus" and sub in r.path]
    assert 503 not in [r.status for r in polls], "vm-12's polls are not vm-1's"
    poller = await client.virtual_machines.begin_deallocate("rg", "vm-1")
    await poller.result()
    started = next(
        r for r in arm.requests() if r.operation == "deallocate" and r.is_for_vm("vm-1") and sub in r.path
    )
    operation = started.response_headers["Azure-AsyncOperation"].split("?")[0].split("://")[1]
    operation_path = operation[operation.index("/") :]
    statuses = [r.status for r in arm.requests() if r.path == operation_path]
    assert statuses[0] == 503 and statuses[-1] == 200, statuses


def test_a_fault_scoped_to_a_resource_name_matches_that_path_segment_only() -> None:
    fault = Fault(kind="500", operation="createImage", resource="web-img")
    base = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images"
    assert fault.matches("createImage", "PUT", f"{base}/WEB-img")
    assert not fault.matches("createImage", "PUT", f"{base}/web-img-2")
    assert not fault.matches("createImage", "PUT", f"{base}/my-web-img")


async def test_a_held_operation_stays_in_progress_until_it_is_released(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.hold("deallocate", name="vm-1")
    client = compute_client(sub)
    poller = await client.virtual_machines.begin_deallocate("rg", "vm-1")
    other = await client.virtual_machines.begin_deallocate("rg", "vm-12")
    await other.result()  # the hold names vm-1 only
    await asyncio.sleep(1.0)
    assert arm.vm_state(sub, "rg", "vm-1")["powerState"] == "deallocating"
    arm.release("deallocate", name="vm-1")
    await poller.result()
    assert arm.vm_state(sub, "rg", "vm-1")["powerState"] == "deallocated"


def test_a_sysprep_held_by_a_long_duration_finishes_when_told_to() -> None:
    powered_off: list[bool] = []
    machine = WindowsMachine("w", sysprep_seconds=3600.0, on_power_off=lambda: powered_off.append(True))
    machine.start_sysprep("sysprep.exe /oobe /generalize /quiet /shutdown /mode:vm")
    assert machine.sysprep_running
    machine.finish_sysprep()
    assert machine.read_image_state() == "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
    assert powered_off == [True]


async def test_a_hold_lets_its_first_requests_through(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.hold("get", name="vm-1", after=1)
    client = compute_client(sub)
    await client.virtual_machines.get("rg", "vm-1")  # the one that goes through
    second = asyncio.ensure_future(client.virtual_machines.get("rg", "vm-1"))
    await asyncio.sleep(1.0)
    assert not second.done(), "the second read is held"
    arm.release("get", name="vm-1")
    assert (await second).name == "vm-1"
