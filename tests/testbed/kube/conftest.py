"""Fixtures of the kube contract tests: the Widget CRD, applied once per session."""

from __future__ import annotations

import pytest
import yaml

from tests.testbed.kube.widgets import GROUP, PLURAL, WIDGET_CRD
from vmgen_testbed.kube import ControlPlane


@pytest.fixture(scope="session")
def widget_crd(control_plane: ControlPlane) -> None:
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(WIDGET_CRD))
    control_plane.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s")
