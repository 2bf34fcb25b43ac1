"""`helm install`, `helm upgrade` and `helm uninstall` of charts/vmgen into the testbed's kube-apiserver,
for real: the release is stored in the cluster, the objects exist, and the ServiceAccount it installs is
refused by the real RBAC authorizer where the chart grants it nothing.

Traps avoided:
- The session's CRD was applied by kubectl, so a release with crds.install=true would refuse to take it
  over ("invalid ownership metadata"); the releases here leave it alone (crds.install=false), except the
  one test that hands the CRD to Helm the documented way (docs/operations.md) and then checks
  `helm.sh/resource-policy: keep`.
- No controller-manager runs, so Deployments never get pods: helm is run without --wait and the tests
  check the objects the release created, not pods.
- helm keeps a cache and a config under $HOME: each test points them at its own temporary folder.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract.crd.resources import CHART_DIR
from vmgen_testbed.kube import ControlPlane

pytestmark = pytest.mark.usefixtures("vmgen_crd")

CRD_NAME = "customresourcedefinition/vmgeneralizations.vmgen.io"


class Helm:
    """The pinned helm against the testbed's control plane, as its admin."""

    def __init__(self, binary: Path, control_plane: ControlPlane, home: Path) -> None:
        self.binary, self.control_plane = binary, control_plane
        self.env = {
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "PATH": "/usr/bin:/bin",
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.binary), "--kubeconfig", str(self.control_plane.kubeconfig), *args]
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, check=False, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def install(self, release: str, namespace: str, *values: str) -> subprocess.CompletedProcess[str]:
        return self.run("install", release, str(CHART_DIR), "--namespace", namespace, *values)


@pytest.fixture
def helm_cli(helm: Path, control_plane: ControlPlane, tmp_path: Path) -> Helm:
    return Helm(helm, control_plane, tmp_path)


def _release(control_plane: ControlPlane, *, namespaces: int = 1) -> tuple[str, list[str]]:
    """A fresh release name (also the chart's full name: its ClusterRole is cluster-wide, so no two tests
    share it) and `namespaces` new namespaces, the release's own first."""
    suffix = uuid.uuid4().hex[:8]
    names = [f"hi{i}-{suffix}" for i in range(namespaces)]
    for name in names:
        control_plane.kubectl("create", "namespace", name)
    return f"vmgen-{suffix}", names


def _get(control_plane: ControlPlane, namespace: str, *what: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        control_plane.kubectl("get", "-n", namespace, *what, "-o", "json").stdout
    )
    return body


def _exists(control_plane: ControlPlane, namespace: str, what: str) -> bool:
    return control_plane.kubectl("get", "-n", namespace, what, check=False).returncode == 0


def _as_service_account(control_plane: ControlPlane, namespace: str, account: str, out: Path) -> Path:
    """A kubeconfig that authenticates as `account` with a TokenRequest token (no impersonation)."""
    token = control_plane.kubectl("create", "token", account, "-n", namespace).stdout.strip()
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    out.write_text(yaml.safe_dump(config))
    out.chmod(0o600)
    return out


class TestInstall:
    def test_the_default_values_install_the_operator_serving_all_namespaces(
        self, control_plane: ControlPlane, helm_cli: Helm
    ) -> None:
        release, (namespace,) = _release(control_plane)

        helm_cli.install(release, namespace, "--set", "crds.install=false")

        status = json.loads(helm_cli.run("status", release, "-n", namespace, "-o", "json").stdout)
        assert status["info"]["status"] == "deployed"
        deployment = _get(control_plane, namespace, f"deployment/{release}")
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"]["type"] == "Recreate"
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "--all-namespaces" in container["args"]
        assert _get(control_plane, namespace, f"serviceaccount/{release}")["metadata"]["name"] == release
        assert not _exists(control_plane, namespace, f"poddisruptionbudget/{release}")
        assert not _exists(control_plane, namespace, f"service/{release}-metrics")

    def test_a_namespace_scoped_install_denies_its_service_account_secrets_elsewhere(
        self, control_plane: ControlPlane, helm_cli: Helm, tmp_path: Path
    ) -> None:
        release, (own, watched, other) = _release(control_plane, namespaces=3)
        for namespace in (watched, other):
            control_plane.kubectl("create", "secret", "generic", "ssh", "-n", namespace, "--from-literal=k=v")

        helm_cli.install(
            release, own, "--set", "crds.install=false", "--set", f"watchNamespaces={{{watched}}}"
        )
        kubeconfig = _as_service_account(control_plane, own, release, tmp_path / "sa.kubeconfig")

        def get_secret(namespace: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(control_plane.kubectl_path), "--kubeconfig", str(kubeconfig), "get", "secret", "ssh",
                 "-n", namespace, "-o", "name"],
                capture_output=True, text=True, check=False, timeout=60,
            )  # fmt: skip

        allowed, denied = get_secret(watched), get_secret(other)
        assert allowed.returncode == 0, allowed.stderr
        assert allowed.stdout.strip() == "secret/ssh"
        assert denied.returncode != 0
        assert "Forbidden" in denied.stderr
        assert f'cannot get resource "secrets" in API group "" in the namespace "{other}"' in denied.stderr
        (container,) = _get(control_plane, own, f"deployment/{release}")["spec"]["template"]["spec"][
            "containers"
        ]
        assert "--all-namespaces" not in container["args"]

    def test_ha_values_roll_updates_and_keep_one_pod_through_disruptions(
        self, control_plane: ControlPlane, helm_cli: Helm
    ) -> None:
        release, (namespace,) = _release(control_plane)

        helm_cli.install(release, namespace, "--set", "crds.install=false", "--set", "replicas=2")

        deployment = _get(control_plane, namespace, f"deployment/{release}")
        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }
        budget = _get(control_plane, namespace, f"poddisruptionbudget/{release}")
        assert budget["spec"]["minAvailable"] == 1
        assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        assert control_plane.kubectl(
            "auth", "can-i", "update", "leases.coordination.k8s.io", "-n", namespace,
            f"--as=system:serviceaccount:{namespace}:{release}",
        ).stdout.strip() == "yes"  # fmt: skip


class TestUpgradeAndUninstall:
    def test_an_upgrade_changes_the_release_in_place(
        self, control_plane: ControlPlane, helm_cli: Helm
    ) -> None:
        release, (namespace,) = _release(control_plane)
        helm_cli.install(release, namespace, "--set", "crds.install=false")

        helm_cli.run(
            "upgrade", release, str(CHART_DIR), "--namespace", namespace, "--reuse-values",
            "--set", "replicas=3", "--set", "metrics.enabled=true",
        )  # fmt: skip

        history = json.loads(helm_cli.run("history", release, "-n", namespace, "-o", "json").stdout)
        assert [entry["status"] for entry in history] == ["superseded", "deployed"]
        deployment = _get(control_plane, namespace, f"deployment/{release}")
        assert deployment["spec"]["replicas"] == 3
        assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
        service = _get(control_plane, namespace, f"service/{release}-metrics")
        assert service["spec"]["ports"][0]["port"] == 8080
        assert _exists(control_plane, namespace, f"poddisruptionbudget/{release}")

    def test_an_uninstall_removes_the_release_and_keeps_the_crd(
        self, control_plane: ControlPlane, helm_cli: Helm
    ) -> None:
        release, (namespace,) = _release(control_plane)
        # Hand the kubectl-applied CRD to this release (the documented adoption), then install it.
        control_plane.kubectl("label", "--overwrite", CRD_NAME, "app.kubernetes.io/managed-by=Helm")
        control_plane.kubectl(
            "annotate", "--overwrite", CRD_NAME,
            f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={namespace}",
        )  # fmt: skip
        helm_cli.install(release, namespace, "--set", "replicas=2")
        crd = json.loads(control_plane.kubectl("get", CRD_NAME, "-o", "json").stdout)
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

        result = helm_cli.run("uninstall", release, "--namespace", namespace)

        assert "kept due to the resource policy" in result.stdout + result.stderr
        assert control_plane.kubectl("get", CRD_NAME, check=False).returncode == 0
        assert control_plane.kubectl("get", "vmgen", "-A", check=False).returncode == 0
        for leftover in (
            f"deployment/{release}",
            f"serviceaccount/{release}",
            f"poddisruptionbudget/{release}",
        ):
            assert not _exists(control_plane, namespace, leftover), leftover
        assert not _exists(control_plane, namespace, f"role/{release}-leases")
        assert helm_cli.run("status", release, "-n", namespace, check=False).returncode != 0
