"""`make demo`: the whole job on the local testbed, the way a user would run it.

It starts `python -m vmgen_testbed up` (control plane, ARM simulator, one Linux guest), installs the CRD
and the chart's ServiceAccount and RBAC, starts `vmgen run` as its own process with exactly those
rights, applies examples/linux.yaml with the testbed's values, prints the phase and steps as they change
until Ready, then shows what deprovision removed from the guest and the VM's final state in Azure, and
tears everything down. Secrets are created from files and never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from vmgen_testbed.__main__ import wait_until_up
from vmgen_testbed.binaries import ensure_binaries
from vmgen_testbed.helm import operator_kubeconfig
from vmgen_testbed.operator_process import OperatorProcess
from vmgen_testbed.paths import REPO_ROOT

NAMESPACE = "images"
NAME = "web-golden"


def log(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def guest_inventory(rootfs: Path, username: str) -> dict[str, bool]:
    """What Azure's deprovision is documented to remove, as present (True) or absent (False)."""
    passwd = (rootfs / "etc/passwd").read_text()
    waagent = rootfs / "var/lib/waagent"
    return {
        f"user {username} in /etc/passwd": f"\n{username}:" in f"\n{passwd}",
        f"home directory /home/{username}": (rootfs / "home" / username).exists(),
        "SSH host keys /etc/ssh/ssh_host_*": any((rootfs / "etc/ssh").glob("ssh_host_*")),
        "agent state /var/lib/waagent/*": waagent.exists() and any(waagent.iterdir()),
        "DNS config /etc/resolv.conf": (rootfs / "etc/resolv.conf").exists(),
        "DHCP leases /var/lib/dhcp/*": any((rootfs / "var/lib/dhcp").glob("*leases*")),
        "root's bash history": (rootfs / "root/.bash_history").exists(),
    }


def render_manifest(testbed: dict[str, Any]) -> dict[str, Any]:
    vm = testbed["vms"][0]
    docs = [d for d in yaml.safe_load_all((REPO_ROOT / "examples/linux.yaml").read_text()) if d]
    manifest: dict[str, Any] = next(d for d in docs if d.get("kind") == "VMGeneralization")
    manifest["metadata"] = {"name": NAME, "namespace": NAMESPACE}
    spec = manifest["spec"]
    spec["vm"] = {
        "subscriptionId": vm["subscriptionId"],
        "resourceGroup": vm["resourceGroup"],
        "name": vm["name"],
    }
    spec["ssh"].update(
        {
            "host": vm["host"],
            "port": vm["port"],
            "username": vm["username"],
            "privateKeySecretRef": {"name": "web-01-ssh"},
            "hostKeys": vm["hostKeys"],
        }
    )
    spec.setdefault("azure", {})["credentialsSecretRef"] = {"name": "azure-sp"}
    return manifest


@contextlib.contextmanager
def testbed_up(up_args: list[str], *, what: str, prefix: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """`python -m vmgen_testbed up` in a temporary state dir (shared by `make demo` and `make demo-windows`):
    yields the state dir and testbed.json once it is up, and tears it down (SIGTERM, then kill) after."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        state = Path(tmp)
        log(f"starting the testbed: {what} ...")
        testbed_proc = subprocess.Popen(
            [sys.executable, "-m", "vmgen_testbed", "up", "--state-dir", str(state), *up_args],
            stdout=(state / "testbed.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_until_up(state / "testbed.json", testbed_proc, timeout=300)
            except (RuntimeError, TimeoutError) as exc:
                tail = (state / "testbed.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"{exc}; the end of its log:\n{tail}") from None
            yield state, json.loads((state / "testbed.json").read_text())
        finally:
            testbed_proc.send_signal(signal.SIGTERM)
            try:
                testbed_proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                testbed_proc.kill()
            log("testbed torn down")


def kubectl_runner(kubeconfig: str) -> Callable[..., str]:
    """kubectl against the testbed; a failure ends the demo with kubectl's own message."""

    def kubectl(*args: str, input_text: str | None = None) -> str:
        result = subprocess.run(
            [str(kubectl_path()), "--kubeconfig", kubeconfig, *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    return kubectl


def install_crd(kubeconfig: str) -> None:
    """Apply the CRD and wait until it is Established. Right after the apply kubectl may fail at once
    ("status.conditions accessor error") instead of waiting, so the wait is asked again until a deadline."""
    kubectl_runner(kubeconfig)("apply", "-f", str(REPO_ROOT / "crds/vmgeneralization.yaml"))
    deadline = time.monotonic() + 60
    while True:
        result = subprocess.run(
            [str(kubectl_path()), "--kubeconfig", kubeconfig, "wait", "--for=condition=Established",
             "crd/vmgeneralizations.vmgen.io", "--timeout=60s"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the CRD was not Established: {result.stderr.strip()}")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for Ready")
    args = parser.parse_args()
    what = "kube-apiserver + etcd, ARM simulator, one Debian guest with waagent"
    started = time.monotonic()
    with testbed_up(["--linux-vms", "1"], what=what, prefix="vmgen-demo-") as (state, testbed):
        vm = testbed["vms"][0]
        took = time.monotonic() - started
        log(f"testbed ready in {took:.1f}s: VM {vm['name']} at {vm['host']}:{vm['port']}")
        return _demo(state, testbed, args.timeout)


def _demo(state: Path, testbed: dict[str, Any], timeout: float) -> int:
    kubeconfig = testbed["kubeconfig"]
    arm = testbed["arm"]
    vm = testbed["vms"][0]

    kubectl = kubectl_runner(kubeconfig)
    install_crd(kubeconfig)
    kubectl("create", "namespace", NAMESPACE)
    kubectl("create", "namespace", "vmgen-system")
    kubectl(
        "-n",
        NAMESPACE,
        "create",
        "secret",
        "generic",
        "web-01-ssh",
        "--type=kubernetes.io/ssh-auth",
        f"--from-file=ssh-privatekey={vm['privateKeyPath']}",
    )
    sp = {
        "AZURE_TENANT_ID": arm["tenantId"],
        "AZURE_CLIENT_ID": arm["clientId"],
        "AZURE_CLIENT_SECRET": arm["clientSecret"],
    }
    sp_file = state / "azure-sp.env"
    sp_file.write_text("".join(f"{k}={v}\n" for k, v in sp.items()))
    kubectl("-n", NAMESPACE, "create", "secret", "generic", "azure-sp", f"--from-env-file={sp_file}")
    log("CRD installed; secrets web-01-ssh (SSH key) and azure-sp (service principal) created")
    account = operator_kubeconfig(
        kubectl=kubectl_path(),
        kubeconfig=Path(kubeconfig),
        namespace="vmgen-system",
        out=state / "operator.kubeconfig",
    )
    log("the chart's ServiceAccount and RBAC applied: vmgen runs as system:serviceaccount:vmgen-system:vmgen")

    before = guest_inventory(Path(vm["rootfs"]), vm["username"])
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
    try:
        operator.wait_ready()
        log("vmgen run is up; applying examples/linux.yaml with the testbed's values")
        ready: list[bool] = []  # the watch starts before the apply, so that every change is shown
        watcher = threading.Thread(target=lambda: ready.append(follow(kubeconfig, timeout)), daemon=True)
        watcher.start()
        time.sleep(0.5)
        applied = time.monotonic()
        kubectl("apply", "-f", "-", input_text=yaml.safe_dump(render_manifest(testbed)))
        watcher.join(timeout + 5)
        if ready != [True]:
            log(f"not Ready within {timeout:.0f}s; operator log tail:\n{operator.logs()[-4000:]}")
            return 1
        log(f"Ready {time.monotonic() - applied:.1f}s after apply")
    finally:
        operator.stop()

    after = guest_inventory(Path(vm["rootfs"]), vm["username"])
    print("\nWhat deprovision removed from the guest (before -> after):")
    for item, present in before.items():
        mark = "removed" if present and not after[item] else ("kept" if after[item] else "absent before")
        print(f"  {item:<40} {mark}")
    print("\nThe VM in Azure now:")
    print(json.dumps(control_get(arm, vm), indent=2))
    print("\nkubectl get vmgen:")
    print(kubectl("-n", NAMESPACE, "get", "vmgen"))
    print("Events, in the order the operator posted them:")
    events = json.loads(kubectl("-n", NAMESPACE, "get", "events", "-o", "json"))["items"]
    for event in sorted(events, key=lambda e: int(e["metadata"]["resourceVersion"])):
        print(f"  {event['type']:<8} {event['reason']:<22} {event['message']}")
    return 0


STEP_ORDER = ("validate", "deprovision", "shutdown", "generalize", "capture")


def follow(kubeconfig: str, timeout: float, name: str = NAME) -> bool:
    """Watch the resource and print the phase and each step's state whenever they change; True once Ready."""
    from kubernetes import client, config, watch

    api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        stream = watch.Watch().stream(
            api.list_namespaced_custom_object,
            "vmgen.io",
            "v1alpha1",
            NAMESPACE,
            "vmgeneralizations",
            field_selector=f"metadata.name={name}",
            timeout_seconds=max(1, int(deadline - time.monotonic())),
        )
        for event in stream:
            status = event["object"].get("status", {})
            steps = status.get("steps", {})
            line = f"phase={status.get('phase', '(new)'):<15} " + " ".join(
                f"{step}={steps[step].get('state', '-')}" for step in STEP_ORDER if step in steps
            )
            if line != last:
                print(f"  {time.strftime('%H:%M:%S')} {line}", flush=True)
                last = line
            ready = [c for c in status.get("conditions", []) if c.get("type") == "Ready"]
            if ready and ready[0].get("status") == "True":
                return True
            if status.get("phase") == "Failed":
                print(f"  Failed: {ready[0]['reason']}: {ready[0]['message']}" if ready else "  Failed")
                return False
    return False


def control_get(arm: dict[str, Any], vm: dict[str, Any]) -> Any:
    context = ssl.create_default_context(cafile=arm["caBundle"])
    url = f"{arm['control']}/vms/{vm['subscriptionId']}/{vm['resourceGroup']}/{vm['name']}"
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        return json.loads(response.read())


def kubectl_path() -> Path:
    return Path(ensure_binaries().kubectl)


if __name__ == "__main__":
    sys.exit(main())
