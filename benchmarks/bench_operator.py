"""Benchmark: apply-to-Ready for 1 VM and for 20 VMs at once, ARM requests per VM, operator peak memory.

Runs the operator as its own `vmgen run` process against the local testbed (real kube-apiserver, ARM
simulator with no injected latency, Debian guests running real sshd + waagent) and prints numbers.
Usage (as root, after `make testbed`): .venv/bin/python benchmarks/bench_operator.py [--vms 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fleet_common import linux_job, operator_for  # benchmarks/fleet_common.py, next to this script
from kubernetes import client, config

from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.kube import ControlPlane
from vmgen_testbed.linux.rootfs import ensure_rootfs
from vmgen_testbed.linux.sandbox import SandboxHost
from vmgen_testbed.operator_process import OperatorProcess

SUBSCRIPTION = "6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
GROUP = "rg-bench"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, default=20)
    args = parser.parse_args()
    ensure_rootfs()
    with tempfile.TemporaryDirectory(prefix="vmgen-bench-") as tmp, ControlPlane() as cp:
        state = Path(tmp)
        sim = ArmSimulator(host="127.0.0.1", port=0, state_dir=state)
        sim.start()
        host = SandboxHost(state / "guests")
        operator: OperatorProcess | None = None
        try:
            operator = operator_for(cp, sim, state, namespace="bench", poll_interval=0.05)
            operator.start()
            print(f"operator start to live:          {operator.wait_ready():.2f} s")
            first = run_batch(cp, sim, host, operator, prefix="first", count=1)
            one = run_batch(cp, sim, host, operator, prefix="one", count=1)
            many = run_batch(cp, sim, host, operator, prefix="many", count=args.vms)
            per_vm = [
                len([r for r in sim.requests() if f"/virtualMachines/{n}" in r.path]) for n in many["names"]
            ]
            print(f"apply-to-Ready, first VM after operator start: {first['all']:.2f} s")
            print(f"apply-to-Ready, 1 VM:            {one['all']:.2f} s (target <= 5 s)")
            print(
                f"apply-to-Ready, {args.vms} VMs at once:  {many['all']:.2f} s for all "
                f"(median per VM {statistics.median(many['each']):.2f} s; target <= 15 s)"
            )
            print(
                f"ARM requests per VM:             median {statistics.median(per_vm):.0f}, "
                f"max {max(per_vm)} (token requests not counted)"
            )
            print(f"operator peak memory (VmHWM):    {peak_rss_mib(operator.pid):.0f} MiB")
        finally:
            if operator is not None:
                operator.stop()
            host.close()
            sim.stop()


def run_batch(cp: Any, sim: Any, host: Any, operator: Any, *, prefix: str, count: int) -> dict[str, Any]:
    names = [f"{prefix}-{i:02d}" for i in range(count)]
    docs = []
    for name in names:
        sb = host.create(name)
        docs.append(
            linux_job(cp, sim, sb, name=name, namespace="bench", subscription=SUBSCRIPTION, group=GROUP)
        )
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cp.kubeconfig)))
    group = ("vmgen.io", "v1alpha1", "bench", "vmgeneralizations")
    start = time.monotonic()
    for doc in docs:  # the API call a `kubectl apply` makes, without kubectl's start-up and discovery
        api.create_namespaced_custom_object(*group, doc)
    ready: dict[str, float] = {}
    deadline = start + 300
    while len(ready) < count and time.monotonic() < deadline:
        for item in api.list_namespaced_custom_object(*group)["items"]:
            name = item["metadata"]["name"]
            status = item.get("status", {})
            if name not in names or name in ready:
                continue
            if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])):
                ready[name] = time.monotonic() - start
            if status.get("phase") == "Failed":
                raise SystemExit(f"{name} failed: {status}")
        time.sleep(0.02)
    if len(ready) < count:
        raise SystemExit(
            f"only {len(ready)}/{count} Ready after 300 s; operator log: {operator.logs()[-2000:]}"
        )
    return {"names": names, "all": max(ready.values()), "each": list(ready.values())}


if __name__ == "__main__":
    main()
