"""`vmgen run` that cannot start says so in one line on stderr and exits non-zero, never a traceback.

The real command, as its own process, against the testbed's real kube-apiserver and ARM simulator (or
a closed loopback port where a server must be missing)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vmgen_testbed.paths import REPO_ROOT


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: nothing listens there


def vmgen_run(*, kubeconfig: Path | str, arm_endpoint: str, ca_bundle: str | None = None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VMGEN_", "AZURE_", "KUBERNETES_"))}
    env |= {
        "KUBECONFIG": str(kubeconfig),
        "VMGEN_ARM_ENDPOINT": arm_endpoint,
        "VMGEN_LEADER_ELECTION": "false",
    }
    if ca_bundle:
        env["VMGEN_CA_BUNDLE"] = ca_bundle
    done = subprocess.run(
        [sys.executable, "-m", "vmgen.cli", "run", "--all-namespaces"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stderr


def assert_one_line(code: int, stderr: str, *words: str) -> None:
    assert code != 0
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("vmgen: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def cluster(control_plane: Any) -> Any:
    control_plane.kubectl("apply", "-f", str(REPO_ROOT / "crds/vmgeneralization.yaml"))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "crd/vmgeneralizations.vmgen.io", "--timeout=60s"
    )
    return control_plane


class TestKubernetes:
    def test_a_missing_kubeconfig_is_one_line(self, tmp_path: Path, arm: Any) -> None:
        code, stderr = vmgen_run(kubeconfig=tmp_path / "nothing-here", arm_endpoint=arm.base_url)

        assert_one_line(code, stderr, "cannot load the Kubernetes configuration")

    def test_a_kubeconfig_that_is_not_one_is_one_line(self, tmp_path: Path, arm: Any) -> None:
        broken = tmp_path / "kubeconfig"
        broken.write_text("this: [is not\n")

        code, stderr = vmgen_run(kubeconfig=broken, arm_endpoint=arm.base_url)

        assert_one_line(code, stderr, "cannot load the Kubernetes configuration")

    def test_an_unreachable_api_server_is_one_line(self, tmp_path: Path, arm: Any) -> None:
        port = closed_port()
        config = tmp_path / "kubeconfig"
        config.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters: [{{name: k, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
            "users: [{name: u, user: {token: not-a-real-token}}]\n"
            "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
        )

        code, stderr = vmgen_run(kubeconfig=config, arm_endpoint=arm.base_url)

        assert_one_line(
            code, stderr, "cannot reach the Kubernetes API server", f"127.0.0.1:{port}", "refused"
        )

    def test_credentials_the_api_server_refuses_are_one_line(
        self, tmp_path: Path, cluster: Any, arm: Any
    ) -> None:
        import yaml

        config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
        config["users"] = [{"name": u["name"], "user": {"token": "forged"}} for u in config["users"]]
        forged = tmp_path / "kubeconfig"
        forged.write_text(yaml.safe_dump(config))

        code, stderr = vmgen_run(kubeconfig=forged, arm_endpoint=arm.base_url, ca_bundle=str(arm.ca_bundle))

        assert_one_line(code, stderr, "refused the operator's credentials", "401")


class TestAzureResourceManager:
    def test_an_unreachable_arm_endpoint_is_one_line(self, cluster: Any) -> None:
        port = closed_port()

        code, stderr = vmgen_run(kubeconfig=cluster.kubeconfig, arm_endpoint=f"https://127.0.0.1:{port}")

        assert_one_line(code, stderr, "cannot reach the Azure Resource Manager endpoint", f"127.0.0.1:{port}")

    def test_an_arm_endpoint_with_an_untrusted_certificate_is_one_line(self, cluster: Any, arm: Any) -> None:
        code, stderr = vmgen_run(kubeconfig=cluster.kubeconfig, arm_endpoint=arm.base_url)  # no CA bundle

        assert_one_line(code, stderr, "not trusted", "--ca-bundle")

    def test_a_plain_http_arm_endpoint_is_one_line(self, cluster: Any) -> None:
        code, stderr = vmgen_run(kubeconfig=cluster.kubeconfig, arm_endpoint="http://127.0.0.1:1")

        assert_one_line(code, stderr, "https://")
