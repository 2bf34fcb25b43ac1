"""The actions of spec.source Copy (domain/copy_plan.py decides them, steps/copy.py performs them).

Apart from domain/actions.py so that the copy's vocabulary sits in one place, like windows_actions.py.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BuildCopy", "DeleteCopy", "StartSource", "StopSource"]


@dataclass(frozen=True)
class StopSource:
    """stopSourceFirst: deallocate the source for the snapshots (resuming the recorded operation)."""


@dataclass(frozen=True)
class StartSource:
    """stopSourceFirst: start the source again once its snapshots exist (never a generalized VM)."""


@dataclass(frozen=True)
class BuildCopy:
    """One stage of the copy per pass: check the subnet and record the names, the disks, the NIC, the VM,
    then wait for it to run with its agent ready (outputs.copy.state says which stage is next)."""


@dataclass(frozen=True)
class DeleteCopy:
    """Delete the copy's VM, then its NIC and disks (idempotent: a missing resource answers 204)."""
