"""Fixtures of the adapter contract tests: the real adapters, pointed at the testbed's real servers."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from vmgen.adapters import azure, ssh
from vmgen.domain import model, ports

SUBSCRIPTION_ID = "0f6c3d2e-5b1a-4c8e-9a7d-adab7e500001"
RESOURCE_GROUP = "rg-adapter-contract"
_vm_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def azure_settings(arm: Any) -> azure.AzureSettings:
    return azure.AzureSettings(
        arm_endpoint=arm.base_url, authority=arm.authority, ca_bundle=str(arm.ca_bundle), poll_interval=0.05
    )


@pytest.fixture(scope="session")
def service_principal(arm: Any) -> ports.AzureCredentials:
    return ports.AzureCredentials(
        tenant_id=arm.tenant_id, client_id=arm.client_id, client_secret=arm.client_secret
    )


@pytest.fixture
async def compute(
    azure_settings: azure.AzureSettings, service_principal: ports.AzureCredentials
) -> AsyncIterator[azure.AzureCompute]:
    async with azure.ComputeFactory(azure_settings)(service_principal) as opened:
        yield opened


@pytest.fixture(autouse=True)
def no_fault_or_latency_outlives_its_test(arm: Any) -> Iterator[None]:
    yield
    arm.clear_faults()
    arm.reset_latencies()


@pytest.fixture
def seed_vm(arm: Any) -> Callable[..., model.VmRef]:
    """Seeds a VM without a guest (a pure Azure-side model) under a name no other test uses."""

    def seed(**state: Any) -> model.VmRef:
        vm = model.VmRef(SUBSCRIPTION_ID, RESOURCE_GROUP, f"adapter-vm-{next(_vm_numbers)}")
        arm.seed_vm(
            subscription_id=vm.subscription_id, resource_group=vm.resource_group, name=vm.name, **state
        )
        return vm

    return seed


@pytest.fixture
def deprovisioner() -> ssh.SshDeprovisioner:
    return ssh.SshDeprovisioner(connect_timeout=5, keepalive_interval=2)
