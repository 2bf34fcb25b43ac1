"""Benchmark: apply-to-Ready against the critical path, for fleets of 1, 50 and 200 Linux VMs.

Runs the operator as its own `vmgen run` process against the local testbed (real kube-apiserver, the
ARM simulator with its token buckets ON at the documented limits in real time, one Debian sandbox per
VM running real sshd and waagent) with Azure-like latencies injected in the simulator, and prints per
fleet: apply-to-Ready (all / median), the critical path, their ratio (median and max), ARM reads and
writes per job against the minimum, 429s, peak RSS, marginal memory and CPU seconds per job.

The critical path of one VM is what no operator can avoid: the Run Command look, the guest's own
`waagent -force -deprovision+user` (timed inside the guest: a wrapper in the sandbox's /usr/local/sbin,
first on sudo's secure_path, notes the start and end around the real /usr/sbin/waagent), deallocate and
generalize. Latencies are Azure's typical ones at a time scale of 1/4 (`--latency-scale`): Run Command
30 s -> 7.5 s, deallocate 60 s -> 15 s, generalize 4 s -> 1 s.
Usage (as root, after `make testbed`):
    .venv/bin/python benchmarks/bench_critical_path.py [--fleets 1,50,200] [--poll-interval 5]

Traps avoided:
- Apply-to-Ready is timed from each resource's own create call (the creates of 200 take seconds).
- The guest's deprovision time is measured per VM, under the same CPU contention as the fleet, so the
  ratio charges the operator only for its own waiting, not for the guests' shared cores.
"""

from __future__ import annotations

import argparse
import os
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

SUBSCRIPTION = "8d3b4c5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
GROUP = "rg-critical"
NAMESPACE = "critical"
AZURE_SECONDS = {"runCommand": 30.0, "deallocate": 60.0, "generalize": 4.0}
"""Typical Azure latencies: RunShellScript about 30 s end to end, deallocate about a minute, generalize
a few seconds (observed ranges on Azure: 20-60 s, 30-90 s, 1-5 s)."""
MINIMUM_READS = 4
"""A fresh GET before each action that depends on what Azure shows: validate, deprovision, deallocate,
generalize (the contract re-reads the VM before acting)."""
MINIMUM_WRITES = 3
"""The Run Command look, deallocate, generalize."""
WRAPPER = """#!/bin/sh
# vmgen benchmark: time the real waagent inside the guest (docs/benchmarks.md, critical path)
start=$(date +%s.%N)
/usr/sbin/waagent "$@"
rc=$?
echo "$start $(date +%s.%N) $*" >>/var/tmp/vmgen-bench-waagent
exit $rc
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fleets", default="1,50,200")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="the operator's (shipped: 5)")
    parser.add_argument("--latency-scale", type=float, default=0.25)
    args = parser.parse_args()
    fleets = [int(n) for n in args.fleets.split(",")]
    latencies = {op: seconds * args.latency_scale for op, seconds in AZURE_SECONDS.items()}
    ensure_rootfs()
    with tempfile.TemporaryDirectory(prefix="vmgen-critical-") as tmp, ControlPlane() as cp:
        state = Path(tmp)
        sim = ArmSimulator(host="127.0.0.1", port=0, state_dir=state)
        sim.start()
        sim.configure_throttling(enabled=True, time_scale=1.0)
        for operation, seconds in latencies.items():
            sim.set_latency(operation, seconds)
        host = SandboxHost(state / "guests")
        operator: OperatorProcess | None = None
        try:
            operator = operator_for(
                cp,
                sim,
                state,
                namespace=NAMESPACE,
                poll_interval=args.poll_interval,
                extra_env={"MALLOC_ARENA_MAX": "2"},
            )
            operator.start()
            operator.wait_ready()
            fixed = sum(latencies.values())
            print(
                f"throttling ON at the documented limits (real time); latencies at {args.latency_scale:g} x"
                f" Azure's: Run Command {latencies['runCommand']:g} s,"
                f" deallocate {latencies['deallocate']:g} s,"
                f" generalize {latencies['generalize']:g} s; poll interval {args.poll_interval:g} s;"
                f" minimum per job {MINIMUM_READS} reads + {MINIMUM_WRITES} writes"
            )
            print(
                "fleet  apply-to-Ready(all/median)  critical path(median)  ratio(median/max)"
                "  reads/job  writes/job  429s  peak RSS  per job   CPU/job"
            )
            for index, count in enumerate(fleets):
                before = proc_kib(operator.pid, "VmRSS")
                cpu_before = cpu_seconds(operator.pid)
                sim.clear_requests()
                result = run_fleet(cp, sim, host, operator, prefix=f"c{count}-{index}", count=count)
                cpu = (cpu_seconds(operator.pid) - cpu_before) / count
                arm = [r for r in sim.requests() if r.api == "arm"]
                mine = [r for r in arm if any(f"/virtualMachines/{n}" in r.path for n in result["names"])]
                reads = sum(1 for r in mine if r.method == "GET") / count
                writes = sum(1 for r in mine if r.method != "GET") / count
                throttled = sum(1 for r in arm if r.status == 429)
                peak = proc_kib(operator.pid, "VmHWM")
                marginal = max(0, peak - before) / count / 1024
                paths = {n: fixed + result["guest"][n] for n in result["names"]}
                ratios = [result["ready"][n] / paths[n] for n in result["names"]]
                median_ready = statistics.median(result["ready"].values())
                print(
                    f"{count:5d}  {result['all']:8.2f} s / {median_ready:6.2f} s"
                    f"  {statistics.median(paths.values()):13.2f} s"
                    f"  {statistics.median(ratios):10.3f} / {max(ratios):5.3f}"
                    f"  {reads:9.1f}  {writes:10.1f}  {throttled:4d}  {peak / 1024:5.0f} MiB"
                    f"  {marginal:5.2f} MiB  {cpu:5.2f} s"
                )
                for sandbox in result["sandboxes"]:
                    host.destroy(sandbox)
        finally:
            if operator is not None:
                operator.stop()
            host.close()
            sim.stop()


def guest_deprovision_seconds(sandbox: Any) -> float:
    """The real waagent's own run inside the guest (the wrapper's note of start and end)."""
    notes = (Path(sandbox.rootfs) / "var/tmp/vmgen-bench-waagent").read_text().splitlines()
    runs = [line.split() for line in notes if "-deprovision" in line]
    if len(runs) != 1:
        raise SystemExit(f"{sandbox.name}: expected one deprovision, found {notes}")
    return float(runs[0][1]) - float(runs[0][0])


def run_fleet(cp: Any, sim: Any, host: Any, operator: Any, *, prefix: str, count: int) -> dict[str, Any]:
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    result = run_linux_fleet(
        cp, sim, host, operator, names=names, namespace=NAMESPACE, subscription=SUBSCRIPTION, group=GROUP,
        timeout=1800, prepare=timed_waagent,
    )  # fmt: skip
    return {**result, "guest": {sb.name: guest_deprovision_seconds(sb) for sb in result["sandboxes"]}}


def timed_waagent(sandbox: Any) -> None:
    """The wrapper that times the real waagent inside the guest (WRAPPER)."""
    wrapper = Path(sandbox.rootfs) / "usr/local/sbin/waagent"
    wrapper.write_text(WRAPPER)
    wrapper.chmod(0o755)


if __name__ == "__main__":
    main()
