"""The shared ARM budget against the simulator's Compute throttling: the real SDK, the real headers.

A burst larger than a VM's LowCostGet bucket (36 tokens) is paced instead of throttled; two jobs with
the same credential share one account and one budget; a 429 that happens anyway pauses every request
of the subscription until its Retry-After, not only the one that got it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.contract.operator.guests import wait_until
from vmgen.adapters import azure, pacing, shared_azure
from vmgen.domain import model, ports
from vmgen_testbed.arm.server import Fault


@pytest.fixture
def throttled(arm: Any) -> Iterator[None]:
    arm.configure_throttling(enabled=True, time_scale=60.0)  # a documented minute passes in a second
    arm.clear_requests()
    yield
    arm.configure_throttling(enabled=False, time_scale=1.0)


def _throttled_answers(arm: Any) -> list[str]:
    return [f"{r.method} {r.path}" for r in arm.requests() if r.api == "arm" and r.status == 429]


@pytest.mark.usefixtures("throttled")
async def test_a_burst_beyond_a_vms_bucket_waits_for_tokens_instead_of_meeting_429s(
    arm: Any,
    azure_settings: azure.AzureSettings,
    service_principal: ports.AzureCredentials,
    seed_vm: Callable[..., model.VmRef],
) -> None:
    # A slower clock than the other tests: at 60x the bucket refills 12 tokens a second, so on a slow
    # machine 60 GETs could trickle in without ever needing to wait; at 10x they cannot (2 a second).
    arm.configure_throttling(enabled=True, time_scale=10.0)
    vm = seed_vm()
    pacer = pacing.Pacer(
        max_subscription_requests_in_flight=2
    )  # few in flight: each answer updates the budget
    shared = shared_azure.SharedAccounts(azure_settings, pacer)

    async with shared(service_principal) as compute:
        seen = await asyncio.gather(*(compute.observe(vm) for _ in range(60)))

    assert all(found is not None for found in seen)
    assert _throttled_answers(arm) == []
    assert pacer.stats.throttled == 0
    assert pacer.stats.waits > 0, "36 tokens cannot serve 60 reads without waiting"


@pytest.mark.usefixtures("throttled")
async def test_jobs_with_one_credential_share_one_account_and_its_budget(
    azure_settings: azure.AzureSettings,
    service_principal: ports.AzureCredentials,
    seed_vm: Callable[..., model.VmRef],
) -> None:
    vm = seed_vm()
    shared = shared_azure.SharedAccounts(azure_settings, pacing.Pacer())

    async with shared(service_principal) as first, shared(service_principal) as second:
        assert first is second
        assert shared.open_accounts == 1
        await first.observe(vm)
        await second.observe(vm)
        assert shared.pacer.stats.requests >= 2
    assert shared.open_accounts == 0, "closed once the last job let go"


@pytest.mark.usefixtures("throttled")
async def test_a_429_pauses_every_request_of_the_subscription_until_its_retry_after(
    arm: Any,
    azure_settings: azure.AzureSettings,
    service_principal: ports.AzureCredentials,
    seed_vm: Callable[..., model.VmRef],
) -> None:
    vm, other = seed_vm(), seed_vm()
    pacer = pacing.Pacer()
    shared = shared_azure.SharedAccounts(azure_settings, pacer)
    arm.inject(Fault(kind="429-retry-after", operation="get", retry_after=2))

    async with shared(service_principal) as compute:
        first = asyncio.create_task(compute.observe(vm))  # 429 + Retry-After: 2
        await wait_until(lambda: pacer.stats.throttled > 0, within=10, what="the first read was throttled")
        started = time.monotonic()
        await compute.observe(other)  # another job, another VM: it waits for the same pause
        elapsed = time.monotonic() - started
        await first

    assert pacer.stats.throttled == 1
    assert elapsed >= 1.5
    assert pacer.stats.waits >= 1
    assert len(_throttled_answers(arm)) == 1


async def test_rotated_credentials_get_their_own_account_and_the_old_one_closes_with_its_last_job(
    azure_settings: azure.AzureSettings, service_principal: ports.AzureCredentials
) -> None:
    shared = shared_azure.SharedAccounts(azure_settings, pacing.Pacer())
    rotated = ports.AzureCredentials(
        tenant_id=service_principal.tenant_id, client_id="rotated-client", client_secret="rotated-secret"
    )

    async with shared(service_principal) as old:
        async with shared(rotated) as new:
            assert new is not old
            assert shared.open_accounts == 2
        assert shared.open_accounts == 1, "the rotated account closed when its only job let go"
    assert shared.open_accounts == 0
