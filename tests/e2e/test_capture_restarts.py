"""A restarted operator resumes the capture path from status and Azure: nothing is created twice.

Each test slows one creation down in the simulator, SIGKILLs `vmgen run` once Azure has accepted it
(its id is in status.outputs), starts the operator again and counts the PUTs in the request log: one
snapshot, one managed image, one gallery version, one deallocate and one generalize per job. A restart
while the job awaits approval keeps it waiting, with the guest untouched and no second snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e import capture_world as cw
from tests.e2e.conftest import World, condition
from vmgen_testbed.arm.galleries import REPLICATION

ONCE = ("createSnapshot", "createImage", "createGalleryImageVersion", "deallocate", "generalize")


def accepted(step: str, output: str) -> Callable[[dict[str, Any]], bool]:
    """The step runs and Azure accepted its creation (the id is recorded) but has not finished it."""
    return lambda b: cw.step_state(b, step) == "Running" and bool(cw.outputs(b).get(output))


@pytest.mark.parametrize(
    ("slowed", "step", "output"),
    [
        ("createSnapshot", "snapshot", "snapshots"),
        ("createImage", "capture", "managedImageId"),
        (REPLICATION, "publish", "galleryImageVersionId"),
    ],
    ids=["during-the-snapshot", "during-image-creation", "during-replication"],
)
def test_killed_mid_capture_the_operator_resumes_and_creates_nothing_twice(
    world: World, linux_vm: Any, slowed: str, step: str, output: str
) -> None:
    vm = linux_vm()
    version = cw.gallery(world, vm)
    world.arm.clear_requests()
    world.arm.set_latency(slowed, 6.0)
    try:
        cw.capture_job(world, "killed", vm, version=version)
        world.wait_for("killed", accepted(step, output), timeout=120, what=f"{step} accepted by Azure")
        world.operator.kill()
        world.operator.start()
        body = world.wait_ready("killed", timeout=150)
    finally:
        world.arm.set_latency(slowed, 0.0)

    ops = cw.operations(world)
    assert {op: ops.count(op) for op in ONCE} == dict.fromkeys(ONCE, 1), ops
    assert "start" not in ops
    assert [r.method for r in cw.writes(world) if r.method == "DELETE"] == []
    assert body["status"]["steps"][step]["state"] == "Succeeded"
    assert body["status"]["steps"]["deprovision"]["attempts"] == 1
    out = cw.outputs(body)
    assert len(out["snapshots"]) == 1
    assert out["replication"] == {region: "Completed" for region in cw.REGIONS}
    for made in (out["managedImageId"], out["galleryImageVersionId"]):
        assert world.arm.resource(made) is not None, made


def test_killed_while_awaiting_approval_it_still_waits_and_snapshots_nothing_twice(
    world: World, linux_vm: Any
) -> None:
    vm = linux_vm()
    before = cw.guest_files(vm)
    world.arm.clear_requests()
    cw.capture_job(world, "gate-held", vm, managed_image=False, approval="Manual")
    world.wait_for(
        "gate-held",
        lambda b: b.get("status", {}).get("phase") == "AwaitingApproval",
        timeout=90,
        what="AwaitingApproval",
    )

    world.operator.kill()
    seen = len(cw.arm_requests(world))
    world.operator.start()
    # The restarted operator's first pass reads the VM again; only then is "still waiting" a fact.
    world.wait_for(
        "gate-held",
        lambda b: "get" in [r.operation for r in cw.arm_requests(world)[seen:]],
        timeout=60,
        what="a pass of the restarted operator",
    )
    time.sleep(1)  # let that pass finish: it must end waiting, not deprovisioning

    body = world.get("gate-held")
    assert body["status"]["phase"] == "AwaitingApproval"
    assert condition(body, "AwaitingApproval")["status"] == "True"
    assert cw.guest_files(vm) == before
    assert [r.operation for r in cw.writes(world)] == ["createSnapshot"]
    world.kubectl("annotate", "vmgen", "gate-held", "vmgen.io/approve=true")
    body = world.wait_ready("gate-held", timeout=90)
    assert cw.count(world, "createSnapshot") == 1 and cw.count(world, "deallocate") == 1
    assert len(cw.outputs(body)["snapshots"]) == 1
