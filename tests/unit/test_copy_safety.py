"""The domain-join guard of Windows copies: which evidence lets a copy boot in which subnet, and that a
Windows copy through Run Command passes the copy rows to Windows validation (the guard's I/O follows)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from vmgen.domain import copy_safety, model, planner, windows
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import Phase, Status
from vmgen.domain.windows_actions import ValidateWindows

E = copy_safety.DomainEvidence
G = copy_safety.GuestDomain
SOURCE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/default"
ISOLATED = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/iso/subnets/a"
JOINED = G(computer_name="WEB-01", part_of_domain=True, domain="corp.contoso.com")
WORKGROUP = G(computer_name="WEB-01", part_of_domain=False, domain="WORKGROUP")

SAYS_WORKGROUP = E(extension=False, guest=WORKGROUP)
SAYS_JOINED = E(extension=False, guest=JOINED)
EXTENSION = E(extension=True)
NOTHING = E(extension=False)
ROWS = [
    pytest.param(SAYS_WORKGROUP, None, True, id="not-joined-by-the-guest-may-use-the-sources-subnet"),
    pytest.param(SAYS_WORKGROUP, ISOLATED, True, id="not-joined-in-an-isolated-subnet"),
    pytest.param(SAYS_JOINED, None, False, id="joined-by-the-guest-without-a-subnet-fails"),
    pytest.param(SAYS_JOINED, SOURCE, False, id="joined-in-the-sources-own-subnet-fails"),
    pytest.param(SAYS_JOINED, SOURCE.upper(), False, id="subnet-ids-compare-case-blind"),
    pytest.param(SAYS_JOINED, ISOLATED, True, id="joined-in-an-isolated-subnet-proceeds"),
    pytest.param(EXTENSION, None, False, id="the-domain-join-extension-without-a-subnet-fails"),
    pytest.param(E(extension=True, guest=WORKGROUP), None, False, id="the-extension-wins-over-a-workgroup"),
    pytest.param(EXTENSION, ISOLATED, True, id="the-extension-in-an-isolated-subnet-proceeds"),
    pytest.param(NOTHING, None, False, id="unknown-without-a-subnet-fails"),
    pytest.param(NOTHING, SOURCE, False, id="unknown-in-the-sources-subnet-fails"),
    pytest.param(NOTHING, ISOLATED, True, id="unknown-in-an-isolated-subnet-proceeds"),
]


@pytest.mark.parametrize(("evidence", "subnet", "allowed"), ROWS)
def test_the_guard(evidence: copy_safety.DomainEvidence, subnet: str | None, allowed: bool) -> None:
    found = copy_safety.isolation(evidence, vm_name="web-01", copy_subnet=subnet, source_subnet=SOURCE)

    assert (found is None) is allowed
    if found is not None:
        assert found.reason is Reason.COPY_NEEDS_ISOLATED_SUBNET


class TestMembership:
    @pytest.mark.parametrize(
        ("evidence", "expected"),
        [
            (E(extension=True), copy_safety.Membership.JOINED),
            (E(extension=False, guest=JOINED), copy_safety.Membership.JOINED),
            (E(extension=False, guest=WORKGROUP), copy_safety.Membership.NOT_JOINED),
            (E(extension=False), copy_safety.Membership.UNKNOWN),
        ],
    )
    def test_each_kind_of_evidence_means(self, evidence: copy_safety.DomainEvidence, expected: Any) -> None:
        assert copy_safety.membership(evidence) is expected

    def test_a_source_without_a_known_subnet_only_needs_an_explicit_one(self) -> None:
        joined = E(extension=True)
        assert copy_safety.isolation(joined, vm_name="w", copy_subnet=ISOLATED, source_subnet=None) is None
        assert copy_safety.isolation(joined, vm_name="w", copy_subnet=None, source_subnet=None) is not None


class TestTheMessage:
    def test_a_joined_source_names_the_domain_the_danger_and_the_field_to_set(self) -> None:
        found = copy_safety.isolation(
            E(extension=True, guest=JOINED), vm_name="web-01", copy_subnet=None, source_subnet=SOURCE
        )

        assert found is not None
        assert "corp.contoso.com" in found.message and "JsonADDomainExtension" in found.message
        assert "computer account" in found.message and "domain trust" in found.message
        assert "spec.copy.subnetId" in found.message and "not touched" in found.message

    def test_an_unknown_source_says_why_it_could_not_be_ruled_out(self) -> None:
        found = copy_safety.isolation(
            E(extension=False, guest_unread="no spec.winrm is set"),
            vm_name="web-01",
            copy_subnet=SOURCE,
            source_subnet=SOURCE,
        )

        assert found is not None
        assert "cannot rule it out" in found.message and "no spec.winrm is set" in found.message
        assert f"({SOURCE}) is the source's own subnet" in found.message


class TestTheGuestsAnswer:
    def test_win32_computersystem_is_parsed(self) -> None:
        output = (
            'noise\nvmgen-win {"computerName":"WEB-01","partOfDomain":true,"domain":"corp.contoso.com"}\n'
        )
        assert copy_safety.parse_domain_membership(output) == JOINED

    @pytest.mark.parametrize("output", ["", 'vmgen-win {"partOfDomain":"yes"}', "vmgen-win []"])
    def test_an_unusable_answer_is_a_script_output_error(self, output: str) -> None:
        with pytest.raises(windows.ScriptOutputError):
            copy_safety.parse_domain_membership(output)

    def test_the_script_only_reads(self) -> None:
        script = copy_safety.domain_membership_script()
        assert script.splitlines()[0] == "# vmgen:domain-membership v1"
        assert "Get-CimInstance -ClassName Win32_ComputerSystem" in script
        assert not [word for word in ("Set-", "Remove-", "New-", "Invoke-", "Add-") if word in script]


class TestTheCopyRowsOfAWindowsSource:
    BODY: dict[str, Any] = {
        "vm": {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "name": "w"},
        "osType": "Windows",
        "source": "Copy",
    }
    VM = model.VmObservation(
        id="/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
        "Microsoft.Compute/virtualMachines/w",
        os_type=model.OsType.WINDOWS,
        power_state=model.PowerState.RUNNING,
        generalized=False,
        agent_ready=True,
    )

    def plan(self, **spec: Any) -> planner.Action:
        parsed = Spec.from_body({**self.BODY, **spec})
        status = Status(phase=Phase.PENDING).planned(parsed.steps)
        return planner.plan(parsed, status, self.VM, now=datetime(2026, 1, 1, tzinfo=UTC), confirmed=False)

    def test_run_command_goes_on_to_windows_validation_where_the_guard_runs(self) -> None:
        assert isinstance(self.plan(windows={"transport": "RunCommand"}), ValidateWindows)

    def test_winrm_on_a_copy_fails_untouched_and_says_to_use_run_command(self) -> None:
        action = self.plan(
            winrm={"host": "10.0.0.5", "credentialsSecretRef": {"name": "admin"}},
            windows={"transport": "WinRM"},
        )

        assert isinstance(action, planner.Fail) and action.reason is Reason.COPY_NOT_SUPPORTED
        assert "spec.windows.transport: RunCommand" in action.message and "not touched" in action.message
