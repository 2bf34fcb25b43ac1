"""A valid VMGeneralization is stored with DESIGN.md's defaults filled in, and `kubectl get vmgen` shows
what a person looks for: the VM, its OS, the phase and whether it is Ready."""

from __future__ import annotations

import json

import pytest

from tests.contract.crd.resources import apply, get, linux_manifest, windows_manifest
from vmgen_testbed.kube import ControlPlane

pytestmark = pytest.mark.usefixtures("vmgen_crd")


class TestDefaults:
    def test_a_minimal_linux_manifest_gets_every_default(
        self, control_plane: ControlPlane, namespace: str
    ) -> None:
        manifest = linux_manifest(namespace)
        spec = manifest["spec"]
        spec.pop("osType")
        spec["ssh"] = {"host": "10.0.0.4", "privateKeySecretRef": {"name": "web-01-ssh"}}

        assert apply(control_plane, manifest).returncode == 0

        stored = get(control_plane, manifest)["spec"]
        assert stored["osType"] == "Auto"
        assert stored["ssh"] == {
            "host": "10.0.0.4",
            "port": 22,
            "username": "azureuser",
            "privateKeySecretRef": {"name": "web-01-ssh"},
        }
        assert stored["linux"] == {"deprovisionUser": True}
        assert stored["windows"] == {"transport": "WinRM", "sysprepTimeout": "30m"}
        assert stored["timeouts"] == {
            "deprovision": "15m",
            "shutdown": "20m",
            "generalize": "5m",
            "capture": "2h",
            "copy": "30m",
        }
        assert (stored["mode"], stored["approval"], stored["deletionPolicy"]) == (
            "Generalize",
            "Automatic",
            "Retain",
        )
        assert stored["preserveSource"] == {"snapshot": False, "includeDataDisks": True, "incremental": True}
        assert stored["source"] == "InPlace", "the VM itself unless a copy is asked for"
        assert "copy" not in stored
        assert "capture" not in stored, "no image unless one is asked for"
        assert "azure" not in stored, "no credentials Secret means the operator's own identity"

    def test_a_minimal_winrm_block_is_secure_by_default(
        self, control_plane: ControlPlane, namespace: str
    ) -> None:
        manifest = windows_manifest(namespace)

        assert apply(control_plane, manifest).returncode == 0

        assert get(control_plane, manifest)["spec"]["winrm"] == {
            "host": "web-02.corp.example",
            "port": 5986,
            "tls": True,
            "auth": "ntlm",
            "insecureSkipTLSVerify": False,
            "allowUnencrypted": False,
            "credentialsSecretRef": {"name": "web-02-admin"},
        }

    def test_a_partial_timeouts_block_keeps_the_other_defaults(
        self, control_plane: ControlPlane, namespace: str
    ) -> None:
        manifest = linux_manifest(namespace)
        manifest["spec"]["timeouts"] = {"shutdown": "1h30m"}

        assert apply(control_plane, manifest).returncode == 0

        assert get(control_plane, manifest)["spec"]["timeouts"] == {
            "deprovision": "15m",
            "shutdown": "1h30m",
            "generalize": "5m",
            "capture": "2h",
            "copy": "30m",
        }


class TestPrinterColumns:
    def test_kubectl_get_shows_vm_os_phase_ready_and_age(
        self, control_plane: ControlPlane, namespace: str
    ) -> None:
        manifest = linux_manifest(namespace)
        name = manifest["metadata"]["name"]
        assert apply(control_plane, manifest).returncode == 0
        status = {
            "phase": "Deprovisioning",
            "vm": {"osType": "Linux", "powerState": "running"},
            "conditions": [{"type": "Ready", "status": "False", "reason": "Deprovisioning", "message": "m"}],
        }
        control_plane.kubectl(
            "patch", "vmgen", name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}),
        )  # fmt: skip

        header, row = control_plane.kubectl("get", "vmgen", "-n", namespace).stdout.splitlines()

        assert header.split() == ["NAME", "VM", "OS", "PHASE", "READY", "AGE"]
        assert row.split()[:5] == [name, "web-01", "Linux", "Deprovisioning", "False"]

    def test_the_wide_view_adds_the_ready_reason_and_resource_group(
        self, control_plane: ControlPlane, namespace: str
    ) -> None:
        manifest = linux_manifest(namespace)
        name = manifest["metadata"]["name"]
        assert apply(control_plane, manifest).returncode == 0
        status = {"conditions": [{"type": "Ready", "status": "False", "reason": "VMClaimedByAnother"}]}
        control_plane.kubectl(
            "patch", "vmgen", name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}),
        )  # fmt: skip

        header, row = control_plane.kubectl("get", "vmgen", "-n", namespace, "-o", "wide").stdout.splitlines()

        assert "REASON" in header and "RESOURCE GROUP" in header
        assert "VMClaimedByAnother" in row.split() and "rg-images" in row.split()

    def test_kubectl_wait_for_condition_ready_returns_once_the_operator_reports_ready(
        self, control_plane: ControlPlane, namespace: str
    ) -> None:
        manifest = linux_manifest(namespace)
        name = manifest["metadata"]["name"]
        assert apply(control_plane, manifest).returncode == 0
        ready = {
            "phase": "Succeeded",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Generalized"}],
        }
        control_plane.kubectl(
            "patch", "vmgen", name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": ready}),
        )  # fmt: skip

        result = control_plane.kubectl(
            "wait", "--for=condition=Ready", f"vmgen/{name}", "-n", namespace, "--timeout=10s"
        )

        assert "condition met" in result.stdout
