"""The seam between the ARM simulator and the guests that back its VMs.

The simulator owns a VM's Azure-side state (power state, OS state, instance view); a guest owns
what runs inside it. When a power operation completes, the simulator calls `power_off()` or
`power_on()`; Run Command calls `run_script()`. A VM seeded without a guest is a pure model (useful
for scale tests and for failures that never reach the guest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
