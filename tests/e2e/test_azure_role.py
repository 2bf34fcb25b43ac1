"""docs/azure-role.md lists exactly the Azure actions vmgen uses: a job's requests, as the ARM simulator
logged them and mapped to their RBAC actions, are that list (nothing missing, nothing extra)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.e2e.conftest import World, vm_requests
from tests.e2e.test_copy import COPY_TIMEOUT, copy_manifest
from vmgen.domain import azure_actions
from vmgen_testbed.paths import REPO_ROOT

LINKED_ACCESS = {
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/networkInterfaces/join/action",
}
"""Azure checks these when the NIC's PUT names the subnet and the VM's PUT names the NIC (linked access
checks); they are no request of their own, so no request log shows them."""


def documented_roles() -> list[dict[str, Any]]:
    """The JSON role definitions of docs/azure-role.md, in order: the in-place role, then the copy role."""
    text = (REPO_ROOT / "docs/azure-role.md").read_text()
    blocks = re.findall(r"```json\n(.*?)\n```", text, re.DOTALL)
    assert len(blocks) == 2, "docs/azure-role.md defines the in-place role and the copy role"
    return [json.loads(block) for block in blocks]


def documented_role() -> dict[str, Any]:
    return documented_roles()[0]


def actions_sent(world: World) -> set[str]:
    return {azure_actions.action_for(r.method, r.path) for r in world.arm.requests() if r.api == "arm"}


def test_the_documented_role_is_exactly_what_a_job_sends(world: World, linux_vm: Any) -> None:
    role = documented_role()
    vm = linux_vm()
    world.arm.clear_requests()
    world.linux_job("role-check", vm)  # no pinned host keys: Run Command reads them, the widest job

    world.wait_ready("role-check")

    sent = actions_sent(world)
    assert vm_requests(world.arm, vm), "the job reached Azure"
    assert sent == set(role["Actions"])
    assert "Microsoft.Compute/virtualMachines/start/action" not in role["Actions"]
    assert role["NotActions"] == [] and role["DataActions"] == []


def test_the_copy_role_is_exactly_what_the_widest_copy_job_adds(
    world: World, linux_vm: Any, linux_copies: dict[str, Any]
) -> None:
    """stopSourceFirst, a managed image, host keys read through Run Command, and deletionPolicy Delete
    exercised by deleting the resource: every request a `source: Copy` job can send."""
    in_place, copy_role = documented_roles()
    vm = linux_vm()
    world.arm.clear_requests()
    manifest = copy_manifest(world, "role-copy", vm, stopSourceFirst=True)
    manifest["spec"]["deletionPolicy"] = "Delete"
    world.apply(manifest)
    body = world.wait_ready("role-copy", timeout=COPY_TIMEOUT)
    assert body["status"]["outputs"]["copy"]["state"] == "Deleted"
    world.kubectl("delete", "vmgen", "role-copy", "--timeout=90s")

    sent = actions_sent(world)
    assert "Microsoft.Compute/snapshots/delete" in sent, "the resource's deletion removed its snapshots"
    assert sent | LINKED_ACCESS == set(in_place["Actions"]) | set(copy_role["Actions"])
    assert not set(in_place["Actions"]) & set(copy_role["Actions"]), "the copy role lists only what it adds"
    assert copy_role["NotActions"] == [] and copy_role["DataActions"] == []
