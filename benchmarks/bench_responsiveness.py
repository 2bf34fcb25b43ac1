"""Benchmark: with 500 VMGeneralizations in flight, how soon does a newly applied one get its first status?

Runs the operator as its own `vmgen run` process (the chart's RBAC, the shipped poll interval of 5 s,
throttling ON at the documented limits in real time) against the local testbed. 500 Linux VMs are
seeded without sandboxes: their SSH address is a port that accepts TCP (the operator reaches the guest
before it asks Azure anything) and the simulator's Run Command takes an hour
(`set_latency("runCommand", 3600)`), so every job sits in Deprovisioning, polling its Run Command look
through the shared ARM budget, as a fleet does while Azure runs its commands. Then 20 new
resources are created one after another (the API call `kubectl apply` makes) and the time until each
has `status.phase` is measured by polling it every 10 ms. Prints p50/p99/max and the operator's RSS.
Usage (as root, after `make testbed`):
    .venv/bin/python benchmarks/bench_responsiveness.py [--in-flight 500] [--probes 20]
The issue's target: the first status within 1 s.

Traps avoided:
- The 500 are counted as in flight only once each one's Run Command is running (phase Deprovisioning
  and the simulator has its POST), so the probes meet the full load, not the ramp.
- `MALLOC_ARENA_MAX=2` is set as in the chart and the image (docs/benchmarks.md says why).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fleet_common import operator_for, proc_kib  # benchmarks/fleet_common.py, next to this script
from kubernetes import client, config

from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.guest import ScriptResult
from vmgen_testbed.kube import ControlPlane
from vmgen_testbed.operator_process import OperatorProcess

SUBSCRIPTION = "7c2a3b4d-5e6f-4a7b-9c8d-0e1f2a3b4c5d"
GROUP = "rg-busy"
NAMESPACE = "busy"
GROUP_API = ("vmgen.io", "v1alpha1", NAMESPACE, "vmgeneralizations")
POLL_INTERVAL = 5.0
"""The operator's shipped default (config.DEFAULT_POLL_INTERVAL)."""


class SilentGuest:
    """A guest that is never reached: its Run Command outlasts the benchmark, and nothing listens on SSH."""

    async def power_on(self) -> None:
        return None

    async def power_off(self) -> None:
        return None

    async def run_script(self, script: str, *, shell: str, timeout: float) -> ScriptResult:  # noqa: ASYNC109
        await asyncio.Event().wait()
        raise AssertionError("never reached")


def accepting_port() -> int:
    """A port that accepts TCP and hangs up: what `reach` (DNS + TCP) needs; no SSH is ever spoken."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)

    def serve() -> None:
        while True:
            connection, _ = listener.accept()
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    port: int = listener.getsockname()[1]
    return port


def document(name: str, *, public_key: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "vmgen.io/v1alpha1",
        "kind": "VMGeneralization",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "vm": {"subscriptionId": SUBSCRIPTION, "resourceGroup": GROUP, "name": name},
            "osType": "Linux",
            "azure": {"credentialsSecretRef": {"name": "azure-sp"}},
            "ssh": {
                "host": "127.0.0.1",
                "port": port,
                "username": "azureuser",
                "privateKeySecretRef": {"name": "ssh"},
                "hostKeys": [public_key],
            },
        },
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--probes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmgen-busy-") as tmp, ControlPlane() as cp:
        state = Path(tmp)
        sim = ArmSimulator(host="127.0.0.1", port=0, state_dir=state)
        sim.start()
        sim.configure_throttling(enabled=True, time_scale=1.0)
        sim.set_latency("runCommand", 3600)
        operator: OperatorProcess | None = None
        try:
            port = accepting_port()
            key = state / "id_ed25519"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
            public_key = " ".join(key.with_suffix(".pub").read_text().split()[:2])
            operator = operator_for(
                cp,
                sim,
                state,
                namespace=NAMESPACE,
                poll_interval=POLL_INTERVAL,
                extra_env={"MALLOC_ARENA_MAX": "2"},
            )
            cp.kubectl(
                "-n", NAMESPACE, "create", "secret", "generic", "ssh", "--type=kubernetes.io/ssh-auth",
                f"--from-file=ssh-privatekey={key}",
            )  # fmt: skip
            names = [f"busy-{i:03d}" for i in range(args.in_flight)]
            probes = [f"new-{i:02d}" for i in range(args.probes)]
            for name in names + probes:
                sim.seed_vm(
                    subscription_id=SUBSCRIPTION, resource_group=GROUP, name=name, guest=SilentGuest()
                )
            operator.start()
            operator.wait_ready()
            started = proc_kib(operator.pid, "VmRSS")
            api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cp.kubeconfig)))
            docs = {name: document(name, public_key=public_key, port=port) for name in names + probes}
            begin = time.monotonic()
            for name in names:
                api.create_namespaced_custom_object(*GROUP_API, docs[name])
            ramp = wait_in_flight(api, sim, set(names), operator)
            before = proc_kib(operator.pid, "VmRSS")
            print(
                f"{len(names)} jobs in flight (Run Command running for each) {ramp - begin:.1f} s after the"
                f" first create; operator RSS {before / 1024:.0f} MiB (after start {started / 1024:.0f} MiB)"
            )
            firsts = [first_status(api, name, docs[name]) for name in probes]
            throttled = sum(1 for r in sim.requests() if r.status == 429)
            p50, p99 = statistics.median(firsts), percentile(firsts, 0.99)
            print(f"time to first status over {len(firsts)} new resources:", end="")
            print(f" p50 {p50:.3f} s, p99 {p99:.3f} s, max {max(firsts):.3f} s (target <= 1 s)")
            after = proc_kib(operator.pid, "VmRSS")
            peak = proc_kib(operator.pid, "VmHWM")
            print(
                f"operator RSS {after / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB; marginal"
                f" {(before - started) / len(names):.0f} KiB per job in flight; 429s received: {throttled}"
            )
        finally:
            if operator is not None:
                operator.stop()
            sim.stop()


def wait_in_flight(api: Any, sim: Any, names: set[str], operator: Any) -> float:
    """Until every job's Run Command look is running; returns the monotonic time it was so."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        posted = {
            r.path.split("/virtualMachines/")[1].split("/")[0]
            for r in sim.requests()
            if r.method == "POST" and r.path.endswith("/runCommand")
        }
        if names <= posted:
            return time.monotonic()
        time.sleep(1.0)
    raise SystemExit(f"the jobs never all ran their Run Command; log: {operator.logs()[-3000:]}")


def first_status(api: Any, name: str, doc: dict[str, Any]) -> float:
    start = time.monotonic()
    api.create_namespaced_custom_object(*GROUP_API, doc)
    while time.monotonic() - start < 60:
        body = api.get_namespaced_custom_object(*GROUP_API, name)
        if body.get("status", {}).get("phase"):
            return time.monotonic() - start
        time.sleep(0.01)
    raise SystemExit(f"{name} got no status within 60 s")


if __name__ == "__main__":
    main()
