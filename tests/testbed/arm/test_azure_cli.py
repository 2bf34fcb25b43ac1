"""The real Azure CLI (azure-cli, its own cached virtualenv) logs in to the simulator and drives a VM.

A second client written by other people is the best check that the simulator speaks ARM and not only
"what the SDK happens to accept": the CLI registers the simulator as a cloud from its metadata, signs in
a service principal through MSAL against the fake Entra, and sends its own api-versions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmgen_testbed.arm import api_versions
from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.azure_cli import AzureCli, ensure_azure_cli

RG, VM = "rg-cli", "vm-cli"


@pytest.fixture(scope="session")
def az_executable() -> Path:
    return ensure_azure_cli()  # minutes the first time on a machine, then cached in VMGEN_CACHE_DIR


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmSimulator]:
    # Retry-After: 1 on LROs, else the CLI (whose polling interval cannot be set) polls every 30 s
    with ArmSimulator(state_dir=tmp_path_factory.mktemp("arm-cli"), lro_retry_after=1) as arm:
        yield arm


@pytest.fixture(scope="module")
def subscription(simulator: ArmSimulator) -> str:
    sub = str(uuid.uuid4())
    simulator.seed_vm(subscription_id=sub, resource_group=RG, name=VM, location="westeurope")
    return sub


@pytest.fixture(scope="module")
def az(
    az_executable: Path, simulator: ArmSimulator, subscription: str, tmp_path_factory: pytest.TempPathFactory
) -> AzureCli:
    cli = AzureCli(
        az_executable, config_dir=tmp_path_factory.mktemp("azure-config"), ca_bundle=simulator.ca_bundle
    )
    cli.register_cloud("VmgenTestbed", simulator.base_url)
    cli.login_service_principal(
        tenant_id=simulator.tenant_id, client_id=simulator.client_id, client_secret=simulator.client_secret
    )
    return cli


class TestSigningIn:
    def test_the_cloud_registered_from_the_simulators_metadata_points_every_endpoint_at_it(
        self, az: AzureCli, simulator: ArmSimulator
    ) -> None:
        cloud = az.ok("cloud", "show", "--name", "VmgenTestbed")
        endpoints = cloud["endpoints"]
        assert endpoints["resourceManager"].rstrip("/") == simulator.base_url
        assert endpoints["activeDirectory"].rstrip("/") == simulator.base_url
        assert endpoints["activeDirectoryResourceId"] == f"{simulator.base_url}/"

    def test_az_login_with_a_service_principal_finds_the_seeded_subscription(
        self, az: AzureCli, simulator: ArmSimulator, subscription: str
    ) -> None:
        account = az.ok("account", "show")
        assert (account["id"], account["tenantId"], account["state"]) == (
            subscription,
            simulator.tenant_id,
            "Enabled",
        )
        assert account["user"] == {"name": simulator.client_id, "type": "servicePrincipal"}

    def test_the_login_went_through_discovery_the_token_endpoint_and_a_bare_subscriptions_list(
        self, az: AzureCli, simulator: ArmSimulator
    ) -> None:
        calls = [(r.operation, r.status) for r in simulator.requests()]
        assert ("metadataEndpoints", 200) in calls
        assert ("openidConfiguration", 200) in calls
        assert ("token", 200) in calls
        listed = [r for r in simulator.requests() if r.operation == "listSubscriptions"]
        assert listed and listed[0].path == "/subscriptions" and listed[0].status == 200
        assert listed[0].query["api-version"] in api_versions.CLI["subscriptions"]

    def test_nothing_the_cli_sent_went_unanswered_or_used_an_unlisted_api_version(
        self, az: AzureCli, simulator: ArmSimulator
    ) -> None:
        for record in simulator.requests():
            assert record.operation != "unknown", (
                f"the CLI called a path the simulator does not serve: {record}"
            )
            version = record.query.get("api-version")
            if record.api == "arm" and version is not None and record.status != 400:
                assert any(version in versions for versions in api_versions.SERVED.values()), record


class TestVirtualMachineCommands:
    def test_az_vm_show_reads_the_vm_at_the_clis_compute_api_version(
        self, az: AzureCli, simulator: ArmSimulator, subscription: str
    ) -> None:
        vm = az.ok("vm", "show", "--resource-group", RG, "--name", VM)
        assert (vm["name"], vm["location"], vm["storageProfile"]["osDisk"]["osType"]) == (
            VM,
            "westeurope",
            "Linux",
        )
        gets = [r for r in simulator.requests() if r.operation == "get" and r.path.endswith(f"/{VM}")]
        assert gets[-1].query["api-version"] in api_versions.CLI["virtualMachines"]

    def test_az_vm_get_instance_view_reports_the_power_state_and_the_agent(self, az: AzureCli) -> None:
        vm = az.ok("vm", "get-instance-view", "--resource-group", RG, "--name", VM)
        codes = [status["code"] for status in vm["instanceView"]["statuses"]]
        assert "PowerState/running" in codes
        assert vm["instanceView"]["vmAgent"]["statuses"][0]["displayStatus"] == "Ready"

    def test_az_vm_deallocate_waits_for_the_operation_and_generalize_then_marks_the_vm(
        self, az: AzureCli, simulator: ArmSimulator, subscription: str
    ) -> None:
        az.ok("vm", "deallocate", "--resource-group", RG, "--name", VM)
        assert simulator.vm_state(subscription, RG, VM)["powerState"] == "deallocated"
        polls = [r for r in simulator.requests() if r.operation in ("operationStatus", "operationResult")]
        assert polls and polls[-1].status == 200
        az.ok("vm", "generalize", "--resource-group", RG, "--name", VM)
        assert simulator.vm_state(subscription, RG, VM)["generalized"] is True
        view = az.ok("vm", "get-instance-view", "--resource-group", RG, "--name", VM)
        assert "OSState/generalized" in [status["code"] for status in view["instanceView"]["statuses"]]

    def test_az_vm_start_after_generalize_fails_with_azures_message(self, az: AzureCli) -> None:
        result = az.run("vm", "start", "--resource-group", RG, "--name", VM)
        assert result.returncode != 0
        assert "OperationNotAllowed" in result.stderr
        assert "since the VM is generalized" in result.stderr


class TestApiVersions:
    def test_an_unknown_compute_api_version_gets_no_registered_provider_found(
        self, az: AzureCli, simulator: ArmSimulator, subscription: str
    ) -> None:
        url = (
            f"{simulator.base_url}/subscriptions/{subscription}/resourceGroups/{RG}/providers/"
            f"Microsoft.Compute/virtualMachines/{VM}?api-version=2099-01-01"
        )
        result = az.run("rest", "--method", "get", "--url", url)
        assert result.returncode != 0
        assert "NoRegisteredProviderFound" in result.stderr
        assert (
            "No registered resource provider found for location 'westeurope' and API version '2099-01-01' "
            "for type 'virtualMachines'."
        ) in result.stderr

    def test_an_unknown_api_version_of_the_subscriptions_list_gets_invalid_api_version_parameter(
        self, az: AzureCli, simulator: ArmSimulator
    ) -> None:
        result = az.run(
            "rest", "--method", "get", "--url", f"{simulator.base_url}/subscriptions?api-version=2001-01-01"
        )
        assert result.returncode != 0
        assert "InvalidApiVersionParameter" in result.stderr
        assert (
            "The api-version '2001-01-01' is invalid. The supported versions are '2022-12-01'."
            in result.stderr
        )
