"""`vmgen_testbed up --windows-vms N` describes each Windows VM so a client can reach it with what it says."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from pathlib import Path

from vmgen.adapters import winrm
from vmgen.domain import windows
from vmgen_testbed.__main__ import start_windows_vms
from vmgen_testbed.arm.server import ArmSimulator


async def test_the_descriptor_of_a_windows_vm_is_enough_to_run_the_preflight(
    arm: ArmSimulator, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        [described] = start_windows_vms(stack, arm, tmp_path, 1)
        assert described["osType"] == "Windows"
        assert set(described["winrm"]) == {"host", "port", "httpPort", "caBundle", "username", "password"}
        state = arm.vm_state(described["subscriptionId"], described["resourceGroup"], described["name"])
        assert (state["osType"], state["powerState"], state["hasGuest"]) == ("Windows", "running", True)
        access = described["winrm"]
        result = await winrm.WinRmClient().run(
            winrm.WinRmTarget(
                host=access["host"],
                port=access["port"],
                username=access["username"],
                password=access["password"],
                ca_pem=await asyncio.to_thread(Path(access["caBundle"]).read_text),
            ),
            windows.preflight_script(),
        )
        assert windows.parse_preflight("\n".join(result.output)).findings == ()
