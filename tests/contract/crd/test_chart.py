"""The Helm chart renders, its output is accepted by the API server, and the operator's ServiceAccount
ends up with exactly the permissions docs/security.md promises (checked with `kubectl auth can-i`
against the real RBAC authorizer, not by reading the YAML)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract.crd.resources import CHART_DIR, CRD_PATH, SUBSCRIPTION_ID
from vmgen import config
from vmgen_testbed.kube import ControlPlane

pytestmark = pytest.mark.usefixtures("vmgen_crd")

KUBE_VERSION = "1.34.4"
KIND_CRD = "CustomResourceDefinition"


def _helm_template(
    helm: Path, release: str, namespace: str, *values: str
) -> subprocess.CompletedProcess[str]:
    command = [
        str(helm), "template", release, str(CHART_DIR), "--namespace", namespace,
        "--kube-version", KUBE_VERSION, "--include-crds", *values,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _render(helm: Path, release: str, namespace: str, *values: str) -> str:
    result = _helm_template(helm, release, namespace, *values)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _objects(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def _one(rendered: str, kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in _objects(rendered) if doc["kind"] == kind]
    return found


def _release(control_plane: ControlPlane, *, watched: int = 0) -> tuple[str, str, list[str]]:
    """A fresh release name, its namespace and `watched` extra namespaces, all created."""
    suffix = uuid.uuid4().hex[:8]
    namespaces = [f"op-{suffix}", *(f"apps{i}-{suffix}" for i in range(watched))]
    for name in namespaces:
        control_plane.kubectl("create", "namespace", name)
    return f"r-{suffix}", namespaces[0], namespaces[1:]


class TestTheCrdHasOneSource:
    def test_the_chart_ships_a_byte_for_byte_copy_of_every_crd(self) -> None:
        source = {path.name: path.read_bytes() for path in CRD_PATH.parent.glob("*.yaml")}
        shipped = {path.name: path.read_bytes() for path in (CHART_DIR / "files" / "crds").glob("*.yaml")}

        assert shipped == source, "run: cp crds/*.yaml charts/vmgen/files/crds/"

    def test_the_release_renders_exactly_the_crds_of_the_repository(self, helm: Path) -> None:
        rendered = [
            doc for doc in _objects(_render(helm, "vmgen", "vmgen-system")) if doc["kind"] == KIND_CRD
        ]
        source = [yaml.safe_load(path.read_text()) for path in sorted(CRD_PATH.parent.glob("*.yaml"))]

        assert rendered == source

    def test_crds_install_false_leaves_the_crds_to_a_separate_install(self, helm: Path) -> None:
        rendered = _objects(_render(helm, "vmgen", "vmgen-system", "--set", "crds.install=false"))

        assert [doc["kind"] for doc in rendered if doc["kind"] == KIND_CRD] == []
        assert "Deployment" in {doc["kind"] for doc in rendered}

    def test_uninstalling_the_chart_keeps_the_crd_and_every_resource(self) -> None:
        crd = yaml.safe_load(CRD_PATH.read_text())

        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


@pytest.mark.parametrize(
    "values",
    [
        pytest.param((), id="the defaults"),
        pytest.param(
            (
                "--set",
                "replicas=2",
                "--set",
                "metrics.enabled=true",
                "--set",
                "metrics.serviceMonitor.enabled=true",
            ),
            id="HA with metrics and a ServiceMonitor",
        ),
        pytest.param(("--set", "crds.install=false"), id="without the CRDs"),
    ],
)
def test_helm_lint_finds_nothing(helm: Path, values: Sequence[str]) -> None:
    result = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART_DIR), "--kube-version", KUBE_VERSION, *values],
        capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    "values",
    [
        pytest.param((), id="the defaults (all namespaces)"),
        pytest.param(("--set", "watchNamespaces={WATCHED}"), id="a list of watched namespaces"),
        pytest.param(
            (
                "--set",
                "azureWorkloadIdentity.enabled=true",
                "--set",
                f"azureWorkloadIdentity.clientId={SUBSCRIPTION_ID}",
                "--set",
                "operator.caBundleConfigMap=arm-ca",
                "--set",
                "operator.verbose=true",
            ),
            id="workload identity, a CA bundle and verbose logs",
        ),
        pytest.param(
            ("--set", "replicas=2", "--set", "metrics.enabled=true"),
            id="two replicas with metrics (Deployment, PodDisruptionBudget, Service)",
        ),
    ],
)
def test_the_rendered_chart_passes_a_server_side_dry_run(
    control_plane: ControlPlane, helm: Path, values: Sequence[str]
) -> None:
    release, namespace, watched = _release(control_plane, watched=1)
    rendered = _render(helm, release, namespace, *(value.replace("WATCHED", watched[0]) for value in values))

    result = control_plane.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(_objects(rendered))


class TestTheDeploymentIsHardened:
    def test_it_runs_non_root_read_only_without_capabilities(self, helm: Path) -> None:
        pod = _one(_render(helm, "vmgen", "vmgen-system"), "Deployment")["spec"]["template"]["spec"]
        (container,) = pod["containers"]

        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 65532
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }

    def test_its_pod_is_admitted_where_the_restricted_pod_security_standard_is_enforced(
        self, control_plane: ControlPlane, helm: Path
    ) -> None:
        _, namespace, _ = _release(control_plane)
        control_plane.kubectl(
            "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
        )
        template = _one(_render(helm, "vmgen", namespace), "Deployment")["spec"]["template"]
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "vmgen", "namespace": namespace},
        }
        pod["spec"] = template["spec"]
        unhardened = {**pod, "spec": {**pod["spec"], "securityContext": {}}}

        admitted = control_plane.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
        )
        refused = control_plane.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=json.dumps(unhardened), check=False
        )

        assert admitted.returncode == 0, admitted.stderr
        assert 'violates PodSecurity "restricted:latest"' in refused.stderr, (
            "PodSecurity admission is not active"
        )

    def test_one_replica_is_replaced_not_rolled(self, helm: Path) -> None:
        rendered = _render(helm, "vmgen", "vmgen-system")
        deployment = _one(rendered, "Deployment")

        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert "PodDisruptionBudget" not in {doc["kind"] for doc in _objects(rendered)}

    def test_the_liveness_probe_calls_kopfs_health_endpoint(self, helm: Path) -> None:
        (container,) = _one(_render(helm, "vmgen", "vmgen-system"), "Deployment")["spec"]["template"]["spec"][
            "containers"
        ]

        assert "--liveness=http://0.0.0.0:8081/healthz" in container["args"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert container["ports"] == [{"name": "health", "containerPort": 8081, "protocol": "TCP"}]

    def test_the_operator_learns_its_namespace_and_what_to_watch(self, helm: Path) -> None:
        rendered = _render(helm, "vmgen", "vmgen-system", "--set", "watchNamespaces={images,team-a}")
        (container,) = _one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}

        assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        assert env["VMGEN_NAMESPACES"] == "images,team-a"
        assert env["VMGEN_ARM_ENDPOINT"] == "https://management.azure.com"
        assert env["VMGEN_CREDENTIAL_SCOPE"] == "https://management.azure.com/.default"
        assert env["VMGEN_AUTHORITY"] == "https://login.microsoftonline.com"
        assert env["VMGEN_POLL_INTERVAL"] == "5"
        assert "--all-namespaces" not in container["args"]

    def test_a_sovereign_cloud_sets_the_endpoint_the_token_scope_and_the_authority(self, helm: Path) -> None:
        rendered = _render(
            helm, "vmgen", "vmgen-system",
            "--set", "operator.armEndpoint=https://management.usgovcloudapi.net",
            "--set", "operator.credentialScope=https://management.usgovcloudapi.net/.default",
            "--set", "operator.authority=https://login.microsoftonline.us",
        )  # fmt: skip
        (container,) = _one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item.get("value") for item in container["env"]}

        assert env["VMGEN_ARM_ENDPOINT"] == "https://management.usgovcloudapi.net"
        assert env["VMGEN_CREDENTIAL_SCOPE"] == "https://management.usgovcloudapi.net/.default"
        assert env["VMGEN_AUTHORITY"] == "https://login.microsoftonline.us"

    def test_values_reused_from_a_chart_without_a_credential_scope_leave_the_operators_default(
        self, helm: Path
    ) -> None:
        # `helm upgrade --reuse-values` takes the old release's values, without keys added since.
        rendered = _render(helm, "vmgen", "vmgen-system", "--set", "operator.credentialScope=null")
        (container,) = _one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item["value"] for item in container["env"] if "value" in item}

        assert "VMGEN_CREDENTIAL_SCOPE" not in env
        assert config.Config.from_env(env).credential_scope == config.PUBLIC_CREDENTIAL_SCOPE

    def test_workload_identity_labels_the_pod_and_annotates_the_service_account(self, helm: Path) -> None:
        rendered = _render(
            helm, "vmgen", "vmgen-system",
            "--set", "azureWorkloadIdentity.enabled=true",
            "--set", f"azureWorkloadIdentity.clientId={SUBSCRIPTION_ID}",
        )  # fmt: skip

        pod_labels = _one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
        assert pod_labels["azure.workload.identity/use"] == "true"
        annotations = _one(rendered, "ServiceAccount")["metadata"]["annotations"]
        assert annotations == {"azure.workload.identity/client-id": SUBSCRIPTION_ID}


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        pytest.param(
            ("--set", "watchNamespaces=images"),
            "at '/watchNamespaces': got string, want array",
            id="watchNamespaces as a string",
        ),
        pytest.param(
            ("--set", "watchNamespace={images}"),
            "additional properties 'watchNamespace' not allowed",
            id="a misspelled top-level key",
        ),
        pytest.param(
            ("--set", "azureWorkloadIdentity.enabled=true"),
            "at '/azureWorkloadIdentity/clientId': '' does not match pattern",
            id="workload identity without a client id",
        ),
        pytest.param(
            ("--set", "operator.armEndpoint=http://arm.local"),
            "at '/operator/armEndpoint': 'http://arm.local' does not match pattern '^https://'",
            id="an ARM endpoint without TLS",
        ),
        pytest.param(
            ("--set", "operator.credentialScope=https://management.usgovcloudapi.net"),
            "at '/operator/credentialScope': 'https://management.usgovcloudapi.net' does not match pattern",
            id="a credential scope without /.default",
        ),
        pytest.param(("--set-string", "replicas=2"), "/replicas", id="replicas as a string"),
        pytest.param(("--set", "replicas=0"), "/replicas", id="no replica"),
        pytest.param(("--set-string", "metrics.port=8080"), "/metrics/port", id="a metrics port as a string"),
        pytest.param(("--set", "metrics.enabled=yes"), "/metrics/enabled", id="metrics enabled as a string"),
        pytest.param(("--set", "crds.install=1"), "/crds/install", id="crds.install as a number"),
        pytest.param(
            ("--set", "metrics.serviceMonitor.interval=often"),
            "/metrics/serviceMonitor/interval",
            id="a scrape interval that is no duration",
        ),
    ],
)
def test_values_outside_the_schema_are_refused(helm: Path, values: Sequence[str], complaint: str) -> None:
    result = _helm_template(helm, "vmgen", "vmgen-system", *values)

    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def _can(control_plane: ControlPlane, account: str, verb: str, resource: str, namespace: str | None) -> bool:
    """The authorizer's yes or no. `kubectl auth can-i` exits 0 for yes and 1 for no; anything else (a
    typo in the resource, a server error) is not a "no" and fails the test instead of passing it."""
    scope = ["-n", namespace] if namespace else []
    result = control_plane.kubectl("auth", "can-i", verb, resource, *scope, f"--as={account}", check=False)
    answer = result.stdout.strip().split(" ", 1)[0]
    if (result.returncode, answer) == (0, "yes"):
        return True
    unknown = "doesn't have a resource type" in result.stderr  # a typo answers "no" with this warning
    if (result.returncode, answer) == (1, "no") and not unknown:
        return False
    raise AssertionError(
        f"kubectl auth can-i {verb} {resource} gave no answer: {result.stdout}{result.stderr}"
    )


class TestLeastPrivilege:
    """Install the rendered chart for real, then ask the authorizer what its ServiceAccount may do."""

    @staticmethod
    def _install(control_plane: ControlPlane, helm: Path, *, watched: int) -> tuple[str, str, list[str]]:
        release, namespace, namespaces = _release(control_plane, watched=watched)
        values = ("--set", "watchNamespaces={" + ",".join(namespaces) + "}") if namespaces else ()
        control_plane.kubectl("apply", "-f", "-", input=_render(helm, release, namespace, *values))
        return f"system:serviceaccount:{namespace}:{release}-vmgen", namespace, namespaces

    def test_serving_listed_namespaces_grants_access_there_only(
        self, control_plane: ControlPlane, helm: Path
    ) -> None:
        account, own, (watched,) = self._install(control_plane, helm, watched=1)
        _, other, _ = _release(control_plane)

        def can(verb: str, resource: str, namespace: str | None) -> bool:
            return _can(control_plane, account, verb, resource, namespace)

        assert can("watch", "vmgeneralizations.vmgen.io", watched)
        assert can("patch", "vmgeneralizations.vmgen.io/status", watched)
        assert can("create", "events", watched)
        assert can("get", "secrets", watched)
        assert can("create", "leases.coordination.k8s.io", own)
        assert can("list", "customresourcedefinitions.apiextensions.k8s.io", None)
        assert not can("get", "secrets", other)
        assert not can("watch", "vmgeneralizations.vmgen.io", other)
        assert not can("get", "secrets", own)
        assert not can("list", "secrets", watched)
        assert not can("delete", "vmgeneralizations.vmgen.io", watched)
        assert not can("update", "vmgeneralizations.vmgen.io", watched)
        assert not can("create", "leases.coordination.k8s.io", watched)
        assert not can("create", "pods", own)

    def test_serving_all_namespaces_still_withholds_everything_else(
        self, control_plane: ControlPlane, helm: Path
    ) -> None:
        account, own, _ = self._install(control_plane, helm, watched=0)
        _, elsewhere, _ = _release(control_plane)

        def can(verb: str, resource: str, namespace: str | None) -> bool:
            return _can(control_plane, account, verb, resource, namespace)

        assert can("watch", "vmgeneralizations.vmgen.io", elsewhere)
        assert can("patch", "vmgeneralizations.vmgen.io/status", elsewhere)
        assert can("get", "secrets", elsewhere)
        assert can("create", "leases.coordination.k8s.io", own)
        assert not can("list", "secrets", elsewhere)
        assert not can("watch", "secrets", elsewhere)
        assert not can("create", "leases.coordination.k8s.io", elsewhere)
        assert not can("list", "namespaces", None)
        assert can("get", "namespaces", None), "the namespace policy reads the allowed-scopes annotation"
        assert not can("delete", "vmgeneralizations.vmgen.io", elsewhere)
        assert not can("create", "customresourcedefinitions.apiextensions.k8s.io", None)
        assert not can("*", "*", elsewhere)
