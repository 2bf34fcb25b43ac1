"""The exact words of the domain-join guard (domain/copy_safety.py): the CopyNeedsIsolatedSubnet message a
user reads (what was found, which subnet, what to do), the read-only script and what its answer must hold.
tests/unit/test_copy_safety.py holds the decision table; this file pins the text around it."""

from __future__ import annotations

import pytest

from vmgen.domain import copy_safety, windows
from vmgen.domain.actions import Fail
from vmgen.domain.reasons import Reason

E = copy_safety.DomainEvidence
G = copy_safety.GuestDomain
SOURCE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/default"
JOINED = G(computer_name="WEB-01", part_of_domain=True, domain="corp.contoso.com")

WHY_AND_WHAT_TO_DO = (
    ". A copy has the same computer name and computer account as the original: booted where it reaches a"
    " domain controller, it can change the account's password and break the original's domain trust. Set"
    " spec.copy.subnetId to a subnet with no route to the domain controllers (an isolated virtual network),"
    " then recreate this resource. Nothing was created and the source VM was not touched."
)
NO_SUBNET = "spec.copy.subnetId is not set, so the copy would boot in the source's own subnet"
OWN_SUBNET = f"spec.copy.subnetId ({SOURCE}) is the source's own subnet"
BY_THE_GUEST = "reports itself joined to domain corp.contoso.com (Win32_ComputerSystem)"
BY_THE_EXTENSION = "has the JsonADDomainExtension (Azure joined it to a domain)"


def unknown(why: str) -> str:
    return (
        "may be domain-joined and vmgen cannot rule it out without writing to it (no domain-join extension"
        f" in Azure; its guest was not read: {why}; Run Command is not used on the source, it would run in"
        " its guest)"
    )


class TestTheMessageOfARefusedCopy:
    @pytest.mark.parametrize(
        ("evidence", "copy_subnet", "found", "subnet"),
        [
            pytest.param(
                E(extension=True, guest=JOINED),
                None,
                f"is domain-joined: it {BY_THE_GUEST} and {BY_THE_EXTENSION}",
                NO_SUBNET,
                id="both-sources-of-evidence-are-named-joined-by-and",
            ),
            pytest.param(
                E(extension=False, guest=JOINED),
                SOURCE,
                f"is domain-joined: it {BY_THE_GUEST}",
                OWN_SUBNET,
                id="the-guests-own-answer-names-its-domain",
            ),
            pytest.param(
                E(extension=True),
                SOURCE,
                f"is domain-joined: it {BY_THE_EXTENSION}",
                OWN_SUBNET,
                id="the-extension-alone-names-azures-join",
            ),
            pytest.param(
                E(extension=False),
                None,
                unknown("no spec.winrm"),
                NO_SUBNET,
                id="an-unasked-guest-defaults-to-no-spec-winrm",
            ),
            pytest.param(
                E(extension=False, guest_unread="WinRM: connection refused"),
                SOURCE,
                unknown("WinRM: connection refused"),
                OWN_SUBNET,
                id="an-unanswered-guest-carries-the-winrm-error",
            ),
        ],
    )
    def test_the_whole_failure(self, evidence: E, copy_subnet: str | None, found: str, subnet: str) -> None:
        got = copy_safety.isolation(evidence, vm_name="web-01", copy_subnet=copy_subnet, source_subnet=SOURCE)
        assert got == Fail(
            Reason.COPY_NEEDS_ISOLATED_SUBNET, f"VM web-01 {found}, and {subnet}{WHY_AND_WHAT_TO_DO}"
        )


class TestTheReadOnlyQuery:
    def test_the_script_is_the_query_whose_keys_the_parser_reads(self) -> None:
        # The report's keys are read case-sensitively by parse_domain_membership, and 'Stop' makes a failed
        # CIM query an error instead of a report of nulls.
        assert copy_safety.domain_membership_script().splitlines() == [
            "# vmgen:domain-membership v1",
            "$ErrorActionPreference = 'Stop'",
            "$system = Get-CimInstance -ClassName Win32_ComputerSystem",
            "'vmgen-win ' + ([ordered]@{ computerName = [string]$system.Name; partOfDomain ="
            " [bool]$system.PartOfDomain; domain = [string]$system.Domain }"
            " | ConvertTo-Json -Compress -Depth 4)",
        ]

    def test_a_report_without_name_or_domain_reads_as_empty_strings(self) -> None:
        got = copy_safety.parse_domain_membership('vmgen-win {"partOfDomain":false,"domain":null}')
        assert got == G(computer_name="", part_of_domain=False, domain="")

    @pytest.mark.parametrize("output", ['vmgen-win {"partOfDomain":"yes"}', 'vmgen-win {"domain":"corp"}'])
    def test_a_report_without_a_boolean_names_the_field(self, output: str) -> None:
        with pytest.raises(windows.ScriptOutputError) as raised:
            copy_safety.parse_domain_membership(output)
        assert str(raised.value) == "partOfDomain is not a boolean"
