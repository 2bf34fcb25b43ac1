"""The kill matrix's table: which points each path has, how a job is held at its point, how it is seen.

The points are generated from the operator's own step list (`Spec.steps` of each path's manifest): for
each step `s` a boundary point `before-s` (every earlier step finished, `s` not begun) and the points
`during-<middle>` that `DURING` names for `s` on that path. A new step without an entry in `DURING` (or a
reason in `ELSEWHERE`) fails the completeness test instead of going untested.

A point must last until the one SIGKILL that hits every job, however loaded the machine, so every hold
is indefinite and released by the test after the kill (`Held.release`):
- boundary: a hold on this VM's GET. Every pass begins with that read, so once the earlier steps are
  checkpointed the job sits between two steps; a latency on its reads gives the driver time to set the
  hold after it saw the checkpoint and before the next read answers. Validate is one pass with one read,
  so the boundaries before and after it are held from the start: the first read, or the second
  (`hold(..., after=1)`); the Lease shows the operator took the job before its first read.
- deprovision (Linux): waagent waits in the guest for a file to go before it works.
- preflight (Windows, Run Command): a hold on this VM's managed run command: the preflight script's
  PUT is in flight.
- sysprep (Windows): the guest's sysprep runs for an hour unless `finish_sysprep` ends it.
- shutdown, generalize: a hold on this VM's deallocate operation (InProgress) / generalize POST.
- snapshot, capture, publish: a hold on the creation of this job's snapshot, image, gallery version
  (named by the resource: the operator names snapshots after the job, `domain/capture.py`).
Validate has no `during` point: it makes no Azure call after recording its intent (the pass's read comes
before it), so `before-validate` is its point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.e2e import matrix_world as mw
from tests.e2e.conftest import deprovision_runs
from vmgen.adapters import kube
from vmgen.domain import capture, model
from vmgen.domain.phases import StepName
from vmgen.domain.spec import Spec

PATHS = ("linux", "linux-capture", "windows-winrm", "windows-runcommand")
READ_SECONDS = 3.0  # every read of a boundary job's VM: the driver's time to set the hold
WAAGENT_GATE = "var/tmp/vmgen-hold-waagent"
GENERALIZED = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"


def template(path: str) -> dict[str, Any]:
    """The spec of a path, enough for `Spec.from_body` to say which steps its jobs run."""
    spec: dict[str, Any] = {
        "vm": {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroup": "rg", "name": "vm"}
    }
    if path.startswith("linux"):
        spec["osType"] = "Linux"
        spec["ssh"] = {"host": "10.0.0.4", "username": "u", "privateKeySecretRef": {"name": "s"}}
    if path == "linux-capture":
        spec["preserveSource"] = {"snapshot": True}
        version = {"resourceGroup": "rg", "gallery": "g", "imageDefinition": "d", "version": "1.0.0"}
        spec["capture"] = {
            "managedImage": {"name": "img"},
            "galleryImageVersion": {**version, "targetRegions": [{"name": "westeurope"}]},
        }
    if path.startswith("windows"):
        transport = "WinRM" if path == "windows-winrm" else "RunCommand"
        spec["osType"] = "Windows"
        spec["windows"] = {"transport": transport}
        if transport == "WinRM":
            spec["winrm"] = {"host": "10.0.0.5", "credentialsSecretRef": {"name": "a"}}
    return spec


DURING: dict[StepName, Callable[[str], tuple[str, ...]]] = {
    StepName.VALIDATE: lambda path: (),
    StepName.SNAPSHOT: lambda path: ("snapshot",),
    StepName.DEPROVISION: lambda path: (
        ("deprovision",)
        if path.startswith("linux")
        else ("preflight", "sysprep")
        if path == "windows-runcommand"
        else ("sysprep",)  # over WinRM the preflight script answers at once: nothing in flight to hold
    ),
    StepName.SHUTDOWN: lambda path: ("shutdown",),
    StepName.GENERALIZE: lambda path: ("generalize",),
    StepName.CAPTURE: lambda path: ("capture",),
    StepName.PUBLISH: lambda path: ("publish",),
}
ELSEWHERE = {
    StepName.PREFLIGHT: "spec.mode Preflight touches nothing (tests/e2e/test_capture_safety.py)",
    StepName.APPROVAL: "a kill while awaiting approval: tests/e2e/test_capture_restarts.py",
    StepName.STOP_SOURCE: "the Copy path's kills: tests/e2e/test_copy.py",
    StepName.START_SOURCE: "the Copy path's kills: tests/e2e/test_copy.py",
    StepName.COPY: "the Copy path's kills: tests/e2e/test_copy.py",
    StepName.DELETE_COPY: "the Copy path's kills: tests/e2e/test_copy.py",
}


@dataclass(frozen=True)
class Point:
    path: str
    kind: str  # "before" | "during"
    step: str  # a step's name, or "preflight" / "sysprep" (the Windows deprovision step's two halves)
    steps: tuple[str, ...]  # the path's steps, in order

    @property
    def id(self) -> str:
        return f"{self.path}-{self.kind}-{self.step}"

    @property
    def status_step(self) -> str:
        return "deprovision" if self.step in ("preflight", "sysprep") else self.step


def path_steps(path: str) -> tuple[str, ...]:
    return tuple(str(s) for s in Spec.from_body(template(path)).steps)


def points(path: str) -> list[Point]:
    steps = path_steps(path)
    found: list[Point] = []
    for step in steps:
        found.append(Point(path, "before", step, steps))
        found += [Point(path, "during", middle, steps) for middle in DURING[StepName(step)](path)]
    return found


@dataclass
class Held:
    """One job held at its point: its VM, what releases it, and what the driver saw."""

    point: Point
    name: str
    vm: Any
    arm: Any
    releases: list[Callable[[], None]] = field(default_factory=list)
    armed: bool = False  # a boundary's read hold is set once the earlier steps are checkpointed
    hit: dict[str, Any] | None = None  # the job's status when the operator was killed at its point
    missed: dict[str, Any] | None = None  # its status when it was seen past its point, unkilled
    body: dict[str, Any] = field(default_factory=dict)  # the job at the end

    def hold(self, operation: str, name: str, *, after: int = 0) -> None:
        self.arm.hold(operation, name=name, after=after)
        self.releases.append(lambda: self.arm.release(operation, name=name))

    def arm_boundary(self, body: dict[str, Any]) -> None:
        if self.point.kind == "before" and not self.armed and earlier_done(self.point, body):
            self.hold("get", self.vm.name)
            self.armed = True

    def release(self) -> None:
        for release in self.releases:
            release()


def holding_waagent(vm: Any) -> None:
    """waagent logs its start (counted by `deprovision_runs`), then waits for the gate file to go."""
    (vm.sandbox.rootfs / WAAGENT_GATE).write_text("held\n")
    wrapper = vm.sandbox.rootfs / "usr/local/sbin/waagent"
    wrapper.write_text(
        "#!/bin/sh\necho start >> /var/log/vmgen-deprovision-starts\n"
        f"while [ -e /{WAAGENT_GATE} ]; do sleep 0.1; done\n"
        'exec /usr/sbin/waagent "$@"\n'
    )
    wrapper.chmod(0o755)


def hold(batch: mw.Batch, point: Point) -> tuple[Held, dict[str, Any]]:
    """A VM for this point, its job's manifest, and the holds that keep the job at the point."""
    arm, name = batch.world.arm, point.id
    if point.path.startswith("windows"):
        transport = "WinRM" if point.path == "windows-winrm" else "RunCommand"
        vm: Any = batch.windows_vm(sysprep_seconds=3600.0 if point.step == "sysprep" else 0.3)
        manifest = batch.windows_manifest(name, vm, transport=transport)
    else:
        vm = batch.linux_vm()
        holding_waagent(vm)
        manifest = batch.linux_manifest(name, vm, capture=point.path == "linux-capture")
    held = Held(point=point, name=name, vm=vm, arm=arm)
    if not point.path.startswith("windows"):
        gate = vm.sandbox.rootfs / WAAGENT_GATE
        if point.step != "deprovision":
            gate.unlink()
        else:
            held.releases.append(lambda: gate.unlink(missing_ok=True))
    if point.kind == "before":
        arm.set_latency("get", READ_SECONDS, vm=vm.name)
        first = point.steps.index(point.step)
        if first <= 1:  # the first read is validate's (the only read of its one pass): hold it or the next
            held.hold("get", vm.name, after=first)
            held.armed = True
    elif point.step in ("shutdown", "generalize", "preflight"):
        operation = {"shutdown": "deallocate", "preflight": "createRunCommand"}.get(point.step, point.step)
        held.hold(operation, vm.name)
    elif point.step == "sysprep":
        held.releases.append(vm.machine.finish_sysprep)
    elif point.step == "snapshot":
        owner = capture.owner_hash(f"{batch.world.namespace}/{name}")
        held.hold("createSnapshot", f"{vm.name[:50]}-os-vmgen-{owner}")
    elif point.step == "capture":
        held.hold("createImage", f"{vm.name}-img")
    elif point.step == "publish":
        held.hold("createGalleryImageVersion", manifest["spec"]["capture"]["galleryImageVersion"]["gallery"])
    return held, manifest


def earlier_done(point: Point, body: dict[str, Any]) -> bool:
    earlier = point.steps[: point.steps.index(point.status_step)]
    return all(mw.step_state(body, s) in ("Succeeded", "Skipped") for s in earlier)


def not_begun(body: dict[str, Any], step: str) -> bool:
    return mw.step_state(body, step) in (None, "Pending")


def _creating(arm: Any, resource_id: str | None) -> bool:
    found = arm.resource(resource_id) if resource_id else None
    return bool(found) and found["properties"].get("provisioningState") == "Creating"


def reached(held: Held, body: dict[str, Any], leases: set[str]) -> bool:
    """The job sits at its point now (and, being held, stays there until released)."""
    p, vm, arm = held.point, held.vm, held.arm
    state = mw.step_state(body, p.status_step)
    if p.kind == "before":
        if not (held.armed and earlier_done(p, body) and not_begun(body, p.status_step)):
            return False
        # before-validate: the operator took the job (its Lease) and its first read is in flight
        return p.step != "validate" or kube.lease_name(model.VmResourceId(vm_id(vm))) in leases
    outputs = body.get("status", {}).get("outputs", {})
    if p.step == "deprovision":
        return state == "Running" and deprovision_runs(vm) == 1
    if p.step == "preflight":
        # validate checkpointed and the next pass read the VM: its next request, the preflight script's
        # run command, is held in flight
        reads = [r for r in arm.requests() if r.operation == "get" and r.is_for_vm(vm.name)]
        begun = not not_begun(body, "deprovision") or vm.machine.snapshot()["sysprepStarts"] > 0
        return earlier_done(p, body) and len(reads) >= 2 and not begun
    if p.step == "sysprep":
        machine = vm.machine.snapshot()
        return bool(machine["sysprepStarts"] == 1 and machine["imageState"] != GENERALIZED)
    if p.step == "shutdown":
        power = arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["powerState"]
        token = body.get("status", {}).get("steps", {}).get("shutdown", {}).get("continuationToken")
        return state == "Running" and bool(token) and power == "deallocating"
    if p.step == "generalize":
        generalized = arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["generalized"]
        return state == "Running" and not generalized
    if p.step == "snapshot":
        return state == "Running" and any(_creating(arm, s) for s in outputs.get("snapshots", []))
    if p.step == "capture":
        return state == "Running" and _creating(arm, outputs.get("managedImageId"))
    if p.step == "publish":
        return state == "Running" and _creating(arm, outputs.get("galleryImageVersionId"))
    raise AssertionError(f"no predicate for {p.id}")


def passed(held: Held, body: dict[str, Any]) -> bool:
    """The job went past its point (a hold that did not hold, or a driver that looked too late)."""
    p = held.point
    if mw.phase(body) in mw.TERMINAL:
        return True
    if p.kind == "before":
        return not not_begun(body, p.status_step)
    if p.step == "preflight":
        return bool(held.vm.machine.snapshot()["sysprepStarts"] > 0)
    return mw.step_state(body, p.status_step) == "Succeeded"


def vm_id(vm: Any) -> str:
    return (
        f"/subscriptions/{vm.subscription_id}/resourceGroups/{vm.resource_group}/providers/"
        f"Microsoft.Compute/virtualMachines/{vm.name}"
    )
