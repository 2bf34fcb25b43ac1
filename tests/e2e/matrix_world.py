"""What the kill and fault matrices share: one namespace and one batch of VMs per module, many jobs at once.

Both matrices run dozens of independent cases; one job per case, all applied at once to the session's
operator, is what keeps them inside their time budget on a two-core machine. The function-scoped
`world`, `linux_vm` and `windows_vm` fixtures cannot serve a module-scoped batch, so this module builds
the same things from the session-scoped pieces (`sandboxes`, `arm`, `windows_ca`) and tears them down at
the end of the module.

Traps avoided: every job has its own Secrets (each sandbox has its own key, each Windows guest its own
password), so no job reads another's; every latency is scoped to the job's own VM (`vm=`) unless a
resource the operator names itself (snapshots, images) cannot be scoped, and then it only slows, never
breaks, the other jobs; one `kubectl get vmgen` lists every job of the batch, instead of one call per
job, so a driver loop sees a transient state while it lasts.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import capture_world as cw
from tests.e2e import windows_jobs
from tests.e2e.conftest import World, vm_requests
from vmgen_testbed.linux import sandbox
from vmgen_testbed.linux_fixtures import TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION_ID, TestVm
from vmgen_testbed.windows_fixtures import (
    WINDOWS_RESOURCE_GROUP,
    WINDOWS_SUBSCRIPTION_ID,
    TestWindowsVm,
    seed_windows_guest,
    start_windows_guest,
)

TERMINAL = ("Succeeded", "Failed")


class Batch:
    """A module's namespace, its VMs and its jobs; `close()` removes the VMs' guests."""

    def __init__(self, world: World, sandboxes: Any, windows_ca: Any, tmp: pytest.TempPathFactory) -> None:
        self.world = world
        self._sandboxes = sandboxes
        self._windows_ca = windows_ca
        self._tmp = tmp
        self._linux: list[Any] = []
        self._windows: list[Any] = []
        self._spare: list[TestVm] = []  # Linux VMs made ahead, in parallel (`reserve_linux`)
        self._secrets: list[dict[str, Any]] = []  # applied with the jobs, in one call (`apply`)
        arm = world.arm
        credentials = {"AZURE_TENANT_ID": arm.tenant_id, "AZURE_CLIENT_ID": arm.client_id}
        self._secret("azure-sp", "Opaque", {**credentials, "AZURE_CLIENT_SECRET": arm.client_secret})

    def _secret(self, name: str, kind: str, data: dict[str, str | bytes]) -> None:
        encoded = {
            key: base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode()
            for key, value in data.items()
        }
        self._secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": self.world.namespace},
                "type": kind,
                "data": encoded,
            }
        )

    def apply(self, manifests: list[dict[str, Any]]) -> None:
        """Every Secret made so far and these jobs, in one `kubectl apply` (one call per job would let
        the first jobs run for a minute before the last ones exist)."""
        self.world.apply({"apiVersion": "v1", "kind": "List", "items": [*self._secrets, *manifests]})
        self._secrets.clear()

    def reserve_linux(self, count: int) -> None:
        """Make `count` Linux VMs at once (a few threads: each boot mostly waits for its sshd)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            self._spare += list(pool.map(lambda _: self._new_linux_vm(), range(count)))

    # ---- VMs ------------------------------------------------------------------------------------

    def linux_vm(self) -> TestVm:
        return self._spare.pop() if self._spare else self._new_linux_vm()

    def _new_linux_vm(self) -> TestVm:
        for attempt in range(3):
            name = f"vm-{uuid.uuid4().hex[:8]}"
            try:
                guest = self._sandboxes.create(name, username="azureuser")
                break
            except sandbox.SandboxError:
                # Seen on the shared CI machine: another session's start-up clean-up removed the new
                # network namespace before its sandbox started. One lost sandbox must not fail the batch.
                if attempt == 2:
                    raise
        self._linux.append(guest)
        self.world.arm.seed_vm(
            subscription_id=TEST_SUBSCRIPTION_ID,
            resource_group=TEST_RESOURCE_GROUP,
            name=name,
            os_type="Linux",
            guest=guest,
        )
        return TestVm(
            sandbox=guest, subscription_id=TEST_SUBSCRIPTION_ID, resource_group=TEST_RESOURCE_GROUP, name=name
        )

    def windows_vm(self, *, sysprep_seconds: float = 0.3) -> TestWindowsVm:
        name = f"win-{uuid.uuid4().hex[:8]}"
        guest, password = start_windows_guest(
            name=name,
            ca=self._windows_ca.ca,
            state_dir=self._tmp.mktemp("winrm"),
            sysprep_seconds=sysprep_seconds,
        )
        self._windows.append(guest)
        seed_windows_guest(
            self.world.arm,
            guest,
            subscription_id=WINDOWS_SUBSCRIPTION_ID,
            resource_group=WINDOWS_RESOURCE_GROUP,
        )
        return TestWindowsVm(
            guest=guest,
            subscription_id=WINDOWS_SUBSCRIPTION_ID,
            resource_group=WINDOWS_RESOURCE_GROUP,
            name=name,
            username="azureuser",
            password=password,
            ca_path=self._windows_ca.path,
        )

    def close(self) -> None:
        for guest in self._linux:
            self._sandboxes.destroy(guest)
        for windows in self._windows:
            windows.endpoint.stop()

    # ---- manifests (each job with its own Secrets) ------------------------------------------------

    def linux_manifest(self, name: str, vm: TestVm, *, capture: bool = False) -> dict[str, Any]:
        self._secret(f"ssh-{name}", "kubernetes.io/ssh-auth", {"ssh-privatekey": vm.sandbox.private_key})
        manifest = self.world.linux_manifest(
            name, vm, ssh_secret=f"ssh-{name}", host_keys=list(vm.sandbox.host_keys)
        )
        if capture:
            manifest["spec"]["preserveSource"] = {"snapshot": True}
            manifest["spec"]["capture"] = {
                "managedImage": {"name": f"{vm.name}-img"},
                "galleryImageVersion": cw.gallery(self.world, vm),
            }
        return manifest

    def windows_manifest(self, name: str, vm: TestWindowsVm, *, transport: str) -> dict[str, Any]:
        login: dict[str, str | bytes] = {"username": vm.username, "password": vm.password}
        self._secret(f"admin-{name}", "kubernetes.io/basic-auth", login)
        manifest = windows_jobs.windows_manifest(self.world, name, vm, transport=transport)
        if transport == "WinRM":
            self._secret(f"ca-{name}", "Opaque", {"ca.crt": Path(vm.ca_path).read_bytes()})
            manifest["spec"]["winrm"]["credentialsSecretRef"] = {"name": f"admin-{name}"}
            manifest["spec"]["winrm"]["caSecretRef"] = {"name": f"ca-{name}"}
        return manifest

    # ---- reading the batch ------------------------------------------------------------------------

    def bodies(self) -> dict[str, dict[str, Any]]:
        """Every job of the namespace by name, from one list call."""
        items = json.loads(self.world.kubectl("get", "vmgen", "-o", "json").stdout)["items"]
        return {item["metadata"]["name"]: item for item in items}

    def wait_all_terminal(self, names: list[str], *, timeout: float) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        bodies: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            bodies = self.bodies()
            if all(phase(bodies.get(name, {})) in TERMINAL for name in names):
                return bodies
            time.sleep(0.3)
        return bodies  # the cases still running fail on their own, each with its status


@contextmanager
def batch(world: World, sandboxes: Any, windows_ca: Any, tmp: pytest.TempPathFactory) -> Iterator[Batch]:
    made = Batch(world, sandboxes, windows_ca, tmp)
    try:
        yield made
    finally:
        made.close()


def module_world(control_plane: Any, arm: Any, operator: Any, prefix: str) -> World:
    if not operator.running:
        operator.start()
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", namespace)
    return World(control_plane=control_plane, arm=arm, operator=operator, namespace=namespace)


def phase(body: dict[str, Any]) -> str | None:
    found: str | None = body.get("status", {}).get("phase")
    return found


def step_state(body: dict[str, Any], step: str) -> str | None:
    found: str | None = body.get("status", {}).get("steps", {}).get(step, {}).get("state")
    return found


def ready(body: dict[str, Any]) -> dict[str, Any]:
    for item in body.get("status", {}).get("conditions", []):
        if item["type"] == "Ready":
            return dict(item)
    return {}


def operations(arm: Any, vm: Any) -> list[str]:
    return [r.operation for r in vm_requests(arm, vm)]


def operation_paths(arm: Any, started: Callable[[Any], bool]) -> set[str]:
    """The poll paths of the long-running operations that requests matching `started` began (their
    Azure-AsyncOperation and Location answers): a poll names only its operation, never the VM."""
    paths: set[str] = set()
    for record in arm.requests():
        if record.api == "arm" and started(record):
            for header in ("Azure-AsyncOperation", "Location"):
                url = record.response_headers.get(header)
                if url:
                    paths.add(url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0].lower())
    return {f"/{path}" for path in paths}


def selected(request: pytest.FixtureRequest) -> set[str]:
    """The test ids (parametrized) and test names (plain) of this module that the session will run, so
    that `pytest ...::test[case]` or `-k` starts only the jobs those tests look at."""
    chosen: set[str] = set()
    for item in request.session.items:
        if getattr(item, "module", None) is not request.module:
            continue
        callspec = getattr(item, "callspec", None)
        chosen.add(callspec.id if callspec is not None else getattr(item, "originalname", item.name))
    return chosen
