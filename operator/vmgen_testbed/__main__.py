"""`python -m vmgen_testbed up --state-dir DIR [--linux-vms N] [--windows-vms N]`: the local world.

Starts the Kubernetes control plane, the ARM simulator and N Debian guests (seeded into the simulator as
running Linux VMs), then writes `DIR/testbed.json` describing how to reach all of it, and serves until
SIGTERM or SIGINT. Traps avoided:
- A reader must never see a half-written or premature `testbed.json`: it is written atomically, last,
  once everything answers, and removed on teardown (its paths die with the servers).
- A signal must not cut teardown short, nor interrupt start-up half way (a process started but not yet
  registered for cleanup would leak): the handlers only set a flag; start-up finishes, and teardown runs
  in order. The long one-time builds (binaries, rootfs) happen before the handlers are installed, so
  Ctrl-C stops them at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import trustme

from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.binaries import ensure_binaries
from vmgen_testbed.kube import ControlPlane
from vmgen_testbed.linux.rootfs import ensure_rootfs
from vmgen_testbed.linux.sandbox import SandboxHost
from vmgen_testbed.windows.guest import WindowsGuest
from vmgen_testbed.windows_fixtures import seed_windows_guest, start_windows_guest, windows_guest_factory

SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000a2e1"
RESOURCE_GROUP = "rg-vmgen-testbed"


def up(state_dir: Path, *, linux_vms: int, windows_vms: int = 0) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir = state_dir.resolve()
    descriptor = state_dir / "testbed.json"
    descriptor.unlink(missing_ok=True)
    binaries = ensure_binaries()
    if linux_vms:
        ensure_rootfs()

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    with ExitStack() as stack:
        stack.callback(descriptor.unlink, missing_ok=True)
        plane = stack.enter_context(ControlPlane(binaries=binaries, parent_dir=state_dir))
        _say(f"control plane ready in {plane.startup_seconds:.1f} s at {plane.server}")
        sim = ArmSimulator(host="127.0.0.1", port=0, state_dir=state_dir / "arm")
        sim.start()
        stack.callback(sim.stop)
        _say(f"ARM simulator at {sim.base_url}")
        vms: list[dict[str, Any]] = []
        if linux_vms:
            host = SandboxHost(state_dir / "linux")
            sim.set_guest_factory(host.guest_factory())  # copies of VMs boot sandboxes of their own
            stack.callback(host.close)
            for number in range(1, linux_vms + 1):
                sandbox = host.create(f"vm-linux-{number:02d}", username="azureuser")
                sim.seed_vm(
                    subscription_id=SUBSCRIPTION_ID,
                    resource_group=RESOURCE_GROUP,
                    name=sandbox.name,
                    os_type="Linux",
                    guest=sandbox,
                )
                vms.append(
                    {
                        "subscriptionId": SUBSCRIPTION_ID,
                        "resourceGroup": RESOURCE_GROUP,
                        "name": sandbox.name,
                        "osType": "Linux",
                        "host": sandbox.ip,
                        "port": sandbox.port,
                        "username": sandbox.username,
                        "privateKeyPath": str(sandbox.private_key_path),
                        "hostKeys": list(sandbox.host_keys),
                        "rootfs": str(sandbox.rootfs),
                    }
                )
                _say(f"{sandbox.name} at {sandbox.ip}:{sandbox.port}")
        vms.extend(start_windows_vms(stack, sim, state_dir, windows_vms))
        if stop.is_set():
            return
        _write_atomically(
            descriptor,
            {
                "kubeconfig": str(plane.kubeconfig),
                "arm": {
                    "baseUrl": sim.base_url,
                    "caBundle": str(sim.ca_bundle),
                    "authority": sim.authority,
                    "tenantId": sim.tenant_id,
                    "clientId": sim.client_id,
                    "clientSecret": sim.client_secret,
                    "control": sim.control_url,
                },
                "vms": vms,
            },
        )
        _say(f"testbed ready: {descriptor}")
        stop.wait()
        _say("stopping the testbed")
    _say("testbed stopped")


def start_windows_vms(
    stack: ExitStack, sim: ArmSimulator, state_dir: Path, count: int
) -> list[dict[str, Any]]:
    """Modelled Windows machines behind real WinRM endpoints, seeded as running Windows VMs."""
    if not count:
        return []
    ca = trustme.CA()
    ca_path = state_dir / "winrm-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    copies: dict[str, WindowsGuest] = {}  # copies of these VMs boot machines of their own
    sim.set_guest_factory(
        windows_guest_factory(
            sim, ca=ca, state_dir=lambda: state_dir / "windows", booted=copies, otherwise=sim.guest_factory
        )
    )

    def stop_copies() -> None:
        for copy in copies.values():
            copy.endpoint.stop()

    stack.callback(stop_copies)
    described = []
    for number in range(1, count + 1):
        guest, password = start_windows_guest(
            name=f"vm-windows-{number:02d}", ca=ca, state_dir=state_dir / "windows", sysprep_seconds=5.0
        )
        stack.callback(guest.endpoint.stop)
        seed_windows_guest(sim, guest, subscription_id=SUBSCRIPTION_ID, resource_group=RESOURCE_GROUP)
        described.append(
            {
                "subscriptionId": SUBSCRIPTION_ID,
                "resourceGroup": RESOURCE_GROUP,
                "name": guest.machine.name,
                "osType": "Windows",
                "winrm": {
                    "host": guest.endpoint.host,
                    "port": guest.endpoint.https_port,
                    "httpPort": guest.endpoint.http_port,
                    "caBundle": str(ca_path),
                    "username": guest.endpoint.username,
                    "password": password,
                },
            }
        )
        _say(f"{guest.machine.name} WinRM at https://{guest.endpoint.host}:{guest.endpoint.https_port}/wsman")
    return described


def wait_until_up(testbed_json: Path, process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Wait for a `python -m vmgen_testbed up` process to write its testbed.json (written only once
    everything is ready); fail at once if the process exits first."""
    deadline = time.monotonic() + timeout
    while not testbed_json.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the testbed exited with status {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the testbed did not write {testbed_json} within {timeout:.0f} s")
        time.sleep(0.05)


def _write_atomically(path: Path, document: dict[str, Any]) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(document, indent=2) + "\n")
    staging.chmod(0o600)  # it carries the (test) client secret
    os.replace(staging, path)


def _say(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vmgen_testbed", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the testbed and serve until SIGTERM/SIGINT")
    start.add_argument("--state-dir", type=Path, required=True, help="where testbed.json and all state go")
    start.add_argument("--linux-vms", type=int, default=1, help="Linux guests to start (default 1)")
    start.add_argument("--windows-vms", type=int, default=0, help="Windows guests to start (default 0)")
    args = parser.parse_args(argv)
    up(args.state_dir, linux_vms=args.linux_vms, windows_vms=args.windows_vms)


if __name__ == "__main__":
    main()
