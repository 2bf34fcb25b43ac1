"""Injected faults reach the real SDK the way Azure's do, and its retry policy reacts as documented."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from arm_test_support import error_code
from azure.core.exceptions import HttpResponseError, ServiceRequestError

from vmgen_testbed.arm.faults import names_vm
from vmgen_testbed.arm.server import ArmSimulator, Fault


@pytest.fixture
def sub(arm: ArmSimulator) -> Iterator[str]:
    subscription = str(uuid.uuid4())
    arm.seed_vm(subscription_id=subscription, resource_group="rg", name="vm")
    yield subscription
    arm.clear_faults()


def calls(arm: ArmSimulator, sub: str, operation: str) -> list[int | None]:
    return [
        r.status for r in arm.requests() if r.operation == operation and f"/subscriptions/{sub}/" in r.path
    ]


async def test_a_get_throttled_with_retry_after_is_retried_by_the_sdk(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.inject(Fault(kind="429-retry-after", operation="get", retry_after=1))
    vm = await compute_client(sub).virtual_machines.get("rg", "vm")
    assert vm.name == "vm"
    assert calls(arm, sub, "get") == [429, 200]


async def test_a_post_throttled_without_retry_after_surfaces_at_once(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.inject(Fault(kind="429", operation="powerOff"))
    with pytest.raises(HttpResponseError) as raised:
        await compute_client(sub).virtual_machines.begin_power_off("rg", "vm")
    assert raised.value.status_code == 429
    assert error_code(raised.value) == "TooManyRequests"
    assert calls(arm, sub, "powerOff") == [429]
    assert arm.vm_state(sub, "rg", "vm")["powerState"] == "running"


async def test_a_post_502_surfaces_while_a_get_503_is_retried(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    client = compute_client(sub, retry_backoff_factor=0.01)
    arm.inject(Fault(kind="502", operation="deallocate"))
    with pytest.raises(HttpResponseError) as raised:
        await client.virtual_machines.begin_deallocate("rg", "vm")
    assert raised.value.status_code == 502
    arm.inject(Fault(kind="503", operation="instanceView"))
    await client.virtual_machines.instance_view("rg", "vm")
    assert calls(arm, sub, "instanceView") == [503, 200]


async def test_a_failed_async_operation_raises_with_its_error_code(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.inject(Fault(kind="failed-operation", operation="deallocate", error_code="AllocationFailed"))
    poller = await compute_client(sub).virtual_machines.begin_deallocate("rg", "vm")
    with pytest.raises(HttpResponseError) as raised:
        await poller.result()
    assert error_code(raised.value) == "AllocationFailed"
    assert raised.value.status_code == 200  # the poll's status: classify by error.code, not by status
    assert arm.vm_state(sub, "rg", "vm")["powerState"] == "running"


async def test_a_connection_dropped_on_a_post_surfaces_as_a_connection_error(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    # aiohttp reports "Server disconnected", which azure-core maps to ServiceRequestError although the
    # server did receive the request: callers must treat it as an uncertain outcome, not "never sent".
    arm.inject(Fault(kind="drop", operation="powerOff"))
    with pytest.raises(ServiceRequestError, match="Server disconnected"):
        await compute_client(sub).virtual_machines.begin_power_off("rg", "vm")
    assert calls(arm, sub, "powerOff") == [None]
    assert arm.vm_state(sub, "rg", "vm")["powerState"] == "running"


async def test_a_connection_dropped_on_a_get_is_retried_by_the_sdk(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.inject(Fault(kind="drop", operation="get"))
    assert (
        await compute_client(sub, retry_backoff_factor=0.01).virtual_machines.get("rg", "vm")
    ).name == "vm"
    assert calls(arm, sub, "get") == [None, 200]


async def test_a_fault_matches_only_its_operation_and_method(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.inject(Fault(kind="500", operation="get", method="POST"))
    client = compute_client(sub)
    await client.virtual_machines.get("rg", "vm")
    assert calls(arm, sub, "get") == [200]


def test_a_fault_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(kind="418")  # type: ignore[arg-type]


async def test_a_fault_for_one_vm_spares_a_vm_whose_name_extends_it(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm-12")
    arm.inject(Fault(kind="503", vm="vm", count=1))
    client = compute_client(sub, retry_backoff_factor=0.01)

    await client.virtual_machines.get("rg", "vm-12")
    await client.virtual_machines.instance_view("rg", "vm")

    mine = [r for r in arm.requests() if f"/subscriptions/{sub}/" in r.path]
    assert [(r.operation, r.status) for r in mine if r.is_for_vm("vm-12")] == [("get", 200)]
    assert [(r.operation, r.status) for r in mine if r.is_for_vm("vm")] == [
        ("instanceView", 503),
        ("instanceView", 200),
    ]


async def test_a_failed_operation_fault_for_one_vm_spares_the_others(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm-12")
    arm.inject(Fault(kind="failed-operation", operation="deallocate", vm="vm"))
    client = compute_client(sub)

    await (await client.virtual_machines.begin_deallocate("rg", "vm-12")).result()
    with pytest.raises(HttpResponseError):
        await (await client.virtual_machines.begin_deallocate("rg", "vm")).result()

    assert arm.vm_state(sub, "rg", "vm-12")["powerState"] == "deallocated"
    assert arm.vm_state(sub, "rg", "vm")["powerState"] == "running"


def test_names_vm_compares_whole_path_segments_case_insensitively() -> None:
    base = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines"
    assert names_vm(f"{base}/Web-1", "web-1")
    assert names_vm(f"{base}/web-1/instanceView", "web-1")
    assert not names_vm(f"{base}/web-12", "web-1")
    assert not names_vm(f"{base}/web-12/instanceView", "web-1")
    assert not names_vm("/subscriptions/s/providers/Microsoft.Compute/locations/l/operations/web-1", "web-1")
