"""What every client sees on the wire: served api-versions, Compute's LRO headers, a log of every request."""

from __future__ import annotations

import ssl
import uuid
from typing import Any

import aiohttp
import pytest
from arm_test_support import error_code, error_message
from azure.core.exceptions import HttpResponseError

from vmgen_testbed.arm import api_versions
from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.arm_fixtures import default_credential


@pytest.fixture
def sub(arm: ArmSimulator) -> str:
    subscription = str(uuid.uuid4())
    arm.seed_vm(subscription_id=subscription, resource_group="rg", name="vm", location="northeurope")
    return subscription


async def call(arm: ArmSimulator, method: str, path: str, *, authorized: bool = True) -> tuple[int, Any, Any]:
    headers = {}
    if authorized:
        async with default_credential(arm) as credential:
            headers["Authorization"] = (
                f"Bearer {(await credential.get_token(f'{arm.base_url}/.default')).token}"
            )
    context = ssl.create_default_context(cafile=arm.ca_bundle)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{arm.base_url}{path}", headers=headers, ssl=context) as response,
    ):
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body, response.headers


class TestApiVersions:
    async def test_the_sdks_own_api_versions_are_the_listed_ones(
        self, arm: ArmSimulator, sub: str, compute_client: Any
    ) -> None:
        await compute_client(sub).virtual_machines.get("rg", "vm")
        sent = [r.query["api-version"] for r in arm.requests() if r.operation == "get" and sub in r.path]
        assert sent == list(api_versions.SDK["virtualMachines"])

    async def test_a_compute_api_version_azure_does_not_serve_is_no_registered_provider_found(
        self, arm: ArmSimulator, sub: str, compute_client: Any
    ) -> None:
        with pytest.raises(HttpResponseError) as raised:
            await compute_client(sub).virtual_machines.get("rg", "vm", api_version="2026-13-01")
        assert (raised.value.status_code, error_code(raised.value)) == (400, "NoRegisteredProviderFound")
        assert error_message(raised.value).startswith(
            "No registered resource provider found for location 'northeurope' and API version '2026-13-01' "
            "for type 'virtualMachines'. The supported api-versions are '2026-04-01, 2025-11-01, "
        )

    async def test_an_arm_level_api_version_azure_does_not_serve_is_invalid_api_version_parameter(
        self, arm: ArmSimulator
    ) -> None:
        status, body, _ = await call(arm, "GET", "/tenants?api-version=2022-12-02")
        assert (status, body["error"]["code"]) == (400, "InvalidApiVersionParameter")
        assert body["error"]["message"] == (
            "The api-version '2022-12-02' is invalid. The supported versions are '2022-12-01'."
        )

    def test_every_served_version_is_one_the_sdk_or_the_cli_sends(self) -> None:
        sent = {
            v
            for group in (api_versions.SDK, api_versions.CLI)
            for versions in group.values()
            for v in versions
        }
        assert {v for versions in api_versions.SERVED.values() for v in versions} == sent


class TestLongRunningOperationHeaders:
    async def test_a_power_operation_answers_202_with_computes_headers_and_no_retry_after(
        self, arm: ArmSimulator, sub: str
    ) -> None:
        path = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
        status, _, headers = await call(arm, "POST", f"{path}/powerOff?api-version=2026-04-01")
        assert status == 202
        assert headers["Azure-AsyncOperation"].startswith(
            f"{arm.base_url}/subscriptions/{sub}/providers/Microsoft.Compute/locations/northeurope/operations/"
        )
        assert "monitor=true" in headers["Location"]
        assert "Retry-After" not in headers
        poll = headers["Azure-AsyncOperation"].removeprefix(arm.base_url)
        status, body, poll_headers = await call(arm, "GET", poll)
        assert status == 200 and body["status"] in ("InProgress", "Succeeded")
        assert "Retry-After" not in poll_headers


class TestRequestLog:
    async def test_the_bare_subscriptions_list_is_answered_and_logged(
        self, arm: ArmSimulator, sub: str
    ) -> None:
        status, body, _ = await call(arm, "GET", "/subscriptions?api-version=2022-12-01")
        assert status == 200
        listed = {s["subscriptionId"]: s for s in body["value"]}
        assert listed[sub]["tenantId"] == arm.tenant_id and listed[sub]["state"] == "Enabled"
        record = [r for r in arm.requests() if r.path == "/subscriptions"][-1]
        assert (record.operation, record.status, record.method) == ("listSubscriptions", 200, "GET")

    async def test_the_subscriptions_list_needs_a_token_like_any_arm_call(self, arm: ArmSimulator) -> None:
        status, body, _ = await call(arm, "GET", "/subscriptions?api-version=2022-12-01", authorized=False)
        assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")

    async def test_an_unknown_subscription_is_subscription_not_found(self, arm: ArmSimulator) -> None:
        missing = str(uuid.uuid4())
        status, body, _ = await call(arm, "GET", f"/subscriptions/{missing}?api-version=2022-12-01")
        assert (status, body["error"]["code"]) == (404, "SubscriptionNotFound")

    async def test_the_metadata_endpoint_is_anonymous_and_points_at_the_simulator(
        self, arm: ArmSimulator
    ) -> None:
        status, cloud, _ = await call(
            arm, "GET", "/metadata/endpoints?api-version=2022-09-01", authorized=False
        )
        assert status == 200
        assert cloud["authentication"]["loginEndpoint"] == f"{arm.base_url}/"
        assert cloud["resourceManager"] == f"{arm.base_url}/"
        status, clouds, _ = await call(
            arm, "GET", "/metadata/endpoints?api-version=2019-05-01", authorized=False
        )
        assert status == 200 and clouds[0]["name"] == cloud["name"]
        assert [r.operation for r in arm.requests()][-2:] == ["metadataEndpoints", "metadataEndpoints"]
        status, body, _ = await call(arm, "GET", "/metadata/endpoints", authorized=False)
        assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")

    async def test_a_path_the_simulator_does_not_serve_is_logged_with_its_404(
        self, arm: ArmSimulator
    ) -> None:
        status, _, _ = await call(
            arm, "GET", "/providers/Microsoft.Compute/operations?api-version=2026-04-01"
        )
        assert status == 404
        record = arm.requests()[-1]
        assert (record.path, record.operation, record.status) == (
            "/providers/Microsoft.Compute/operations",
            "unknown",
            404,
        )
