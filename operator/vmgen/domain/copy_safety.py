"""Whether a Windows copy may boot where it would boot: the domain-join guard of `spec.source: Copy`.

A copy of a domain-joined Windows VM has the same computer name and the same computer account (and its
machine password) as the original. Booted on a network that reaches a domain controller, it renews that
password or re-registers the name, and the original's secure channel breaks ("The trust relationship
between this workstation and the primary domain failed"). Sysprep runs only after the copy booted, so it
does not help; neither does the Run Command transport alone (the copy still boots on the source's network).
The rule, decided here before any disk is created:

- evidence, all read without writing to the source: the VM's extensions from Azure (the
  JsonADDomainExtension means it was joined by Azure), and, where spec.winrm is given, a read-only WinRM
  query of the source guest (`domain_membership_script`: Win32_ComputerSystem PartOfDomain, Domain). Run
  Command on the source is never used for this: it is a write (a run command resource) and runs in its
  guest;
- joined (either source says so) or not ruled out (no WinRM answer that says PartOfDomain False): the
  copy needs an explicit spec.copy.subnetId that is not the source's subnet (`CopyNeedsIsolatedSubnet`
  otherwise). Only a guest that itself reports no domain, with no domain-join extension, may boot its
  copy beside the original.
`isolation()` is pure and table-tested (tests/unit/test_copy_safety.py); steps/copy_safety.py reads the
evidence. Subnet ids are compared case-insensitively, as Azure resource ids are.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vmgen.domain import windows
from vmgen.domain.actions import Fail
from vmgen.domain.reasons import Reason

__all__ = [
    "DOMAIN_JOIN_EXTENSION",
    "DomainEvidence",
    "GuestDomain",
    "Membership",
    "domain_membership_script",
    "isolation",
    "membership",
    "parse_domain_membership",
]

DOMAIN_JOIN_EXTENSION = "microsoft.compute.jsonaddomainextension"
"""`<publisher>.<type>` of Azure's domain-join extension, lower-cased."""


@dataclass(frozen=True)
class GuestDomain:
    """What the source guest reports (Win32_ComputerSystem)."""

    computer_name: str
    part_of_domain: bool
    domain: str


@dataclass(frozen=True)
class DomainEvidence:
    extension: bool
    """The JsonADDomainExtension is on the VM (Azure's view)."""
    guest: GuestDomain | None = None
    """The source guest's own answer over WinRM; None when it was not asked or did not answer."""
    guest_unread: str = ""
    """Why the guest was not read ("" when it was): no spec.winrm, or the WinRM error."""


class Membership(enum.Enum):
    JOINED = "joined"
    NOT_JOINED = "not joined"
    UNKNOWN = "unknown"


def membership(evidence: DomainEvidence) -> Membership:
    if evidence.extension or (evidence.guest is not None and evidence.guest.part_of_domain):
        return Membership.JOINED
    if evidence.guest is not None:
        return Membership.NOT_JOINED
    return Membership.UNKNOWN


def isolation(
    evidence: DomainEvidence, *, vm_name: str, copy_subnet: str | None, source_subnet: str | None
) -> Fail | None:
    """None: the copy may be built in its subnet; a Fail (CopyNeedsIsolatedSubnet) otherwise."""
    found = membership(evidence)
    if found is Membership.NOT_JOINED:
        return None
    if copy_subnet and (source_subnet is None or copy_subnet.lower() != source_subnet.lower()):
        return None  # an explicit subnet that is not the source's
    subnet = (
        "spec.copy.subnetId is not set, so the copy would boot in the source's own subnet"
        if not copy_subnet
        else f"spec.copy.subnetId ({copy_subnet}) is the source's own subnet"
    )
    return Fail(
        Reason.COPY_NEEDS_ISOLATED_SUBNET,
        f"VM {vm_name} {_what_was_found(evidence, found)}, and {subnet}. A copy has the same computer"
        " name and computer account as the original: booted where it reaches a domain controller, it can"
        " change the account's password and break the original's domain trust. Set spec.copy.subnetId to"
        " a subnet with no route to the domain controllers (an isolated virtual network), then recreate"
        " this resource. Nothing was created and the source VM was not touched.",
    )


def _what_was_found(evidence: DomainEvidence, found: Membership) -> str:
    if found is Membership.JOINED:
        parts = []
        if evidence.guest is not None and evidence.guest.part_of_domain:
            parts.append(f"reports itself joined to domain {evidence.guest.domain} (Win32_ComputerSystem)")
        if evidence.extension:
            parts.append("has the JsonADDomainExtension (Azure joined it to a domain)")
        return "is domain-joined: it " + " and ".join(parts)
    return (
        "may be domain-joined and vmgen cannot rule it out without writing to it (no domain-join extension"
        f" in Azure; its guest was not read: {evidence.guest_unread or 'no spec.winrm'}; Run Command is not"
        " used on the source, it would run in its guest)"
    )


def domain_membership_script() -> str:
    """Read-only: Win32_ComputerSystem's Name, PartOfDomain and Domain (the workgroup when not joined)."""
    return "\n".join(
        [
            *windows.header("domain-membership", 1),
            "$ErrorActionPreference = 'Stop'",
            "$system = Get-CimInstance -ClassName Win32_ComputerSystem",
            windows.report(
                "computerName = [string]$system.Name; partOfDomain = [bool]$system.PartOfDomain;"
                " domain = [string]$system.Domain"
            ),
        ]
    )


def parse_domain_membership(output: str) -> GuestDomain:
    report = windows.parse_report(output)
    joined = report.get("partOfDomain")
    if not isinstance(joined, bool):
        raise windows.ScriptOutputError("partOfDomain is not a boolean")
    return GuestDomain(
        computer_name=str(report.get("computerName") or ""),
        part_of_domain=joined,
        domain=str(report.get("domain") or ""),
    )
