"""Requests are authenticated with tokens from the fake Entra, and refused as ARM refuses them."""

from __future__ import annotations

import ssl
import uuid
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.compute.aio import ComputeManagementClient

from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.arm_fixtures import default_credential


async def raw_get(
    arm: ArmSimulator, path: str, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    context = ssl.create_default_context(cafile=arm.ca_bundle)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{arm.base_url}{path}", headers=headers or {}, ssl=context) as response,
    ):
        return response.status, await response.json(), response.headers


async def token(arm: ArmSimulator) -> str:
    async with default_credential(arm) as cred:
        return (await cred.get_token("https://management.azure.com/.default")).token


@pytest.fixture
def sub(arm: ArmSimulator) -> str:
    subscription = str(uuid.uuid4())
    arm.seed_vm(subscription_id=subscription, resource_group="rg", name="vm")
    return subscription


async def test_a_client_secret_credential_gets_a_token_the_compute_client_uses(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    assert (await compute_client(sub).virtual_machines.get("rg", "vm")).name == "vm"
    assert [r.status for r in arm.requests() if r.api == "entra"][-1] == 200


async def test_the_request_log_never_holds_a_token_or_secret(
    arm: ArmSimulator, sub: str, compute_client: Any
) -> None:
    await compute_client(sub).virtual_machines.get("rg", "vm")
    entra = [r for r in arm.requests() if r.operation == "token"]
    assert entra and all(r.request_body is None for r in entra)
    assert all(r.response_body["access_token"] == "<redacted>" for r in entra if r.status == 200)


async def test_a_wrong_secret_is_a_client_authentication_error_with_aadsts7000215(arm: ArmSimulator) -> None:
    async with ClientSecretCredential(
        arm.tenant_id,
        arm.client_id,
        "not-the-secret",
        authority=arm.authority,
        disable_instance_discovery=True,
        connection_verify=arm.ca_bundle,
    ) as cred:
        with pytest.raises(ClientAuthenticationError) as raised:
            await cred.get_token("https://management.azure.com/.default")
    assert "AADSTS7000215" in str(raised.value)
    assert "not-the-secret" not in str(raised.value)


async def test_an_added_service_principal_can_sign_in(arm: ArmSimulator) -> None:
    tenant, client = str(uuid.uuid4()), str(uuid.uuid4())
    arm.add_service_principal(tenant, client, "s3cret")
    async with ClientSecretCredential(
        tenant,
        client,
        "s3cret",
        authority=arm.authority,
        disable_instance_discovery=True,
        connection_verify=arm.ca_bundle,
    ) as cred:
        assert (await cred.get_token("https://management.azure.com/.default")).token


async def test_default_azure_credential_works_from_environment_variables(
    arm: ArmSimulator, sub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (
        ("AZURE_TENANT_ID", arm.tenant_id),
        ("AZURE_CLIENT_ID", arm.client_id),
        ("AZURE_CLIENT_SECRET", arm.client_secret),
        ("AZURE_AUTHORITY_HOST", arm.authority),
    ):
        monkeypatch.setenv(name, value)
    async with (
        DefaultAzureCredential(connection_verify=arm.ca_bundle) as credential,
        ComputeManagementClient(
            credential, sub, base_url=arm.base_url, connection_verify=arm.ca_bundle
        ) as client,
    ):
        assert (await client.virtual_machines.get("rg", "vm")).name == "vm"


async def test_a_request_without_a_token_is_401_authentication_failed(arm: ArmSimulator, sub: str) -> None:
    status, body, _ = await raw_get(
        arm,
        f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
        "?api-version=2026-04-01",
    )
    assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")


async def test_a_token_not_issued_by_the_fake_entra_is_invalid(arm: ArmSimulator, sub: str) -> None:
    status, body, _ = await raw_get(
        arm,
        f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
        "?api-version=2026-04-01",
        {"Authorization": "Bearer forged"},
    )
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")


async def test_a_request_without_api_version_is_400(arm: ArmSimulator, sub: str) -> None:
    status, body, _ = await raw_get(
        arm,
        f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
        {"Authorization": f"Bearer {await token(arm)}"},
    )
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")


async def test_an_unknown_subscription_is_subscription_not_found(arm: ArmSimulator) -> None:
    status, body, _ = await raw_get(
        arm,
        f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
        "?api-version=2026-04-01",
        {"Authorization": f"Bearer {await token(arm)}"},
    )
    assert (status, body["error"]["code"]) == (404, "SubscriptionNotFound")


async def test_every_arm_response_carries_arm_headers(arm: ArmSimulator, sub: str) -> None:
    for headers in ({}, {"Authorization": f"Bearer {await token(arm)}"}):
        _, _, response_headers = await raw_get(
            arm,
            f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
            "?api-version=2026-04-01",
            headers,
        )
        assert {
            "x-ms-request-id",
            "x-ms-correlation-request-id",
            "x-ms-ratelimit-remaining-subscription-reads",
        } <= {h.lower() for h in response_headers}
