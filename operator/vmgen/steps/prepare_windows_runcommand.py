"""Transport RunCommand of the Windows guest step: the same scripts through Azure managed run commands.

No network path to the VM is needed and no Secret is read: Run Command is an authenticated channel of
its own, through the Azure client this pass already holds. Sysprep runs with /shutdown here: the run
command's runner must report back before the VM stops, and the VM then powers off by itself (the
planner checkpoints a VM found stopped after the start as sysprep finished; docs/windows.md).
"""

from __future__ import annotations

from vmgen.domain import ports
from vmgen.steps.base import Pass

__all__ = ["SHUTS_DOWN", "open_guest"]

SHUTS_DOWN = True


async def open_guest(p: Pass) -> ports.WindowsGuest:
    location = p.observation.location if p.observation is not None else ""
    return p.ports.windows.run_command(p.azure(), p.target, location=location)
