"""The seam between the ARM simulator and the guests that back its VMs.

The simulator owns a VM's Azure-side state (power state, OS state, instance view); a guest owns
what runs inside it. When a power operation completes, the simulator calls `power_off()` or
`power_on()`; Run Command calls `run_script()`. A VM seeded without a guest is a pure model (useful
for scale tests and for failures that never reach the guest).

Copies (issue 11) need two more capabilities, both optional so that a pure-model guest stays small:
- `DiskCapture`: a snapshot of the VM's OS disk asks the guest for its filesystem state at that moment
  (a Linux sandbox writes its overlay's upper layer as a tar, whiteouts and xattrs included); the
  simulator keeps it with the snapshot and hands it on to disks made from that snapshot.
- `GuestFactory`: a VM created (PUT) from such disks boots a new guest from that state, with its own
  network namespace and address; the simulator discards it again when the VM is deleted.
A guest without `DiskCapture` yields snapshots without content; a simulator without a factory creates
VMs without guests (pure models).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


class ShellNotSupported(Exception):
    """The guest cannot run scripts of that shell (a Linux guest and RunPowerShellScript)."""


@dataclass(frozen=True)
class ScriptResult:
    exit_code: int
    stdout: str
    stderr: str


class Guest(Protocol):
    """What a simulated VM needs from the machine behind it."""

    async def power_on(self) -> None:
        """Start the guest's services (for a Linux sandbox: its sshd). Idempotent."""

    async def power_off(self) -> None:
        """Stop the guest's services so that nothing answers on its address. Idempotent."""

    async def run_script(self, script: str, *, shell: str, timeout: float) -> ScriptResult:  # noqa: ASYNC109
        """Run `script` as root inside the guest. `shell` is "bash" (RunShellScript) or
        "powershell" (RunPowerShellScript, for a later Windows guest); a guest that cannot run the
        given shell raises `ShellNotSupported` and the simulator answers Azure's error for it."""


@runtime_checkable
class DiskCapture(Protocol):
    async def capture_os_disk(self, destination: Path) -> None:
        """Write the OS disk's filesystem state, as it is now, to the file `destination`."""


@runtime_checkable
class Discardable(Protocol):
    async def discard(self) -> None:
        """Remove the guest for good (its VM was deleted). Idempotent."""


@dataclass(frozen=True)
class GuestRequest:
    """What a VM created from disks asks of the factory: its name and its OS disk's content."""

    name: str
    os_type: str
    os_disk: Path | None
    """The captured filesystem state (see `DiskCapture`), None for a disk without content."""
    vm_id: str = ""
    """The new VM's resource id (a Windows guest reports a sysprep /shutdown to it)."""


GuestFactory = Callable[[GuestRequest], Awaitable[Guest | None]]
"""Boots (powers on) a guest for a new VM; None: this VM runs without a guest."""
