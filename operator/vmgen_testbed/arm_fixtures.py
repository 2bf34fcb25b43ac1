"""pytest fixtures for the arm part of the testbed.

`arm` is one simulator for the whole session (tests use their own subscription or VM names to stay
apart); `compute_client` and `network_client` make real async Compute and Network clients
authenticated through the fake Entra, with a short LRO polling interval (the SDK's default is 30 s),
and close them after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from azure.identity.aio import ClientSecretCredential
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient

from vmgen_testbed.arm.server import ArmSimulator

__all__ = ["arm", "compute_client", "network_client"]

ComputeClientFactory = Callable[..., ComputeManagementClient]


@pytest.fixture(scope="session")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmSimulator]:
    with ArmSimulator(state_dir=tmp_path_factory.mktemp("arm")) as simulator:
        yield simulator


def default_credential(arm: ArmSimulator) -> ClientSecretCredential:
    """The simulator's default service principal, signed in through its fake Entra authority."""
    return ClientSecretCredential(
        arm.tenant_id,
        arm.client_id,
        arm.client_secret,
        authority=arm.authority,
        disable_instance_discovery=True,
        connection_verify=arm.ca_bundle,
    )


@pytest.fixture
async def compute_client(arm: ArmSimulator) -> AsyncIterator[ComputeClientFactory]:
    """`compute_client(subscription_id, **client_kwargs)` -> an open ComputeManagementClient."""
    opened: list[Any] = []

    def make(subscription_id: str, **client_kwargs: Any) -> ComputeManagementClient:
        credential = default_credential(arm)
        client_kwargs.setdefault("polling_interval", 0.05)
        client = ComputeManagementClient(
            credential,
            subscription_id,
            base_url=arm.base_url,
            connection_verify=arm.ca_bundle,
            **client_kwargs,
        )
        opened.extend((client, credential))
        return client

    yield make
    for resource in opened:
        await resource.close()


@pytest.fixture
async def network_client(arm: ArmSimulator) -> AsyncIterator[Callable[..., NetworkManagementClient]]:
    """`network_client(subscription_id, **client_kwargs)` -> an open NetworkManagementClient."""
    opened: list[Any] = []

    def make(subscription_id: str, **client_kwargs: Any) -> NetworkManagementClient:
        credential = default_credential(arm)
        client_kwargs.setdefault("polling_interval", 0.05)
        client = NetworkManagementClient(
            credential,
            subscription_id,
            base_url=arm.base_url,
            connection_verify=arm.ca_bundle,
            **client_kwargs,
        )
        opened.extend((client, credential))
        return client

    yield make
    for resource in opened:
        await resource.close()
