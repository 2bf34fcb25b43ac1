"""The domain-join guard's I/O: read whether a Windows source is domain-joined, never writing to it.

Called by Windows validation (steps/prepare_windows.py) for `spec.source: Copy` -- before the snapshots,
so before any disk exists -- and by preflight mode. domain/copy_safety.py decides; this module only reads:
- the source's subnet (its primary NIC: GETs), to tell whether spec.copy.subnetId isolates the copy;
- the VM's extensions, from the observation this pass already made (the VM GET's `resources`);
- only when those do not settle it (no isolated subnet, no domain-join extension) and spec.winrm is
  given: one read-only WinRM script in the source guest (Win32_ComputerSystem). A WinRM failure is not
  the job's failure: it only means membership cannot be ruled out.
Run Command is never used on the source here: a managed run command is a write to the VM and runs in its
guest, which is what a copy promises never to do to the original.
"""

from __future__ import annotations

from vmgen.domain import copy_safety, errors, windows
from vmgen.domain.actions import Fail
from vmgen.steps import prepare_windows_winrm
from vmgen.steps.base import Pass

__all__ = ["blocker", "check"]

SCRIPT_SECONDS = 60.0


async def check(p: Pass) -> None:
    """Raise PermanentError(CopyNeedsIsolatedSubnet) when the copy may not boot where it would."""
    if (found := await blocker(p)) is not None:
        raise errors.PermanentError(found.message, reason=found.reason)


async def blocker(p: Pass) -> Fail | None:
    vm = p.observed()
    extension = any(e.lower() == copy_safety.DOMAIN_JOIN_EXTENSION for e in vm.extensions)
    evidence = copy_safety.DomainEvidence(extension=extension, guest_unread="no spec.winrm is set")
    source_subnet = await _source_subnet(p) if p.spec.copy.subnet_id else None  # absent: it is the source's

    def decide(evidence: copy_safety.DomainEvidence) -> Fail | None:
        return copy_safety.isolation(
            evidence, vm_name=p.spec.vm.name, copy_subnet=p.spec.copy.subnet_id, source_subnet=source_subnet
        )

    found = decide(evidence)
    if found is None or extension or p.spec.windows.winrm is None:
        return found
    return decide(await _ask_guest(p))


async def _ask_guest(p: Pass) -> copy_safety.DomainEvidence:
    try:
        guest = p.ports.windows.winrm(await prepare_windows_winrm.read_secrets(p))
        output = await guest.run(copy_safety.domain_membership_script(), timeout=SCRIPT_SECONDS)
        return copy_safety.DomainEvidence(extension=False, guest=copy_safety.parse_domain_membership(output))
    except errors.VmgenError as exc:
        return copy_safety.DomainEvidence(extension=False, guest_unread=f"WinRM failed with {exc.reason}")
    except windows.ScriptOutputError as exc:
        return copy_safety.DomainEvidence(extension=False, guest_unread=f"its answer was unreadable ({exc})")


async def _source_subnet(p: Pass) -> str | None:
    """The subnet of the source's primary NIC (reads only); None when it has none."""
    azure = p.azure()
    layout = await azure.read_layout(p.spec.vm)
    if layout is None or not layout.nic_ids:
        return None
    nic = await azure.get_network_interface(layout.nic_ids[0])
    return nic.subnet_id if nic is not None and nic.subnet_id else None
