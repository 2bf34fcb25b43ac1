"""What reaches the workflow when Azure throttles, fails or drops connections.

These assert what really happens with the SDK's own retry policy in place (`retry_total=2`): a short
blip is absorbed by azure-core, anything longer surfaces as a transient error class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vmgen.adapters import azure
from vmgen.domain import errors, model
from vmgen_testbed.arm.server import Fault


def requests_for(arm: Any, vm: model.VmRef, operation: str) -> list[Any]:
    return [r for r in arm.requests() if r.is_for_vm(vm.name) and r.operation == operation]


async def test_a_get_throttled_once_with_retry_after_is_retried_by_the_sdk_and_succeeds(
    arm: Any, compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()
    arm.inject(Fault(kind="429-retry-after", operation="get", retry_after=1))

    observed = await compute.observe(vm)

    assert observed is not None
    assert [r.status for r in requests_for(arm, vm, "get")] == [429, 200]


async def test_a_post_throttled_without_retry_after_surfaces_at_once_as_throttled(
    arm: Any, compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()
    arm.inject(Fault(kind="429", operation="deallocate"))

    with pytest.raises(errors.AzureThrottled) as throttled:
        await compute.begin_deallocate(vm)

    assert throttled.value.retry_after is None
    assert [r.status for r in requests_for(arm, vm, "deallocate")] == [429]


async def test_throttling_that_outlasts_the_sdk_retries_surfaces_with_azures_retry_after(
    arm: Any, compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()
    arm.inject(Fault(kind="429-retry-after", operation="deallocate", count=3, retry_after=1))

    with pytest.raises(errors.AzureThrottled) as throttled:
        await compute.begin_deallocate(vm)

    assert throttled.value.retry_after == 1
    assert [r.status for r in requests_for(arm, vm, "deallocate")] == [429, 429, 429]


async def test_an_unavailable_arm_is_retried_by_the_sdk_then_surfaces_as_unavailable(
    arm: Any, compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()
    arm.inject(Fault(kind="503", operation="get", count=3))

    with pytest.raises(errors.AzureUnavailable):
        await compute.observe(vm)

    assert [r.status for r in requests_for(arm, vm, "get")] == [503, 503, 503]


async def test_a_bad_gateway_on_a_post_is_not_retried_by_the_sdk_and_surfaces_as_unavailable(
    arm: Any, compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()
    arm.inject(Fault(kind="502", operation="deallocate"))

    with pytest.raises(errors.AzureUnavailable):
        await compute.begin_deallocate(vm)

    assert [r.status for r in requests_for(arm, vm, "deallocate")] == [502]


async def test_connections_dropped_without_an_answer_surface_as_unavailable_after_the_sdk_retries(
    arm: Any, compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()
    arm.inject(Fault(kind="drop", operation="get", count=10))

    with pytest.raises(errors.AzureUnavailable, match="unreachable"):
        await compute.observe(vm)

    # azure-core's 2 retries; aiohttp also resends once when a pooled connection was closed under it.
    dropped = [r.status for r in requests_for(arm, vm, "get")]
    assert 3 <= len(dropped) <= 6 and set(dropped) == {None}


async def test_a_single_dropped_connection_is_absorbed_by_the_retries(
    arm: Any, compute: azure.AzureCompute, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()
    arm.inject(Fault(kind="drop", operation="get"))

    assert await compute.observe(vm) is not None
    assert [r.status for r in requests_for(arm, vm, "get")] == [None, 200]
