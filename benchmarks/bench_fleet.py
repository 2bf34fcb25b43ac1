"""Benchmark: fleets of 1, 10 and 50 Linux VMs in one subscription under Compute's documented throttling.

Runs the operator as its own `vmgen run` process against the local testbed (real kube-apiserver, the
ARM simulator with its token buckets ON at the documented limits, Debian guests running real sshd and
waagent) and prints, per fleet size: apply-to-Ready, ARM reads and writes per job (and the minimum a job
needs), 429s received, the operator's peak RSS and its marginal memory per job in flight.
Usage (as root, after `make testbed`):
    .venv/bin/python benchmarks/bench_fleet.py [--fleets 1,10,50] [--time-scale 1]
`--time-scale` is the simulator's: 1 runs the buckets in real time (a VM's UpdateVM bucket refills 4
tokens a minute), 60 makes a documented minute pass in a second.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from fleet_common import (
    operator_for,
    proc_kib,
    run_linux_fleet,
)  # benchmarks/fleet_common.py, next to this script

from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.kube import ControlPlane
from vmgen_testbed.linux.rootfs import ensure_rootfs
from vmgen_testbed.linux.sandbox import SandboxHost
from vmgen_testbed.operator_process import OperatorProcess

SUBSCRIPTION = "6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
GROUP = "rg-fleet"
NAMESPACE = "fleet"
MINIMUM_READS = 4
"""A fresh GET (with instance view) before each action that acts on what Azure shows: validate,
deprovision, deallocate, generalize (the contract: re-read the VM before acting)."""
MINIMUM_WRITES = 3
"""The look through Run Command before deprovision, deallocate, generalize."""
MINIMUM_POLLS = 2
"""At least one poll of each long-running operation: Run Command and deallocate."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fleets", default="1,10,50")
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args()
    fleets = [int(n) for n in args.fleets.split(",")]
    ensure_rootfs()
    with tempfile.TemporaryDirectory(prefix="vmgen-fleet-") as tmp, ControlPlane() as cp:
        state = Path(tmp)
        sim = ArmSimulator(host="127.0.0.1", port=0, state_dir=state)
        sim.start()
        sim.configure_throttling(enabled=True, time_scale=args.time_scale)
        host = SandboxHost(state / "guests")
        operator: OperatorProcess | None = None
        try:
            operator = operator_for(cp, sim, state, namespace=NAMESPACE, poll_interval=0.5)
            operator.start()
            operator.wait_ready()
            print(
                f"throttling ON at the documented limits, time scale {args.time_scale:g};"
                f" minimum per job: {MINIMUM_READS} reads + {MINIMUM_WRITES} writes"
                f" + {MINIMUM_POLLS} operation polls"
            )
            print(
                "fleet  apply-to-Ready(all/median)  reads/job  writes/job  polls/job  429s  peak RSS  per job"
            )
            for count in fleets:
                before = proc_kib(operator.pid, "VmRSS")
                sim.clear_requests()
                result = run_fleet(cp, sim, host, operator, prefix=f"f{count}", count=count)
                arm = [r for r in sim.requests() if r.api == "arm"]
                mine = [r for r in arm if any(f"/virtualMachines/{n}" in r.path for n in result["names"])]
                reads = [r for r in mine if r.method == "GET"]
                writes = [r for r in mine if r.method != "GET"]
                polls = [r for r in arm if "/operations/" in r.path]
                throttled = [r for r in arm if r.status == 429]
                peak = proc_kib(operator.pid, "VmHWM")
                marginal = max(0, peak - before) / count / 1024
                print(
                    f"{count:5d}  {result['all']:8.2f} s / {statistics.median(result['each']):6.2f} s"
                    f"  {len(reads) / count:9.1f}  {len(writes) / count:10.1f}  {len(polls) / count:9.1f}"
                    f"  {len(throttled):4d}  {peak / 1024:5.0f} MiB  {marginal:5.2f} MiB"
                )
                host_teardown(host, result["sandboxes"])
        finally:
            if operator is not None:
                operator.stop()
            host.close()
            sim.stop()


def host_teardown(host: Any, sandboxes: list[Any]) -> None:
    for sandbox in sandboxes:
        host.destroy(sandbox)


def run_fleet(cp: Any, sim: Any, host: Any, operator: Any, *, prefix: str, count: int) -> dict[str, Any]:
    names = [f"{prefix}-{i:02d}" for i in range(count)]
    result = run_linux_fleet(
        cp, sim, host, operator, names=names, namespace=NAMESPACE, subscription=SUBSCRIPTION, group=GROUP,
        timeout=600,
    )  # fmt: skip
    return {**result, "each": list(result["ready"].values())}


if __name__ == "__main__":
    main()
