"""Benchmark: apply-to-Ready for one Windows VM per transport (WinRM, RunCommand), and ARM requests per VM.

Runs the operator as its own `vmgen run` process (the chart's ServiceAccount) against the local testbed:
a real kube-apiserver, the ARM simulator, and modelled Windows machines behind real WinRM endpoints
(sysprep takes `--sysprep-seconds`, 0.3 s by default, as in the e2e suite). Prints numbers.
Usage (as root, after `make testbed`): .venv/bin/python benchmarks/bench_windows.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import trustme
from fleet_common import operator_for  # benchmarks/fleet_common.py, next to this script
from kubernetes import client, config

from vmgen_testbed.arm.server import ArmSimulator
from vmgen_testbed.kube import ControlPlane
from vmgen_testbed.operator_process import OperatorProcess
from vmgen_testbed.windows_fixtures import seed_windows_guest, start_windows_guest

SUBSCRIPTION = "6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e"
GROUP = "rg-bench-windows"
NAMESPACE = "bench"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sysprep-seconds", type=float, default=0.3)
    args = parser.parse_args()
    ca = trustme.CA()
    with tempfile.TemporaryDirectory(prefix="vmgen-bench-win-") as tmp, ControlPlane() as cp:
        state = Path(tmp)
        ca_path = state / "winrm-ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        sim = ArmSimulator(host="127.0.0.1", port=0, state_dir=state)
        sim.start()
        guests: list[Any] = []
        operator: OperatorProcess | None = None
        try:
            operator = operator_for(cp, sim, state, namespace=NAMESPACE, poll_interval=0.05)
            cp.kubectl(
                "-n", NAMESPACE, "create", "secret", "generic", "winrm-ca", f"--from-file=ca.crt={ca_path}"
            )
            operator.start()
            operator.wait_ready()
            api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cp.kubeconfig)))
            run(cp, sim, api, operator, guests, ca, state, "warm-up", "WinRM", args.sysprep_seconds)
            for transport in ("WinRM", "RunCommand"):
                name = f"w-{transport.lower()}"
                seconds = run(
                    cp, sim, api, operator, guests, ca, state, name, transport, args.sysprep_seconds
                )
                requests = len([r for r in sim.requests() if f"/virtualMachines/{name}" in r.path])
                print(
                    f"apply-to-Ready, 1 Windows VM, {transport + ':':11} {seconds:.2f} s "
                    f"(sysprep {args.sysprep_seconds:g} s; {requests} ARM requests on the VM)"
                )
        finally:
            if operator is not None:
                operator.stop()
            for guest in guests:
                guest.endpoint.stop()
            sim.stop()


def run(
    cp: Any,
    sim: Any,
    api: Any,
    operator: Any,
    guests: list[Any],
    ca: trustme.CA,
    state: Path,
    name: str,
    transport: str,
    sysprep_seconds: float,
) -> float:
    guest, password = start_windows_guest(
        name=name, ca=ca, state_dir=state / name, sysprep_seconds=sysprep_seconds
    )
    guests.append(guest)
    seed_windows_guest(sim, guest, subscription_id=SUBSCRIPTION, resource_group=GROUP)
    spec: dict[str, Any] = {
        "vm": {"subscriptionId": SUBSCRIPTION, "resourceGroup": GROUP, "name": name},
        "osType": "Windows",
        "azure": {"credentialsSecretRef": {"name": "azure-sp"}},
        "windows": {"transport": transport},
    }
    if transport == "WinRM":
        cp.kubectl(
            "-n",
            NAMESPACE,
            "create",
            "secret",
            "generic",
            f"{name}-admin",
            "--type=kubernetes.io/basic-auth",
            "--from-literal=username=azureuser",
            f"--from-literal=password={password}",
        )
        spec["winrm"] = {
            "host": guest.endpoint.host,
            "port": guest.endpoint.https_port,
            "credentialsSecretRef": {"name": f"{name}-admin"},
            "caSecretRef": {"name": "winrm-ca"},
        }
    doc = {
        "apiVersion": "vmgen.io/v1alpha1",
        "kind": "VMGeneralization",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }
    group = ("vmgen.io", "v1alpha1", NAMESPACE, "vmgeneralizations")
    start = time.monotonic()
    api.create_namespaced_custom_object(*group, doc)
    deadline = start + 120
    while time.monotonic() < deadline:
        status = api.get_namespaced_custom_object(*group, name).get("status", {})
        if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])):
            return time.monotonic() - start
        if status.get("phase") == "Failed":
            raise SystemExit(f"{name} failed: {status}")
        time.sleep(0.02)
    raise SystemExit(f"{name} not Ready after 120 s; operator log: {operator.logs()[-2000:]}")


if __name__ == "__main__":
    main()
