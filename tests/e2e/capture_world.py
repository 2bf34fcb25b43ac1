"""What the capture e2e files share: a gallery and image definition per test, the capture manifest, and
readers of the simulator's request log (which PUTs happened, in what order, and whether anything but a
read did).

Each test gets its own gallery (a fresh name) so that versions of one test never meet another's; the
VM comes from the `linux_vm` fixture (a Standard, Hyper-V V2 Linux VM in westeurope) unless a test
seeds another one over it.
"""

from __future__ import annotations

import hashlib
import tarfile
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.conftest import World

REGIONS = ("westeurope", "northeurope")
_READ_ONLY_POSTS = ("runCommand",)
"""Run Command is a POST, but the preflight's script only reads (host keys, waagent state)."""


def gallery(world: World, vm: Any, **definition: Any) -> dict[str, Any]:
    """Seed a gallery with an image definition `web` (default: fits the VM) and return the
    `spec.capture.galleryImageVersion` that publishes version 1.0.0 of it to REGIONS."""
    name = f"g{uuid.uuid4().hex[:8]}"
    world.arm.seed_gallery_image(
        subscription_id=vm.subscription_id,
        resource_group=vm.resource_group,
        gallery=name,
        image="web",
        **{"hyper_v_generation": "V2", **definition},
    )
    return {
        "resourceGroup": vm.resource_group,
        "gallery": name,
        "imageDefinition": "web",
        "version": "1.0.0",
        "targetRegions": [{"name": region} for region in REGIONS],
    }


def capture_job(
    world: World,
    name: str,
    vm: Any,
    *,
    version: dict[str, Any] | None = None,
    managed_image: bool = True,
    snapshot: bool = True,
    secrets: bool = True,
    **spec: Any,
) -> dict[str, Any]:
    """Secrets (unless made already) and a manifest with the capture fields, applied."""
    if secrets:
        world.secrets(vm)
    manifest = world.linux_manifest(name, vm, host_keys=list(vm.sandbox.host_keys))
    capture: dict[str, Any] = {}
    if managed_image:
        capture["managedImage"] = {"name": f"{vm.name}-img"}
    if version is not None:
        capture["galleryImageVersion"] = version
    if capture:
        manifest["spec"]["capture"] = capture
    if snapshot:
        manifest["spec"]["preserveSource"] = {"snapshot": True}
    manifest["spec"].update(spec)
    world.apply(manifest)
    return manifest


def arm_requests(world: World) -> list[Any]:
    """Every ARM request since the log was cleared (Entra's token requests left out)."""
    return [r for r in world.arm.requests() if r.api == "arm"]


def operations(world: World) -> list[str]:
    return [r.operation for r in arm_requests(world)]


def writes(world: World) -> list[Any]:
    """The requests that may change something in Azure: every method but GET, Run Command's read aside."""
    return [r for r in arm_requests(world) if r.method != "GET" and r.operation not in _READ_ONLY_POSTS]


def count(world: World, operation: str) -> int:
    return operations(world).count(operation)


def guest_files(vm: Any) -> dict[str, str]:
    """Digests of what deprovision changes in the guest: users, host keys, waagent's state, home."""
    rootfs = Path(vm.sandbox.rootfs)
    paths = [
        rootfs / "etc/passwd",
        rootfs / "etc/shadow",
        rootfs / "var/lib/waagent/ovf-env.xml",
        *sorted((rootfs / "etc/ssh").glob("ssh_host_*")),
        *sorted((rootfs / "home").rglob("*")),
    ]
    return {
        str(p.relative_to(rootfs)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in paths
        if p.exists()
    }


def snapshot_files(world: World, snapshot_id: str) -> set[str]:
    """The paths a snapshot of a Linux guest's OS disk holds (its overlay's upper layer)."""
    content = world.arm.disk_content(snapshot_id)
    assert content is not None, f"snapshot {snapshot_id} holds no disk content"
    with tarfile.open(content) as tar:
        return {member.name.removeprefix("./") for member in tar.getmembers()}


def step_state(body: dict[str, Any], step: str) -> str | None:
    return body.get("status", {}).get("steps", {}).get(step, {}).get("state")


def outputs(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = body.get("status", {}).get("outputs", {})
    return result
