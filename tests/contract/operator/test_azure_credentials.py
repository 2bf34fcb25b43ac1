"""Who AzureCompute authenticates as, and that a refused credential or an untrusted endpoint is never
worked around: the secret stays out of messages and TLS stays verified."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trustme

from vmgen.adapters import azure
from vmgen.domain import errors, model, ports


async def test_without_credentials_the_operators_own_identity_from_its_environment_is_used(
    arm: Any,
    azure_settings: azure.AzureSettings,
    seed_vm: Callable[..., model.VmRef],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DefaultAzureCredential's first source; on AKS the workload-identity webhook sets the equivalent.
    monkeypatch.setenv("AZURE_TENANT_ID", arm.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", arm.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", arm.client_secret)
    vm = seed_vm()

    async with azure.ComputeFactory(azure_settings)(None) as compute:
        observed = await compute.observe(vm)

    assert observed is not None and observed.id == vm.resource_id


async def test_a_wrong_client_secret_is_an_authentication_failure_that_never_shows_the_secret(
    arm: Any, azure_settings: azure.AzureSettings, seed_vm: Callable[..., model.VmRef]
) -> None:
    vm = seed_vm()
    wrong_secret = "not-the-secret-Zq8~x1"
    credentials = ports.AzureCredentials(
        tenant_id=arm.tenant_id, client_id=arm.client_id, client_secret=wrong_secret
    )

    async with azure.ComputeFactory(azure_settings)(credentials) as compute:
        with pytest.raises(errors.AzureAuthenticationFailed) as refused:
            await compute.observe(vm)

    assert "invalid_client" in refused.value.message
    assert wrong_secret not in refused.value.message
    assert wrong_secret not in repr(refused.value) and wrong_secret not in repr(credentials)
    assert "Trace ID" not in refused.value.message and "Correlation ID" not in refused.value.message


async def test_a_ca_bundle_that_does_not_sign_the_endpoint_is_refused_rather_than_trusted(
    arm: Any,
    azure_settings: azure.AzureSettings,
    service_principal: ports.AzureCredentials,
    seed_vm: Callable[..., model.VmRef],
    tmp_path: Path,
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    vm = seed_vm()
    untrusting = azure.AzureSettings(
        arm_endpoint=arm.base_url, authority=arm.authority, ca_bundle=str(other_ca), poll_interval=0.05
    )

    async with azure.ComputeFactory(untrusting)(service_principal) as compute:
        with pytest.raises((errors.AzureUnavailable, errors.AzureAuthenticationFailed), match="CERTIFICATE"):
            await compute.observe(vm)


async def test_one_tls_connection_carries_many_requests_with_a_ca_bundle(
    arm: Any,
    azure_settings: azure.AzureSettings,
    service_principal: ports.AzureCredentials,
    seed_vm: Callable[..., model.VmRef],
) -> None:
    # azure-core given connection_verify=<CA file> makes an SSLContext per request, and aiohttp pools by
    # context identity: every request was a new connection and handshake (docs/benchmarks.md, memory).
    assert azure_settings.ca_bundle is not None
    vm = seed_vm()
    before = len(arm.requests())

    async with azure.ComputeFactory(azure_settings)(service_principal) as compute:
        for _ in range(20):
            assert await compute.observe(vm) is not None

    sent = arm.requests()[before:]
    reads = [record for record in sent if record.operation == "get"]
    assert len(reads) == 20
    assert all(record.connection for record in sent)
    assert len({record.connection for record in reads}) == 1
    assert len({record.connection for record in sent}) == 1  # the token request too: one session


async def test_a_session_keeps_at_most_max_connections_however_many_requests_run_at_once(
    arm: Any,
    azure_settings: azure.AzureSettings,
    service_principal: ports.AzureCredentials,
    seed_vm: Callable[..., model.VmRef],
) -> None:
    vm = seed_vm()
    capped = replace(azure_settings, max_connections=3)
    before = len(arm.requests())

    async with azure.ComputeFactory(capped)(service_principal) as compute:
        await compute.observe(vm)  # the token first, so the 12 below are all reads
        observed = await asyncio.gather(*(compute.observe(vm) for _ in range(12)))

    assert all(found is not None for found in observed)
    reads = [record for record in arm.requests()[before:] if record.operation == "get"]
    assert len(reads) == 13
    assert 1 < len({record.connection for record in reads}) <= 3
