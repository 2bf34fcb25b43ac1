"""docs/azure-role.md lists exactly the Azure actions vmgen uses: a job's requests, as the ARM simulator
logged them and mapped to their RBAC actions, are that list (nothing missing, nothing extra)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.e2e.conftest import World, vm_requests
from vmgen.domain import azure_actions
from vmgen_testbed.paths import REPO_ROOT


def documented_role() -> dict[str, Any]:
    text = (REPO_ROOT / "docs/azure-role.md").read_text()
    block = re.search(r"```json\n(.*?)\n```", text, re.DOTALL)
    assert block is not None, "docs/azure-role.md has no JSON role definition"
    role: dict[str, Any] = json.loads(block.group(1))
    return role


def test_the_documented_role_is_exactly_what_a_job_sends(world: World, linux_vm: Any) -> None:
    role = documented_role()
    vm = linux_vm()
    world.arm.clear_requests()
    world.linux_job("role-check", vm)  # no pinned host keys: Run Command reads them, the widest job

    world.wait_ready("role-check")

    sent = {azure_actions.action_for(r.method, r.path) for r in world.arm.requests() if r.api == "arm"}
    assert vm_requests(world.arm, vm), "the job reached Azure"
    assert sent == set(role["Actions"])
    assert "Microsoft.Compute/virtualMachines/start/action" not in role["Actions"]
    assert role["NotActions"] == [] and role["DataActions"] == []
