"""A Windows VM of the testbed as the ARM simulator's `Guest`: one modelled machine, reached two ways.

The WinRM endpoint and Azure Run Command (RunPowerShellScript and managed run commands) act on the same
`WindowsMachine`, as both reach the same Windows on Azure. Power operations follow the VM: deallocate or
power off stops the endpoint answering (connections are refused), start makes it answer again. A sysprep
started with /shutdown powers the machine off by itself; `attach()` wires that to the simulator so the
VM then reads PowerState/stopped, as Azure shows it.

A snapshot of the VM's OS disk holds the machine's state (`capture_os_disk`, JSON from
`WindowsMachine.disk_state`, with the local account WinRM accepts, as a disk keeps its accounts); a VM
created from a disk made from it boots a new machine with that state and a WinRM endpoint of its own
(windows_fixtures.windows_guest_factory), discarded again when that VM is deleted.

Run Command's answer is what the Windows handler reports: the output stream as stdout, the error stream
(and a terminating error's message) as stderr, exit code 1 after a terminating error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from vmgen_testbed.guest import ScriptResult, ShellNotSupported
from vmgen_testbed.windows import scripts
from vmgen_testbed.windows.endpoint import WinRmEndpoint
from vmgen_testbed.windows.machine import WindowsMachine

__all__ = ["WindowsGuest"]


class WindowsGuest:
    def __init__(self, machine: WindowsMachine, endpoint: WinRmEndpoint) -> None:
        self.machine = machine
        self.endpoint = endpoint

    def __repr__(self) -> str:
        return f"WindowsGuest({self.machine.name})"

    def attach(self, on_power_off: Callable[[], None]) -> None:
        """Called when sysprep /shutdown powered the machine off (the simulator marks the VM stopped)."""

        def powered_off() -> None:
            self.endpoint.stop_answering()
            on_power_off()

        self.machine.on_power_off = powered_off

    async def power_on(self) -> None:
        self.machine.power_on()
        await asyncio.to_thread(self.endpoint.start_answering)

    async def power_off(self) -> None:
        self.machine.power_off()
        await asyncio.to_thread(self.endpoint.stop_answering)

    async def capture_os_disk(self, destination: Path) -> None:
        disk = {
            "machine": json.loads(self.machine.disk_state()),
            "account": {"username": self.endpoint.username, "password": self.endpoint.password},
        }
        await asyncio.to_thread(destination.write_text, json.dumps(disk))

    async def discard(self) -> None:
        await asyncio.to_thread(self.endpoint.stop)

    async def run_script(self, script: str, *, shell: str, timeout: float) -> ScriptResult:  # noqa: ASYNC109 (the Guest protocol)
        if shell != "powershell":
            raise ShellNotSupported(shell)
        if not self.machine.powered:
            raise RuntimeError(f"{self.machine.name} is powered off")
        await asyncio.sleep(self.machine.script_seconds)
        outcome = scripts.run(self.machine, script)
        stderr = list(outcome.errors)
        if outcome.terminating is not None:
            stderr.append(outcome.terminating.message)
        return ScriptResult(
            exit_code=1 if outcome.terminating is not None else 0,
            stdout="".join(f"{line}\n" for line in outcome.output),
            stderr="".join(f"{line}\n" for line in stderr),
        )
