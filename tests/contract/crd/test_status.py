"""The status schema is exactly the shape the operator writes: it round-trips untouched, anything else
is pruned, and only the status subresource can change it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.contract.crd.resources import CRD_PATH, apply, get, linux_manifest
from vmgen_testbed.kube import ControlPlane

pytestmark = pytest.mark.usefixtures("vmgen_crd")

STEP_FIELDS = {
    "state",
    "startedAt",
    "finishedAt",
    "attempts",
    "message",
    "continuationToken",
    "retries",
    "unstartedRuns",
}

OPERATOR_STATUS: dict[str, Any] = {
    "phase": "ShuttingDown",
    "observedGeneration": 1,
    "vm": {
        "id": "/subscriptions/dedb2ab1-9b20-43d4-b620-1f389fe925be/resourceGroups/rg-images"
        "/providers/Microsoft.Compute/virtualMachines/web-01",
        "osType": "Linux",
        "powerState": "deallocating",
        "osState": "",
    },
    "steps": {
        "validate": {
            "state": "Succeeded",
            "startedAt": "2025-01-01T10:00:00Z",
            "finishedAt": "2025-01-01T10:00:01Z",
        },
        "deprovision": {
            "state": "Succeeded",
            "startedAt": "2025-01-01T10:00:01Z",
            "finishedAt": "2025-01-01T10:00:40Z",
            "attempts": 1,
            "message": "waagent -deprovision+user finished",
        },
        "shutdown": {
            "state": "Running",
            "startedAt": "2025-01-01T10:00:41Z",
            "continuationToken": "eyJ0b2tlbiI6",
        },
        "generalize": {"state": "Pending"},
        "capture": {"state": "Skipped"},
    },
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "ShuttingDown",
            "message": "deallocating the VM",
            "observedGeneration": 1,
            "lastTransitionTime": "2025-01-01T10:00:00Z",
        },
        {
            "type": "Deprovisioned",
            "status": "True",
            "reason": "DeprovisionSucceeded",
            "message": "waagent finished",
            "observedGeneration": 1,
            "lastTransitionTime": "2025-01-01T10:00:40Z",
        },
    ],
    "startedAt": "2025-01-01T10:00:00Z",
}


def _patch_status(control_plane: ControlPlane, manifest: dict[str, Any], status: dict[str, Any]) -> Any:
    metadata = manifest["metadata"]
    return control_plane.kubectl(
        "patch", "vmgeneralizations.vmgen.io", metadata["name"], "-n", metadata["namespace"],
        "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}), check=False,
    )  # fmt: skip


def test_the_status_the_operator_writes_round_trips_unchanged(
    control_plane: ControlPlane, namespace: str
) -> None:
    manifest = linux_manifest(namespace)
    assert apply(control_plane, manifest).returncode == 0

    result = _patch_status(control_plane, manifest, OPERATOR_STATUS)

    assert result.returncode == 0, result.stderr
    assert get(control_plane, manifest)["status"] == OPERATOR_STATUS


def test_fields_outside_the_status_schema_are_pruned(control_plane: ControlPlane, namespace: str) -> None:
    manifest = linux_manifest(namespace)
    assert apply(control_plane, manifest).returncode == 0

    result = _patch_status(
        control_plane,
        manifest,
        {
            "phase": "Validating",
            "secret": "s3cr3t",
            "steps": {"validate": {"state": "Running", "password": "x"}},
        },
    )

    assert result.returncode == 0, result.stderr
    assert get(control_plane, manifest)["status"] == {
        "phase": "Validating",
        "steps": {"validate": {"state": "Running"}},
    }


@pytest.mark.parametrize(
    ("status", "message"),
    [
        pytest.param({"phase": "Done"}, 'status.phase: Unsupported value: "Done"', id="an unknown phase"),
        pytest.param(
            {"steps": {"shutdown": {"state": "Maybe"}}},
            'status.steps.shutdown.state: Unsupported value: "Maybe"',
            id="an unknown step state",
        ),
        pytest.param(
            {"conditions": [{"type": "Ready", "status": "Yes"}]},
            'status.conditions[0].status: Unsupported value: "Yes"',
            id="a condition status other than True, False or Unknown",
        ),
        pytest.param(
            {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}]},
            'status.conditions[1]: Duplicate value: {"type":"Ready"}',
            id="two conditions of one type",
        ),
        pytest.param(
            {"startedAt": "yesterday"},
            'status.startedAt: Invalid value: "yesterday"',
            id="a timestamp that is not RFC 3339",
        ),
    ],
)
def test_a_status_outside_the_contract_is_refused(
    control_plane: ControlPlane, namespace: str, status: dict[str, Any], message: str
) -> None:
    manifest = linux_manifest(namespace)
    assert apply(control_plane, manifest).returncode == 0

    result = _patch_status(control_plane, manifest, status)

    assert result.returncode != 0
    assert message in result.stderr


def test_status_sent_with_the_spec_is_ignored(control_plane: ControlPlane, namespace: str) -> None:
    manifest = linux_manifest(namespace)
    manifest["status"] = {"phase": "Succeeded"}

    assert apply(control_plane, manifest).returncode == 0

    assert "status" not in get(control_plane, manifest)


def test_a_status_update_does_not_bump_the_generation(control_plane: ControlPlane, namespace: str) -> None:
    manifest = linux_manifest(namespace)
    assert apply(control_plane, manifest).returncode == 0

    assert _patch_status(control_plane, manifest, {"phase": "Validating"}).returncode == 0

    assert get(control_plane, manifest)["metadata"]["generation"] == 1


class TestTheSchemaFile:
    """Static checks of crds/vmgeneralization.yaml that the API server would not flag."""

    @staticmethod
    def _schema() -> dict[str, Any]:
        crd = yaml.safe_load(CRD_PATH.read_text())
        (version,) = crd["spec"]["versions"]
        schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
        return schema

    def test_no_part_of_the_schema_preserves_unknown_fields(self) -> None:
        assert "x-kubernetes-preserve-unknown-fields" not in CRD_PATH.read_text()

    def test_the_status_has_exactly_the_fields_the_operator_writes(self) -> None:
        status = self._schema()["properties"]["status"]["properties"]

        assert set(status) == {
            "phase",
            "observedGeneration",
            "vm",
            "steps",
            "conditions",
            "startedAt",
            "completedAt",
            "outputs",
        }
        assert set(status["outputs"]["properties"]) == {
            "snapshots",
            "managedImageId",
            "galleryImageVersionId",
            "replication",
            "findings",
            "copy",
        }
        assert set(status["vm"]["properties"]) == {"id", "osType", "powerState", "osState"}
        steps = status["steps"]["properties"]
        assert set(steps) == {
            "validate",
            "preflight",
            "snapshot",
            "approval",
            "deprovision",
            "shutdown",
            "generalize",
            "capture",
            "publish",
            "stopSource",
            "startSource",
            "copy",
            "deleteCopy",
        }
        deprovision_only = {"lookedAt", "hostKeys", "unreachableSince"}  # the look and the reach (issue 10)
        assert set(steps["deprovision"]["properties"]) == STEP_FIELDS | deprovision_only
        assert all(
            set(step["properties"]) == STEP_FIELDS for name, step in steps.items() if name != "deprovision"
        )
        condition = status["conditions"]["items"]["properties"]
        assert set(condition) == {
            "type",
            "status",
            "reason",
            "message",
            "observedGeneration",
            "lastTransitionTime",
        }
