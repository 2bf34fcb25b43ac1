"""The Argo CD health check documented in docs/argocd.md maps a VMGeneralization's status to Argo CD's
health: Progressing until Ready, Healthy on Succeeded, Degraded on Failed, Suspended while a person must
confirm a deprovision. Succeeded and Failed are terminal, so they win over a lagging observedGeneration:
the operator never looks at a finished resource again, and an edit to its spec must not leave it
Progressing for ever.

The Lua is taken from the doc itself, so the doc cannot drift from what is tested, and runs on Lua 5.1,
the language level of gopher-lua that Argo CD embeds. Objects reach the script as Lua tables, as in Argo
CD.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from lupa import lua51

from vmgen_testbed.paths import REPO_ROOT

HEALTH_KEY = "resource.customizations.health.vmgen.io_VMGeneralization"


def _documented_script() -> str:
    doc = (REPO_ROOT / "docs" / "argocd.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", doc, flags=re.DOTALL)]
    (config_map,) = [block for block in blocks if block.get("kind") == "ConfigMap"]
    script: str = config_map["data"][HEALTH_KEY]
    return script


def _health(body: dict[str, Any]) -> tuple[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    check = runtime.eval(f"function(obj)\n{_documented_script()}\nend")
    result = check(runtime.table_from(body, recursive=True))
    return str(result["status"]), str(result["message"])


def _resource(status: dict[str, Any] | None, *, generation: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "vmgen.io/v1alpha1",
        "kind": "VMGeneralization",
        "metadata": {"name": "web-golden", "namespace": "images", "generation": generation},
        "spec": {"vm": {"name": "web-01"}},
    }
    if status is not None:
        body["status"] = status
    return body


def _ready(status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message, "observedGeneration": 1}


@pytest.mark.parametrize(
    ("status", "generation", "health"),
    [
        pytest.param(None, 1, "Progressing", id="a resource the operator has not seen yet is Progressing"),
        pytest.param(
            {
                "phase": "Deprovisioning",
                "observedGeneration": 1,
                "conditions": [_ready("False", "Deprovisioning", "")],
            },
            1,
            "Progressing",
            id="a resource mid-workflow is Progressing",
        ),
        pytest.param(
            {
                "phase": "Succeeded",
                "observedGeneration": 1,
                "conditions": [_ready("True", "Generalized", "done")],
            },
            1,
            "Healthy",
            id="a succeeded resource that is Ready is Healthy",
        ),
        pytest.param(
            {
                "phase": "Succeeded",
                "observedGeneration": 1,
                "conditions": [_ready("True", "Generalized", "done")],
            },
            2,
            "Healthy",
            id="a succeeded resource whose spec was edited after it finished stays Healthy",
        ),
        pytest.param(
            {
                "phase": "Failed",
                "observedGeneration": 1,
                "conditions": [_ready("False", "VMNotFound", "gone")],
            },
            1,
            "Degraded",
            id="a failed resource is Degraded",
        ),
        pytest.param(
            {
                "phase": "Failed",
                "observedGeneration": 1,
                "conditions": [_ready("False", "VMNotFound", "gone")],
            },
            2,
            "Degraded",
            id="a failed resource whose spec was edited after it finished stays Degraded",
        ),
        pytest.param(
            {
                "phase": "Deprovisioning",
                "observedGeneration": 1,
                "conditions": [_ready("False", "Deprovisioning", "")],
            },
            2,
            "Progressing",
            id="a running resource whose newest spec the operator has not seen is Progressing",
        ),
        pytest.param(
            {
                "phase": "Deprovisioning",
                "observedGeneration": 1,
                "conditions": [
                    _ready("False", "DeprovisionOutcomeUnknown", "lost the connection"),
                    {"type": "DeprovisionOutcomeUnknown", "status": "True", "message": "lost the connection"},
                ],
            },
            1,
            "Suspended",
            id="a resource waiting for a person to confirm deprovision is Suspended",
        ),
    ],
)
def test_the_health_check_follows_the_status(
    status: dict[str, Any] | None, generation: int, health: str
) -> None:
    assert _health(_resource(status, generation=generation))[0] == health


def test_a_failed_resource_shows_the_message_a_person_can_act_on() -> None:
    status = {
        "phase": "Failed",
        "observedGeneration": 1,
        "conditions": [_ready("False", "VMNotRunning", "start the VM so it can be deprovisioned over SSH")],
    }

    assert _health(_resource(status)) == (
        "Degraded",
        "Failed: start the VM so it can be deprovisioned over SSH",
    )


def test_a_running_resource_shows_the_ready_message() -> None:
    status = {
        "phase": "Deprovisioning",
        "observedGeneration": 1,
        "conditions": [_ready("False", "Deprovisioning", "running waagent -deprovision+user over SSH")],
    }

    assert _health(_resource(status)) == (
        "Progressing",
        "Deprovisioning: running waagent -deprovision+user over SSH",
    )


def test_a_suspended_resource_says_how_to_confirm() -> None:
    status = {
        "phase": "Deprovisioning",
        "conditions": [
            {"type": "DeprovisionOutcomeUnknown", "status": "True", "message": "guest refuses logins"}
        ],
    }

    assert "vmgen.io/confirm-deprovisioned=true" in _health(_resource(status))[1]


@pytest.mark.parametrize(
    ("phase", "ready", "health"),
    [
        pytest.param("PreflightComplete", "True", "Healthy", id="a clean preflight is Healthy"),
        pytest.param("PreflightComplete", "False", "Degraded", id="a preflight with blockers is Degraded"),
        pytest.param("Snapshotting", "False", "Progressing", id="snapshotting is Progressing"),
        pytest.param("Capturing", "False", "Progressing", id="capturing is Progressing"),
        pytest.param("Replicating", "False", "Progressing", id="replicating is Progressing"),
    ],
)
def test_the_capture_and_preflight_phases(phase: str, ready: str, health: str) -> None:
    status = {"phase": phase, "observedGeneration": 1, "conditions": [_ready(ready, "R", "findings listed")]}

    assert _health(_resource(status)) == (health, f"{phase}: findings listed")


def test_a_resource_awaiting_approval_is_suspended_and_says_how_to_approve() -> None:
    status = {
        "phase": "AwaitingApproval",
        "observedGeneration": 1,
        "conditions": [
            _ready("False", "AwaitingApproval", "waiting"),
            {"type": "AwaitingApproval", "status": "True", "message": "waiting"},
        ],
    }

    health, message = _health(_resource(status))
    assert health == "Suspended"
    assert "vmgen.io/approve=true" in message
