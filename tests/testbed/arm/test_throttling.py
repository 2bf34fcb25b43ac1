"""The simulator throttles like Azure Compute: token buckets per resource and per subscription and region.

The numbers are the published ones (`throttling.py`); these tests check capacity and refill against them,
stepping an injected clock instead of sleeping, and once through the real SDK with a time scale.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute.aio import ComputeManagementClient

from vmgen_testbed.arm import schema
from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.arm.throttling import POLICIES
from vmgen_testbed.arm_fixtures import default_credential

VMS = "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines"
API = "api-version=2026-04-01"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance_minutes(self, minutes: float) -> None:
        self.now += minutes * 60


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class Raw:
    """Bare HTTPS calls with a real token: fast enough for the thousands a subscription bucket holds."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str, context: ssl.SSLContext):
        self._session, self._base, self._token, self._context = session, base_url, token, context

    async def call(self, method: str, path: str) -> Answer:
        async with self._session.request(
            method,
            f"{self._base}{path}",
            headers={"Authorization": f"Bearer {self._token}"},
            ssl=self._context,
        ) as response:
            text = await response.text()
            return Answer(response.status, dict(response.headers), json.loads(text) if text else None)


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmSimulator]:
    with ArmSimulator(state_dir=tmp_path_factory.mktemp("arm-throttling")) as arm:
        yield arm


@pytest.fixture
def clock(simulator: ArmSimulator) -> Iterator[ManualClock]:
    manual = ManualClock()
    simulator.configure_throttling(enabled=True, time_scale=1.0, clock=manual)
    yield manual
    simulator.configure_throttling(enabled=False, clock=time.monotonic)


@pytest.fixture(scope="module")
async def raw(simulator: ArmSimulator) -> AsyncIterator[Raw]:
    credential = default_credential(simulator)
    token = (await credential.get_token(f"{simulator.base_url}/.default")).token
    await credential.close()
    async with aiohttp.ClientSession() as session:
        yield Raw(session, simulator.base_url, token, ssl.create_default_context(cafile=simulator.ca_bundle))


def fresh_subscription(simulator: ArmSimulator, vms: int = 1, **seed: Any) -> str:
    sub = str(uuid.uuid4())
    for index in range(vms):
        simulator.seed_vm(subscription_id=sub, resource_group="rg", name=f"vm{index}", **seed)
    return sub


class TestCapacity:
    async def test_a_vm_answers_36_gets_and_throttles_the_37th_with_computes_body_and_retry_after(
        self, simulator: ArmSimulator, clock: ManualClock, raw: Raw
    ) -> None:
        sub = fresh_subscription(simulator)
        answers = [await raw.call("GET", f"{VMS.format(sub=sub)}/vm0?{API}") for _ in range(37)]
        assert [a.status for a in answers] == [200] * 36 + [429]
        assert answers[0].headers["x-ms-ratelimit-remaining-resource"] == (
            "Microsoft.Compute/LowCostGetResource;35,Microsoft.Compute/LowCostGetSubscriptionMaximum;23999"
        )
        throttled = answers[-1]
        assert throttled.headers["Retry-After"] == "5"  # one token of 12 per minute
        assert throttled.headers["x-ms-ratelimit-remaining-resource"].startswith(
            "Microsoft.Compute/LowCostGetResource;0,"
        )
        error = throttled.body["error"]
        assert (error["code"], error["details"][0]["code"], error["details"][0]["target"]) == (
            "OperationNotAllowed",
            "TooManyRequests",
            "LowCostGetResource",
        )
        assert json.loads(error["details"][0]["message"])["allowedRequestCount"] == 36

    async def test_instance_view_shares_the_low_cost_get_bucket_of_its_vm_but_not_of_another_vm(
        self, simulator: ArmSimulator, clock: ManualClock, raw: Raw
    ) -> None:
        vms = VMS.format(sub=fresh_subscription(simulator, vms=2))
        for _ in range(36):
            assert (await raw.call("GET", f"{vms}/vm0/instanceView?{API}")).status == 200
        assert (await raw.call("GET", f"{vms}/vm0?{API}")).status == 429
        assert (await raw.call("GET", f"{vms}/vm1?{API}")).status == 200

    async def test_the_subscription_bucket_throttles_a_vm_whose_own_bucket_is_still_full(
        self, simulator: ArmSimulator, clock: ManualClock, raw: Raw
    ) -> None:
        policy = POLICIES["UpdateVM"]
        assert policy.resource is not None
        per_vm, total = policy.resource.capacity, policy.subscription.capacity  # 12 and 1500
        sub = fresh_subscription(simulator, vms=total // per_vm + 1, power_state="deallocated")
        vms = VMS.format(sub=sub)
        for index in range(total // per_vm):  # generalize on a deallocated VM: 200, and it stays so
            for _ in range(per_vm):
                assert (await raw.call("POST", f"{vms}/vm{index}/generalize?{API}")).status == 200
        last = await raw.call("POST", f"{vms}/vm{total // per_vm}/generalize?{API}")
        assert last.status == 429
        assert last.body["error"]["details"][0]["target"] == "UpdateVMSubscriptionMaximum"
        assert last.headers["x-ms-ratelimit-remaining-resource"] == (
            "Microsoft.Compute/UpdateVMResource;12,Microsoft.Compute/UpdateVMSubscriptionMaximum;0"
        )
        simulator.seed_vm(
            subscription_id=sub,
            resource_group="rg",
            name="elsewhere",
            location="northeurope",
            power_state="deallocated",
        )
        assert (await raw.call("POST", f"{vms}/elsewhere/generalize?{API}")).status == 200  # per region


class TestRefill:
    async def test_update_vm_follows_the_documented_six_minute_example(
        self, simulator: ArmSimulator, clock: ManualClock, raw: Raw
    ) -> None:
        # learn.microsoft.com "Compute throttling limits": refill 4/min, capacity 12; requests per minute
        # 0, 8, 0, 13, 5, 0 are throttled 0, 0, 0, 1, 1, 0
        sub = fresh_subscription(simulator, power_state="deallocated")
        throttled = []
        for requests in (0, 8, 0, 13, 5, 0):
            answers = [
                await raw.call("POST", f"{VMS.format(sub=sub)}/vm0/generalize?{API}") for _ in range(requests)
            ]
            throttled.append(sum(a.status == 429 for a in answers))
            clock.advance_minutes(1)
        assert throttled == [0, 0, 0, 1, 1, 0]

    async def test_a_bucket_never_refills_above_its_capacity(
        self, simulator: ArmSimulator, clock: ManualClock, raw: Raw
    ) -> None:
        sub = fresh_subscription(simulator, power_state="deallocated")
        path = f"{VMS.format(sub=sub)}/vm0/deallocate?{API}"
        first = await raw.call("POST", path)
        assert first.headers["x-ms-ratelimit-remaining-resource"].startswith(
            "Microsoft.Compute/DeleteVMResource;11,"
        )
        clock.advance_minutes(60)
        again = await raw.call("POST", path)
        assert again.headers["x-ms-ratelimit-remaining-resource"].startswith(
            "Microsoft.Compute/DeleteVMResource;11,"
        )

    async def test_the_sdk_waits_the_retry_after_of_a_time_scaled_bucket_and_then_succeeds(
        self, simulator: ArmSimulator, raw: Raw
    ) -> None:
        # a minute passes in 12 s: one token of 12 a minute is back after 1 s, which is the Retry-After (and
        # slower than the few milliseconds between emptying the bucket and the SDK's call)
        simulator.configure_throttling(enabled=True, time_scale=5.0, clock=time.monotonic)
        try:
            sub = fresh_subscription(simulator)
            for _ in range(36):
                await raw.call("GET", f"{VMS.format(sub=sub)}/vm0?{API}")
            credential = default_credential(simulator)
            client = ComputeManagementClient(
                credential, sub, base_url=simulator.base_url, connection_verify=simulator.ca_bundle
            )
            started = time.monotonic()
            async with client, credential:
                assert (await client.virtual_machines.get("rg", "vm0")).name == "vm0"
            assert 0.9 < time.monotonic() - started < 5
            statuses = [r.status for r in simulator.requests() if r.operation == "get" and sub in r.path]
            assert statuses[-2:] == [429, 200]
        finally:
            simulator.configure_throttling(enabled=False)


class TestWhatCounts:
    async def test_polls_of_an_operation_count_against_the_vm_that_started_it(
        self, simulator: ArmSimulator, clock: ManualClock, raw: Raw
    ) -> None:
        sub = fresh_subscription(simulator)
        started = await raw.call("POST", f"{VMS.format(sub=sub)}/vm0/powerOff?{API}")
        assert started.status == 202
        assert started.headers["x-ms-ratelimit-remaining-resource"].startswith(
            "Microsoft.Compute/UpdateVMResource;11,"
        )
        poll = started.headers["Azure-AsyncOperation"].removeprefix(simulator.base_url)
        remaining = [
            (await raw.call("GET", poll)).headers["x-ms-ratelimit-remaining-resource"].split(",")[0]
            for _ in range(2)
        ]
        assert remaining == [
            "Microsoft.Compute/GetOperationResource;44",
            "Microsoft.Compute/GetOperationResource;43",
        ]

    async def test_a_sdk_client_whose_retries_are_off_sees_the_429_as_operation_not_allowed(
        self, simulator: ArmSimulator, clock: ManualClock, raw: Raw
    ) -> None:
        sub = fresh_subscription(simulator)
        for _ in range(12):
            await raw.call("POST", f"{VMS.format(sub=sub)}/vm0/start?{API}")
        credential = default_credential(simulator)
        client = ComputeManagementClient(
            credential, sub, base_url=simulator.base_url, connection_verify=simulator.ca_bundle, retry_total=0
        )
        async with client, credential:
            with pytest.raises(HttpResponseError) as raised:
                await client.virtual_machines.begin_power_off("rg", "vm0")
        assert raised.value.status_code == 429
        assert raised.value.error is not None and raised.value.error.code == "OperationNotAllowed"
        assert raised.value.response.headers["Retry-After"] == "15"  # 4 tokens a minute


class TestSwitch:
    async def test_throttling_is_off_by_default_and_sends_no_resource_header(
        self, simulator: ArmSimulator, raw: Raw
    ) -> None:
        sub = fresh_subscription(simulator)
        answers = [await raw.call("GET", f"{VMS.format(sub=sub)}/vm0?{API}") for _ in range(40)]
        assert {a.status for a in answers} == {200}
        assert "x-ms-ratelimit-remaining-resource" not in answers[-1].headers

    async def test_the_http_control_surface_turns_throttling_on_with_a_time_scale(
        self, simulator: ArmSimulator, raw: Raw
    ) -> None:
        context = ssl.create_default_context(cafile=simulator.ca_bundle)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{simulator.control_url}/throttling", json={"enabled": True, "time_scale": 30}, ssl=context
            ) as response,
        ):
            settings = await response.json()
        try:
            assert (response.status, settings["enabled"], settings["time_scale"]) == (200, True, 30.0)
            assert settings["policies"]["LowCostGet"]["resource"] == {"refill_per_minute": 12, "capacity": 36}
            sub = fresh_subscription(simulator)
            answer = await raw.call("GET", f"{VMS.format(sub=sub)}/vm0?{API}")
            assert "LowCostGetResource;35" in answer.headers["x-ms-ratelimit-remaining-resource"]
        finally:
            simulator.configure_throttling(enabled=False, time_scale=1.0)


async def test_throttled_and_admitted_bodies_validate_against_azures_schema(
    simulator: ArmSimulator, clock: ManualClock, raw: Raw
) -> None:
    sub = fresh_subscription(simulator)
    for _ in range(13):
        await raw.call("POST", f"{VMS.format(sub=sub)}/vm0/start?{API}")
    records = [r for r in simulator.requests() if sub in r.path]
    assert [r.status for r in records][-1] == 429
    for record in records:
        definition = schema.response_definition(record.operation, record.status or 0)
        if definition is not None and record.response_body is not None:
            schema.validate(definition, record.response_body)
