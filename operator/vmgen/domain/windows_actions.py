"""The planner actions of the Windows guest step (StepName.DEPROVISION for a Windows VM).

Kept apart from domain/actions.py so the Windows path adds types without editing the Linux ones; the
union `actions.Action` lists them at its end and steps/prepare_windows.py performs them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CheckSysprep", "MarkSysprepUnknown", "StartSysprep", "ValidateWindows"]


@dataclass(frozen=True)
class ValidateWindows:
    """Read the WinRM Secrets (transport WinRM) and checkpoint validation; the VM is not touched."""


@dataclass(frozen=True)
class StartSysprep:
    """Preflight (read-only, every blocker at once), then intent, then the idempotent sysprep start."""


@dataclass(frozen=True)
class CheckSysprep:
    """Sysprep's intent is recorded: read ImageState and the start evidence, never start it blindly."""


@dataclass(frozen=True)
class MarkSysprepUnknown:
    """Nobody can tell whether sysprep finished (the VM was stopped mid-sysprep over WinRM): ask a person."""

    why: str
