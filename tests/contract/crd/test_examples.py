"""Every manifest in examples/ is accepted by the API server as written (server-side dry run), and the
examples agree with each other on the Secrets they name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from vmgen_testbed.kube import ControlPlane
from vmgen_testbed.paths import REPO_ROOT

pytestmark = pytest.mark.usefixtures("vmgen_crd")

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_the_examples_folder_holds_the_documented_manifests() -> None:
    assert {path.name for path in EXAMPLES} >= {
        "linux.yaml",
        "secrets.yaml",
        "windows-winrm.yaml",
        "windows-runcommand.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_an_example_applies_cleanly_with_a_server_side_dry_run(
    control_plane: ControlPlane, path: Path
) -> None:
    namespaces = {doc["metadata"].get("namespace") for doc in _documents(path)} - {None}
    for namespace in namespaces:  # a dry run does not create the Namespace the example declares
        control_plane.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        )

    result = control_plane.kubectl("apply", "--dry-run=server", "-f", str(path), check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(_documents(path))


def test_the_linux_example_names_the_secrets_that_secrets_yaml_creates() -> None:
    (linux,) = _documents(REPO_ROOT / "examples" / "linux.yaml")
    secrets = {
        doc["metadata"]["name"]: doc
        for doc in _documents(REPO_ROOT / "examples" / "secrets.yaml")
        if doc["kind"] == "Secret"
    }

    ssh = secrets[linux["spec"]["ssh"]["privateKeySecretRef"]["name"]]
    azure = secrets[linux["spec"]["azure"]["credentialsSecretRef"]["name"]]

    assert ssh["type"] == "kubernetes.io/ssh-auth"
    assert set(ssh["stringData"]) == {"ssh-privatekey"}
    assert set(azure["stringData"]) == {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"}
    assert {doc["metadata"]["namespace"] for doc in secrets.values()} == {linux["metadata"]["namespace"]}
