"""The shared budget's rules, with an injected clock: who waits, how long, and for which resource.

No HTTP here (tests/contract/operator/test_azure_pacing.py runs the policy inside the real SDK against
the simulator); these pin the arithmetic the policy relies on.
"""

from __future__ import annotations

import pytest

from vmgen.adapters import pacing

SUB = "0f6c3d2e-5b1a-4c8e-9a7d-adab7e500001"
VM = f"/subscriptions/{SUB}/resourcegroups/rg/providers/microsoft.compute/virtualmachines/web-01"
OTHER = f"/subscriptions/{SUB}/resourcegroups/rg/providers/microsoft.compute/virtualmachines/web-02"
KIND = "POST microsoft.compute/virtualmachines/generalize"
HEADER = "x-ms-ratelimit-remaining-resource"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pacer(clock: Clock) -> pacing.Pacer:
    return pacing.Pacer(clock=clock, sleep=clock.sleep)


def _answer(
    pacer: pacing.Pacer, resource: str, *, vm: int, sub: int, status: int = 200, **extra: str
) -> None:
    remaining = f"Microsoft.Compute/UpdateVMResource;{vm},Microsoft.Compute/UpdateVMSubscriptionMaximum;{sub}"
    pacer.answered(SUB, KIND, resource, taken=[], status=status, headers={HEADER: remaining, **extra})


async def _send(pacer: pacing.Pacer, resource: str) -> None:
    async with pacer.slot(SUB, KIND, resource) as taken:
        taken.clear()


async def test_a_budget_with_tokens_to_spare_lets_requests_through_at_once(
    pacer: pacing.Pacer, clock: Clock
) -> None:
    _answer(pacer, VM, vm=11, sub=1499)

    await _send(pacer, OTHER)

    assert clock.sleeps == []


async def test_a_subscription_bucket_at_its_reserve_makes_every_resource_wait_for_the_refill(
    pacer: pacing.Pacer, clock: Clock
) -> None:
    _answer(pacer, VM, vm=11, sub=1500)  # capacity seen: 1500, reserve 5% = 75
    _answer(pacer, VM, vm=10, sub=70)

    await _send(pacer, OTHER)

    assert clock.sleeps == [pytest.approx((76 - 70) / (500 / 60))], "UpdateVM refills 500 a minute"


async def test_a_429_pauses_the_whole_subscription_until_its_retry_after(
    pacer: pacing.Pacer, clock: Clock
) -> None:
    _answer(pacer, VM, vm=11, sub=1500)
    _answer(pacer, VM, vm=5, sub=1400, status=429, **{"Retry-After": "7"})  # no bucket named empty

    await _send(pacer, OTHER)

    assert sum(clock.sleeps) == pytest.approx(7)
    assert pacer.stats.throttled == 1


async def test_a_429_of_one_vms_bucket_pauses_only_that_vm(pacer: pacing.Pacer, clock: Clock) -> None:
    _answer(pacer, VM, vm=12, sub=1500)
    _answer(pacer, VM, vm=0, sub=1400, status=429, **{"Retry-After": "15"})
    _answer(pacer, OTHER, vm=12, sub=1399)

    await _send(pacer, OTHER)
    assert clock.sleeps == []
    await _send(pacer, VM)
    assert sum(clock.sleeps) >= 15


async def test_requests_let_through_count_before_their_answers_come_back(
    pacer: pacing.Pacer, clock: Clock
) -> None:
    _answer(pacer, VM, vm=12, sub=1500)
    _answer(pacer, VM, vm=2, sub=1400)

    async with pacer.slot(SUB, KIND, VM), pacer.slot(SUB, KIND, VM):  # two in flight: both tokens taken
        pass
    await _send(pacer, VM)

    assert clock.sleeps, "the third request waited for a token although no answer had said 0"


def test_an_operations_polls_spend_the_bucket_of_the_vm_that_started_it(pacer: pacing.Pacer) -> None:
    operation = f"https://arm.local/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/abc"

    _answer(pacer, VM, vm=11, sub=1499, **{"Azure-AsyncOperation": operation + "?api-version=2024-07-01"})

    assert pacer.resource_of(operation.removeprefix("https://arm.local")) == VM
