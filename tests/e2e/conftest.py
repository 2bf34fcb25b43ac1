"""The e2e world: the real control plane with the CRD, the ARM simulator, Debian guests, and the operator
running as its own `vmgen run` process. Each test gets its own namespace and its own VMs.

The operator runs as the Helm chart's ServiceAccount with exactly the chart's RBAC (rendered by the
pinned helm, authenticated by a TokenRequest token), never as the admin: a permission the chart forgets
fails an e2e test here instead of a user's first install. The tests themselves use the admin kubeconfig.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from vmgen_testbed.helm import operator_kubeconfig as operator_kubeconfig_for
from vmgen_testbed.operator_process import OperatorProcess
from vmgen_testbed.paths import REPO_ROOT

OPERATOR_NAMESPACE = "vmgen-system"
_namespaces = itertools.count(1)


@pytest.fixture(scope="session")
def crd(control_plane: Any) -> None:
    control_plane.kubectl("apply", "-f", str(REPO_ROOT / "crds/vmgeneralization.yaml"))
    control_plane.wait_established("vmgeneralizations.vmgen.io")
    control_plane.kubectl("create", "namespace", OPERATOR_NAMESPACE)


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane: Any, crd: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for the chart's ServiceAccount, after applying the chart's RBAC (all namespaces)."""
    return operator_kubeconfig_for(
        kubectl=control_plane.kubectl_path,
        kubeconfig=control_plane.kubeconfig,
        namespace=OPERATOR_NAMESPACE,
        out=tmp_path_factory.mktemp("operator-kubeconfig") / "kubeconfig",
    )


@pytest.fixture(scope="session")
def operator(
    arm: Any, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        kubeconfig=str(operator_kubeconfig),
        arm_endpoint=arm.base_url,
        ca_bundle=str(arm.ca_bundle),
        authority=arm.authority,
        log_path=tmp_path_factory.mktemp("operator") / "operator.log",
        operator_namespace=OPERATOR_NAMESPACE,
        poll_interval=0.05,
        metrics=True,
    )
    process.start()
    yield process
    process.stop()


@dataclass
class World:
    control_plane: Any
    arm: Any
    operator: OperatorProcess
    namespace: str

    def kubectl(
        self, *args: str, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = subprocess.run(
            [
                str(self.control_plane.kubectl_path),
                "--kubeconfig",
                str(self.control_plane.kubeconfig),
                "-n",
                self.namespace,
                *args,
            ],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def apply(self, manifest: dict[str, Any], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest), check=check)

    def get(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.kubectl("get", "vmgen", name, "-o", "json").stdout)
        return body

    def wait_for(
        self, name: str, predicate: Callable[[dict[str, Any]], bool], *, timeout: float, what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = self.get(name)
            if predicate(body):
                return body
            time.sleep(0.05)
        raise AssertionError(
            f"{name}: {what} not reached within {timeout}s; "
            f"status: {json.dumps(body.get('status'), indent=1)}\n"
            f"operator log tail:\n{self.operator.logs()[-3000:]}"
        )

    def wait_ready(self, name: str, *, timeout: float = 90) -> dict[str, Any]:
        result = self.kubectl(
            "wait", "--for=condition=Ready", f"vmgen/{name}", f"--timeout={int(timeout)}s", check=False
        )
        body = self.get(name)
        assert result.returncode == 0, (
            f"kubectl wait failed: {result.stderr}\nstatus: {json.dumps(body.get('status'), indent=1)}\n"
            f"operator log tail:\n{self.operator.logs()[-3000:]}"
        )
        return body

    def wait_failed(self, name: str, *, timeout: float = 60) -> dict[str, Any]:
        return self.wait_for(
            name, lambda b: b.get("status", {}).get("phase") == "Failed", timeout=timeout, what="phase Failed"
        )

    def events(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.kubectl("get", "events", "-o", "json").stdout)["items"]
        return items

    def ssh_secret(self, name: str, private_key: bytes) -> None:
        path = self.operator.log_path.parent / f"{self.namespace}-{name}.key"
        path.write_bytes(private_key)
        self.kubectl(
            "create",
            "secret",
            "generic",
            name,
            "--type=kubernetes.io/ssh-auth",
            f"--from-file=ssh-privatekey={path}",
        )
        path.unlink()

    def azure_secret(self, name: str, *, tenant_id: str, client_id: str, client_secret: str) -> None:
        self.kubectl(
            "create",
            "secret",
            "generic",
            name,
            f"--from-literal=AZURE_TENANT_ID={tenant_id}",
            f"--from-literal=AZURE_CLIENT_ID={client_id}",
            f"--from-literal=AZURE_CLIENT_SECRET={client_secret}",
        )

    def linux_manifest(
        self,
        name: str,
        vm: Any,
        *,
        ssh_secret: str = "ssh",
        azure_secret: str | None = "azure-sp",
        host_keys: list[str] | None = None,
    ) -> dict[str, Any]:
        sandbox = vm.sandbox
        ssh: dict[str, Any] = {
            "host": sandbox.ip,
            "port": sandbox.port,
            "username": sandbox.username,
            "privateKeySecretRef": {"name": ssh_secret},
        }
        if host_keys is not None:
            ssh["hostKeys"] = host_keys
        spec: dict[str, Any] = {
            "vm": {"subscriptionId": vm.subscription_id, "resourceGroup": vm.resource_group, "name": vm.name},
            "osType": "Linux",
            "ssh": ssh,
        }
        if azure_secret is not None:
            spec["azure"] = {"credentialsSecretRef": {"name": azure_secret}}
        return {
            "apiVersion": "vmgen.io/v1alpha1",
            "kind": "VMGeneralization",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }

    def secrets(self, vm: Any, *, ssh_key: bytes | None = None, client_secret: str | None = None) -> None:
        """The two Secrets a job reads: `ssh` (the VM's key unless another is given) and `azure-sp`."""
        self.ssh_secret("ssh", vm.sandbox.private_key if ssh_key is None else ssh_key)
        self.azure_secret(
            "azure-sp",
            tenant_id=self.arm.tenant_id,
            client_id=self.arm.client_id,
            client_secret=self.arm.client_secret if client_secret is None else client_secret,
        )

    def linux_job(self, name: str, vm: Any, **kwargs: Any) -> dict[str, Any]:
        """Secrets for `vm` plus the manifest, applied: the common path of most tests."""
        self.secrets(vm)
        manifest = self.linux_manifest(name, vm, **kwargs)
        self.apply(manifest)
        return manifest

    def job_for_other_vm(self, name: str, vm: Any, *, vm_name: str) -> None:
        """Secrets of `vm`'s guest, but spec.vm names `vm_name` (a VM seeded or missing in Azure)."""
        self.secrets(vm)
        manifest = self.linux_manifest(name, vm, host_keys=list(vm.sandbox.host_keys))
        manifest["spec"]["vm"]["name"] = vm_name
        self.apply(manifest)


@pytest.fixture(autouse=True)
def no_fault_or_latency_outlives_its_test(arm: Any) -> Iterator[None]:
    """The simulator lives for the session: a test that slows or breaks it must not slow or break the
    next one, also when it fails half-way. Latencies go back to the simulator's defaults, not to 0."""
    yield
    arm.clear_faults()
    arm.reset_latencies()


@pytest.fixture
def world(control_plane: Any, arm: Any, operator: OperatorProcess) -> Iterator[World]:
    if not operator.running:  # a restart test left it stopped after a failure
        operator.start()
    namespace = f"e2e-{next(_namespaces)}"
    control_plane.kubectl("create", "namespace", namespace)
    yield World(control_plane=control_plane, arm=arm, operator=operator, namespace=namespace)


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in body.get("status", {}).get("conditions", []):
        if item["type"] == kind:
            return dict(item)
    raise AssertionError(f"no {kind} condition in {json.dumps(body.get('status'), indent=1)}")


def vm_requests(arm: Any, vm: Any) -> list[Any]:
    """The ARM requests about exactly this VM (`vm-1`'s, never `vm-12`'s)."""
    return [r for r in arm.requests() if r.api == "arm" and r.is_for_vm(vm.name)]


def assert_guest_untouched(vm: Any) -> None:
    rootfs = Path(vm.sandbox.rootfs)
    assert f"\n{vm.sandbox.username}:" in "\n" + (rootfs / "etc/passwd").read_text(), "the user was removed"
    assert list((rootfs / "etc/ssh").glob("ssh_host_*_key")), "host keys were removed"
    assert (rootfs / "var/lib/waagent/ovf-env.xml").exists(), "waagent state was removed"


def assert_guest_deprovisioned(vm: Any) -> None:
    rootfs = Path(vm.sandbox.rootfs)
    user = vm.sandbox.username
    assert f"\n{user}:" not in "\n" + (rootfs / "etc/passwd").read_text()
    assert f"\n{user}:" not in "\n" + (rootfs / "etc/shadow").read_text()
    assert not (rootfs / "home" / user).exists()
    assert not list((rootfs / "etc/ssh").glob("ssh_host_*"))
    assert not (rootfs / "etc/resolv.conf").exists()
    waagent = rootfs / "var/lib/waagent"
    assert not waagent.exists() or not any(waagent.iterdir())


def slow_counting_waagent(vm: Any, seconds: float) -> None:
    """Put a wrapper first on sudo's PATH in the guest: it logs each start, then sleeps (latency
    injected in the guest) before the real /usr/sbin/waagent does the work."""
    wrapper = vm.sandbox.rootfs / "usr/local/sbin/waagent"
    wrapper.write_text(
        f"#!/bin/sh\necho start >> /var/log/vmgen-deprovision-starts\nsleep {seconds}\n"
        'exec /usr/sbin/waagent "$@"\n'
    )
    wrapper.chmod(0o755)


def deprovision_runs(vm: Any) -> int:
    """How many times deprovision started in the guest (counted by `slow_counting_waagent`)."""
    log = vm.sandbox.rootfs / "var/log/vmgen-deprovision-starts"
    return len(log.read_text().splitlines()) if log.exists() else 0
