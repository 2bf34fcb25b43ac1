"""The built kubectl applies objects to a CRD whose CEL rules the real apiserver enforces."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.testbed.kube.widgets import IMMUTABLE_MESSAGE, RANGE_MESSAGE, widget_manifest
from vmgen_testbed.kube import ControlPlane

pytestmark = pytest.mark.usefixtures("widget_crd")


def apply(control_plane: ControlPlane, manifest: dict[str, Any]) -> Any:
    return control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest), check=False)


def test_an_object_that_satisfies_the_cel_rule_is_created(control_plane: ControlPlane) -> None:
    manifest = widget_manifest(min_replicas=2, max_replicas=2)

    result = apply(control_plane, manifest)

    assert result.returncode == 0, result.stderr
    name = manifest["metadata"]["name"]
    assert control_plane.kubectl("get", "widget", name, "-o", "jsonpath={.spec.maxReplicas}").stdout == "2"


def test_an_object_that_breaks_the_cel_rule_is_rejected_with_the_rules_message(
    control_plane: ControlPlane,
) -> None:
    manifest = widget_manifest(min_replicas=5, max_replicas=1)

    result = apply(control_plane, manifest)

    assert result.returncode != 0
    assert RANGE_MESSAGE in result.stderr
    assert "Invalid value" in result.stderr
    name = manifest["metadata"]["name"]
    assert control_plane.kubectl("get", "widget", name, check=False).returncode != 0


def test_a_transition_rule_rejects_changing_an_immutable_field(control_plane: ControlPlane) -> None:
    manifest = widget_manifest(owner="team-a")
    assert apply(control_plane, manifest).returncode == 0

    manifest["spec"]["owner"] = "team-b"
    result = apply(control_plane, manifest)

    assert result.returncode != 0
    assert IMMUTABLE_MESSAGE in result.stderr
