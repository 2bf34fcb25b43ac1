"""`make demo-windows`: two Windows VMs generalized on the local testbed, one per transport.

Starts `python -m vmgen_testbed up --windows-vms 2` (control plane, ARM simulator, two modelled Windows
machines behind real WinRM endpoints), installs the CRD and the chart's ServiceAccount and RBAC, starts
`vmgen run` as its own process with exactly those rights, then applies examples/windows-winrm.yaml to the
first VM and examples/windows-runcommand.yaml to the second, with the testbed's values, printing phase
and steps until each is Ready, then each VM's final state in Azure and the Events. Secrets are created
from files and never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from vmgen_testbed.demo import (
    NAMESPACE,
    control_get,
    follow,
    install_crd,
    kubectl_path,
    kubectl_runner,
    log,
    testbed_up,
)
from vmgen_testbed.helm import operator_kubeconfig
from vmgen_testbed.operator_process import OperatorProcess
from vmgen_testbed.paths import REPO_ROOT

EXAMPLES = (("WinRM", "windows-winrm.yaml"), ("RunCommand", "windows-runcommand.yaml"))


def render_manifest(example: str, vm: dict[str, Any]) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((REPO_ROOT / "examples" / example).read_text()) if d]
    manifest: dict[str, Any] = next(d for d in docs if d.get("kind") == "VMGeneralization")
    manifest["metadata"]["namespace"] = NAMESPACE
    spec = manifest["spec"]
    spec["vm"] = {
        "subscriptionId": vm["subscriptionId"],
        "resourceGroup": vm["resourceGroup"],
        "name": vm["name"],
    }
    spec["azure"] = {"credentialsSecretRef": {"name": "azure-sp"}}
    if "winrm" in spec:
        spec["winrm"].update({"host": vm["winrm"]["host"], "port": vm["winrm"]["port"]})
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each Ready")
    args = parser.parse_args()
    what = "kube-apiserver + etcd, ARM simulator, two modelled Windows guests"
    up = ["--linux-vms", "0", "--windows-vms", "2"]
    with testbed_up(up, what=what, prefix="vmgen-demo-windows-") as (state, testbed):
        return _demo(state, testbed, args.timeout)


def _demo(state: Path, testbed: dict[str, Any], timeout: float) -> int:
    kubeconfig = testbed["kubeconfig"]
    arm = testbed["arm"]
    vms = [vm for vm in testbed["vms"] if vm["osType"] == "Windows"]

    kubectl = kubectl_runner(kubeconfig)
    install_crd(kubeconfig)
    kubectl("create", "namespace", NAMESPACE)
    kubectl("create", "namespace", "vmgen-system")
    sp_file = state / "azure-sp.env"
    sp_file.write_text(
        f"AZURE_TENANT_ID={arm['tenantId']}\nAZURE_CLIENT_ID={arm['clientId']}\n"
        f"AZURE_CLIENT_SECRET={arm['clientSecret']}\n"
    )
    kubectl("-n", NAMESPACE, "create", "secret", "generic", "azure-sp", f"--from-env-file={sp_file}")
    winrm = vms[0]["winrm"]
    admin_file = state / "admin.env"
    admin_file.write_text(f"username={winrm['username']}\npassword={winrm['password']}\n")
    kubectl(
        "-n",
        NAMESPACE,
        "create",
        "secret",
        "generic",
        "web-02-admin",
        "--type=kubernetes.io/basic-auth",
        f"--from-env-file={admin_file}",
    )
    kubectl(
        "-n", NAMESPACE, "create", "secret", "generic", "web-02-ca", f"--from-file=ca.crt={winrm['caBundle']}"
    )
    log("CRD installed; secrets azure-sp, web-02-admin (WinRM basic-auth) and web-02-ca (CA) created")
    account = operator_kubeconfig(
        kubectl=kubectl_path(), kubeconfig=Path(kubeconfig), namespace="vmgen-system", out=state / "sa"
    )
    operator = OperatorProcess(
        kubeconfig=str(account),
        arm_endpoint=arm["baseUrl"],
        ca_bundle=arm["caBundle"],
        authority=arm["authority"],
        log_path=state / "operator.log",
        operator_namespace="vmgen-system",
        poll_interval=0.2,
    )
    operator.start()
    names = []
    try:
        operator.wait_ready()
        for (transport, example), vm in zip(EXAMPLES, vms, strict=False):
            manifest = render_manifest(example, vm)
            name = manifest["metadata"]["name"]
            names.append(name)
            log(f"applying examples/{example} to {vm['name']} (sysprep through {transport})")
            ready: list[bool] = []
            watcher = threading.Thread(
                target=lambda n=name, found=ready: found.append(follow(kubeconfig, timeout, n)), daemon=True
            )
            watcher.start()
            time.sleep(0.5)
            applied = time.monotonic()
            kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest))
            watcher.join(timeout + 5)
            if ready != [True]:
                log(f"{name} not Ready within {timeout:.0f}s; operator log tail:\n{operator.logs()[-4000:]}")
                return 1
            log(f"{name} Ready {time.monotonic() - applied:.1f}s after apply")
    finally:
        operator.stop()

    for name, vm in zip(names, vms, strict=False):
        body = json.loads(kubectl("-n", NAMESPACE, "get", "vmgen", name, "-o", "json"))
        print(f"\n{name}: deprovision step: {body['status']['steps']['deprovision']['message']}")
        print(f"The VM {vm['name']} in Azure now:")
        print(json.dumps(control_get(arm, vm), indent=2))
    print("\nkubectl get vmgen:")
    print(kubectl("-n", NAMESPACE, "get", "vmgen"))
    print("Events, in the order the operator posted them:")
    events = json.loads(kubectl("-n", NAMESPACE, "get", "events", "-o", "json"))["items"]
    for event in sorted(events, key=lambda e: int(e["metadata"]["resourceVersion"])):
        print(f"  {event['type']:<8} {event['reason']:<22} {event['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
