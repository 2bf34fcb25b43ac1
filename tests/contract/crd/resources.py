"""Manifests and kubectl calls shared by the CRD contract tests.

Every test builds its object from `linux_manifest()` (a valid resource) and changes one thing, so a
rejection can only come from that one thing. Objects are sent as JSON on stdin: no temporary files, and
JSON is also YAML for kubectl.
"""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from typing import Any

from vmgen_testbed.kube import ControlPlane
from vmgen_testbed.paths import REPO_ROOT

__all__ = [
    "CHART_DIR",
    "CRD_PATH",
    "HOST_KEY",
    "SUBSCRIPTION_ID",
    "apply",
    "get",
    "linux_manifest",
    "windows_manifest",
]

CRD_PATH = REPO_ROOT / "crds" / "vmgeneralization.yaml"
CHART_DIR = REPO_ROOT / "charts" / "vmgen"
SUBSCRIPTION_ID = "dedb2ab1-9b20-43d4-b620-1f389fe925be"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK9L6y9H+5mm9jfY/bnl0Z2Pn+UYY6IqhmqM35WImNyM root@web-01"

_LINUX: dict[str, Any] = {
    "apiVersion": "vmgen.io/v1alpha1",
    "kind": "VMGeneralization",
    "spec": {
        "vm": {"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": "rg-images", "name": "web-01"},
        "osType": "Linux",
        "ssh": {"host": "10.0.0.4", "privateKeySecretRef": {"name": "web-01-ssh"}, "hostKeys": [HOST_KEY]},
    },
}

_WINDOWS: dict[str, Any] = {
    "apiVersion": "vmgen.io/v1alpha1",
    "kind": "VMGeneralization",
    "spec": {
        "vm": {"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": "rg-images", "name": "web-02"},
        "osType": "Windows",
        "winrm": {"host": "web-02.corp.example", "credentialsSecretRef": {"name": "web-02-admin"}},
    },
}


def _named(template: dict[str, Any], namespace: str) -> dict[str, Any]:
    manifest = copy.deepcopy(template)
    manifest["metadata"] = {"name": f"vmgen-{uuid.uuid4().hex[:8]}", "namespace": namespace}
    return manifest


def linux_manifest(namespace: str) -> dict[str, Any]:
    """A valid Linux VMGeneralization with a fresh name."""
    return _named(_LINUX, namespace)


def windows_manifest(namespace: str) -> dict[str, Any]:
    """A valid Windows (WinRM) VMGeneralization with a fresh name."""
    return _named(_WINDOWS, namespace)


def apply(
    control_plane: ControlPlane, manifest: dict[str, Any], *extra: str
) -> subprocess.CompletedProcess[str]:
    """`kubectl apply` the manifest; never raises, so tests can assert on refusals."""
    return control_plane.kubectl("apply", "-f", "-", *extra, input=json.dumps(manifest), check=False)


def get(control_plane: ControlPlane, manifest: dict[str, Any]) -> dict[str, Any]:
    """The stored object, as the API server returns it (defaults applied, unknown fields pruned)."""
    metadata = manifest["metadata"]
    result = control_plane.kubectl(
        "get", "vmgeneralizations.vmgen.io", metadata["name"], "-n", metadata["namespace"], "-o", "json"
    )
    body: dict[str, Any] = json.loads(result.stdout)
    return body
