"""What the benchmarks share: reading a process's memory, one Linux VM made into a job, the operator, and a
fleet of such jobs applied at once and waited for (`run_linux_fleet`).

Each benchmark runs as a script (`python benchmarks/bench_x.py`), so this module is imported from the
script's own folder; it is not a benchmark itself (`make bench` runs only `bench_*.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

GROUP = "vmgen.io", "v1alpha1"


def proc_kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` figure in KiB (VmRSS, VmHWM); 0 when the field is missing."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def linux_job(
    cp: Any, sim: Any, sb: Any, *, name: str, namespace: str, subscription: str, group: str
) -> dict[str, Any]:
    """Seed the sandbox `sb` as VM `name` in the simulator, store its SSH key as `<name>-ssh` and return
    the VMGeneralization for it (host keys pinned, the shared `azure-sp` Secret)."""
    sim.seed_vm(subscription_id=subscription, resource_group=group, name=name, os_type="Linux", guest=sb)
    cp.kubectl(
        "-n", namespace, "create", "secret", "generic", f"{name}-ssh", "--type=kubernetes.io/ssh-auth",
        f"--from-file=ssh-privatekey={sb.private_key_path}",
    )  # fmt: skip
    return {
        "apiVersion": "vmgen.io/v1alpha1",
        "kind": "VMGeneralization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "vm": {"subscriptionId": subscription, "resourceGroup": group, "name": name},
            "osType": "Linux",
            "azure": {"credentialsSecretRef": {"name": "azure-sp"}},
            "ssh": {
                "host": sb.ip,
                "port": sb.port,
                "username": sb.username,
                "privateKeySecretRef": {"name": f"{name}-ssh"},
                "hostKeys": list(sb.host_keys),
            },
        },
    }


def operator_for(cp: Any, sim: Any, state: Path, *, namespace: str, **settings: Any) -> Any:
    """The CRD, the jobs' namespace with the simulator's service principal as `azure-sp`, and a `vmgen run`
    (not started) under the chart's ServiceAccount in vmgen-system; `settings` go to OperatorProcess."""
    from vmgen_testbed.helm import operator_kubeconfig
    from vmgen_testbed.operator_process import OperatorProcess
    from vmgen_testbed.paths import REPO_ROOT

    cp.kubectl("apply", "-f", str(REPO_ROOT / "crds/vmgeneralization.yaml"))
    cp.wait_established("vmgeneralizations.vmgen.io")
    for ns in (namespace, "vmgen-system"):
        cp.kubectl("create", "namespace", ns)
    cp.kubectl(
        "-n", namespace, "create", "secret", "generic", "azure-sp",
        f"--from-literal=AZURE_TENANT_ID={sim.tenant_id}",
        f"--from-literal=AZURE_CLIENT_ID={sim.client_id}",
        f"--from-literal=AZURE_CLIENT_SECRET={sim.client_secret}",
    )  # fmt: skip
    account = operator_kubeconfig(
        kubectl=cp.kubectl_path, kubeconfig=cp.kubeconfig, namespace="vmgen-system", out=state / "sa"
    )
    return OperatorProcess(
        kubeconfig=str(account),
        arm_endpoint=sim.base_url,
        ca_bundle=str(sim.ca_bundle),
        authority=sim.authority,
        log_path=state / "operator.log",
        operator_namespace="vmgen-system",
        **settings,
    )


def wait_ready(
    api: Any, group_api: tuple[str, ...], created: dict[str, float], *, timeout: float
) -> dict[str, float]:
    """Seconds from each resource's create (`created`: name -> time.monotonic()) until its Ready=True,
    seen through a watch (each change arrives within milliseconds; a list every 100 ms added about
    50 ms on average to every figure). Raises SystemExit when one fails or the time runs out."""
    ready: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(ready) < len(created) and time.monotonic() < deadline:
        stream = watch.Watch()
        for event in stream.stream(
            api.list_namespaced_custom_object,
            *group_api,
            timeout_seconds=max(1, int(deadline - time.monotonic())),
        ):
            item = event["object"]
            name = item["metadata"]["name"]
            if name not in created or name in ready:
                continue
            status = item.get("status", {})
            if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])):
                ready[name] = time.monotonic() - created[name]
                if len(ready) == len(created):
                    stream.stop()
            elif status.get("phase") == "Failed":
                raise SystemExit(f"{name} failed: {status}")
    if len(ready) < len(created):
        raise SystemExit(f"only {len(ready)}/{len(created)} Ready after {timeout:g} s")
    return ready


def run_linux_fleet(
    cp: Any,
    sim: Any,
    host: Any,
    operator: Any,
    *,
    names: list[str],
    namespace: str,
    subscription: str,
    group: str,
    timeout: float,
    prepare: Callable[[Any], None] = lambda sandbox: None,
) -> dict[str, Any]:
    """One sandbox and job per name (`prepare` runs on each sandbox before its job), all created at once;
    returns the sandboxes, each job's seconds from its create to Ready, and from the first create to the
    last Ready ("all")."""
    docs, sandboxes = [], []
    for name in names:
        sb = host.create(name)
        prepare(sb)
        sandboxes.append(sb)
        docs.append(
            linux_job(cp, sim, sb, name=name, namespace=namespace, subscription=subscription, group=group)
        )
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cp.kubeconfig)))
    resources = (*GROUP, namespace, "vmgeneralizations")
    created: dict[str, float] = {}
    for doc in docs:  # the API call a `kubectl apply` makes
        created[doc["metadata"]["name"]] = time.monotonic()
        api.create_namespaced_custom_object(*resources, doc)
    try:
        ready = wait_ready(api, resources, created, timeout=timeout)
    except SystemExit as exc:
        raise SystemExit(f"{exc}; log: {operator.logs()[-2000:]}") from None
    first = min(created.values())
    every = max(created[name] + ready[name] for name in names) - first
    return {"names": names, "sandboxes": sandboxes, "ready": ready, "all": every}
