"""Sandboxes come and go cleanly: in parallel, and after a crashed run, nothing is left on the host."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from linux_ssh import run

from vmgen_testbed.linux import sandbox as sandbox_module
from vmgen_testbed.linux.sandbox import LinuxSandbox, SandboxHost

pytestmark = pytest.mark.root


def mounts_under(directory: Path) -> list[str]:
    prefix = str(directory.resolve())
    return [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]


def state(pid: int) -> str | None:
    """A process's state letter ("Z" for a zombie), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def leftovers(*, netns: list[str], interfaces: list[str], pids: list[int], state_dir: Path) -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    namespaces = listing.stdout.split()
    return (
        [f"netns {n}" for n in netns if n in namespaces]
        + [f"veth {i}" for i in interfaces if Path(f"/sys/class/net/{i}").exists()]
        + [f"process {p}" for p in pids if state(p) not in (None, "Z")]
        + [f"mount {m}" for m in mounts_under(state_dir)]
    )


async def test_eight_sandboxes_are_created_deprovisioned_and_torn_down_in_parallel_without_leftovers(
    linux_rootfs: Path, tmp_path: Path
) -> None:
    host = SandboxHost(tmp_path)
    try:
        started = time.monotonic()
        created: list[LinuxSandbox] = await asyncio.gather(
            *(asyncio.to_thread(host.create, f"par-{i}") for i in range(8))
        )
        elapsed = time.monotonic() - started
        print(f"8 sandboxes created in parallel in {elapsed:.2f}s")

        results = await asyncio.gather(*(run(sb, "sudo waagent -deprovision+user -force") for sb in created))

        assert [r.exit_status for r in results] == [0] * 8
        assert len({sb.ip for sb in created}) == 8
        assert all(not (sb.rootfs / "home/azureuser").exists() for sb in created)
        netns = [sb.netns for sb in created]
        interfaces = [sb.host_interface for sb in created]
        pids = [pid for sb in created for pid in sb.pids()]
        assert len(pids) >= 16, "each VM has at least its PID 1 and sshd"
    finally:
        host.close()

    assert host.sandboxes == []
    assert leftovers(netns=netns, interfaces=interfaces, pids=pids, state_dir=tmp_path) == []
    assert [p for p in pids if state(p) == "Z"] == [], "teardown reaps every process it ends"


def test_cleanup_stale_removes_what_a_crashed_run_left_behind_and_spares_live_sandboxes(
    sandboxes: SandboxHost, tmp_path: Path
) -> None:
    alive = sandboxes.create("survivor")
    crash = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from vmgen_testbed.linux.sandbox import SandboxHost\n"
        "sb = SandboxHost(Path(sys.argv[1])).create('crashed')\n"
        "print(sb.netns, sb.host_interface, *sb.pids(), flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    try:
        crashed = subprocess.run(
            [sys.executable, "-c", crash, str(tmp_path)], capture_output=True, text=True, timeout=60
        )
        assert crashed.returncode == -9, crashed.stderr
        netns, interface, *pid_text = crashed.stdout.split()
        pids = [int(p) for p in pid_text]
        before = leftovers(netns=[netns], interfaces=[interface], pids=pids, state_dir=tmp_path)
        assert len(before) >= 5, f"the crashed run should have left its sandbox running: {before}"

        removed = sandbox_module.cleanup_stale()

        assert netns in removed and alive.netns not in removed
        deadline = time.monotonic() + 10  # SIGKILLed processes finish exiting asynchronously
        while (left := leftovers(netns=[netns], interfaces=[interface], pids=pids, state_dir=tmp_path)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.01)
        assert left == []
        assert alive.running and os.path.exists(f"/run/netns/{alive.netns}")
    finally:
        sandboxes.destroy(alive)
