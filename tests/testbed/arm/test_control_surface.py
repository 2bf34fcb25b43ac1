"""Other processes (the demo, benchmarks) drive the simulator over HTTP under /_control/."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from vmgen_testbed.arm.server import ArmSimulator


@pytest.fixture
async def control(arm: ArmSimulator) -> AsyncIterator[Any]:
    context = ssl.create_default_context(cafile=arm.ca_bundle)

    async def call(method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{arm.control_url}{path}", json=payload, ssl=context) as response,
        ):
            return (
                response.status,
                await response.json() if response.content_type == "application/json" else None,
            )

    yield call
    arm.clear_faults()


async def test_a_vm_seeded_over_http_is_visible_to_the_compute_client(
    control: Any, compute_client: Any
) -> None:
    sub = str(uuid.uuid4())
    status, state = await control(
        "POST", "/vms", {"subscription_id": sub, "resource_group": "rg", "name": "vm", "os_type": "Windows"}
    )
    assert (status, state["powerState"]) == (201, "running")
    vm = await compute_client(sub).virtual_machines.get("rg", "vm")
    assert vm.storage_profile.os_disk.os_type == "Windows"


async def test_vm_state_reads_and_changes_over_http(control: Any, arm: ArmSimulator) -> None:
    sub = str(uuid.uuid4())
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm")
    status, state = await control("PATCH", f"/vms/{sub}/rg/vm", {"power_state": "stopped"})
    assert (status, state["powerState"]) == (200, "stopped")
    assert (await control("GET", f"/vms/{sub}/rg/vm"))[1]["powerState"] == "stopped"
    assert (await control("GET", f"/vms/{sub}/rg/missing"))[0] == 404


async def test_faults_and_latency_set_over_http_take_effect(
    control: Any, arm: ArmSimulator, compute_client: Any
) -> None:
    sub = str(uuid.uuid4())
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm")
    assert (await control("POST", "/latency", {"operation": "instanceView", "seconds": 0}))[0] == 204
    assert (await control("POST", "/faults", {"kind": "503", "operation": "instanceView", "count": 2}))[
        0
    ] == 201
    assert (await control("POST", "/faults", {"kind": "teapot"}))[0] == 400
    await compute_client(sub, retry_backoff_factor=0.01).virtual_machines.instance_view("rg", "vm")
    _, log = await control("GET", "/requests")
    assert [r["status"] for r in log if r["operation"] == "instanceView" and sub in r["path"]] == [
        503,
        503,
        200,
    ]


async def test_resetting_latencies_restores_the_defaults_not_zero(control: Any, arm: ArmSimulator) -> None:
    default = arm.latency("deallocate")
    assert default > 0, "long-running operations take a moment by default"
    arm.set_latency("deallocate", 3.0)
    arm.set_latency("get", 1.0)

    assert (await control("DELETE", "/latency"))[0] == 204

    assert (arm.latency("deallocate"), arm.latency("get")) == (default, 0.0)


async def test_the_request_log_keeps_the_long_running_operation_headers(
    arm: ArmSimulator, compute_client: Any
) -> None:
    sub = str(uuid.uuid4())
    arm.seed_vm(subscription_id=sub, resource_group="rg", name="vm")
    await (await compute_client(sub).virtual_machines.begin_deallocate("rg", "vm")).result()

    (begun,) = [r for r in arm.requests() if sub in r.path and r.operation == "deallocate"]
    operation = begun.response_headers["Azure-AsyncOperation"]
    assert f"/subscriptions/{sub}/providers/Microsoft.Compute/locations/" in operation
    polls = [r for r in arm.requests() if r.operation == "operationStatus" and r.path in operation]
    assert polls, "the SDK polled the operation the POST answered with"


async def test_the_request_log_clears_over_http(control: Any, arm: ArmSimulator) -> None:
    assert (await control("DELETE", "/requests"))[0] == 204
    assert arm.requests() == []


async def test_image_definitions_and_subnets_seeded_over_http_are_visible_to_the_sdks(
    control: Any, compute_client: Any, network_client: Any
) -> None:
    sub = str(uuid.uuid4())
    await control("POST", "/vms", {"subscription_id": sub, "resource_group": "rg", "name": "vm"})
    status, seeded = await control(
        "POST",
        "/image-definitions",
        {
            "subscription_id": sub,
            "resource_group": "rg",
            "gallery": "gal",
            "image": "web",
            "hyper_v_generation": "V1",
            "security_type": "TrustedLaunch",
        },
    )
    assert status == 201 and seeded["id"].endswith("/galleries/gal/images/web")
    definition = await compute_client(sub).gallery_images.get("rg", "gal", "web")
    assert (definition.hyper_v_generation, definition.features[0].value) == ("V1", "TrustedLaunch")

    status, subnet = await control(
        "POST",
        "/subnets",
        {
            "subscription_id": sub,
            "resource_group": "rg",
            "vnet": "isolated",
            "subnet": "copies",
            "prefix": "10.9.0.0/24",
        },
    )
    assert status == 201
    assert (await network_client(sub).subnets.get("rg", "isolated", "copies")).id == subnet["id"]
