"""The kill matrix: SIGKILL of the operator at every step boundary and in the middle of every step.

Paths: Linux in place (validate, deprovision, shutdown, generalize), Linux with a snapshot and capture
(plus snapshot, capture = managed image, publish = gallery version), Windows over WinRM and through Run
Command (validate, deprovision = preflight + sysprep, shutdown, generalize). The points are generated from
the operator's step list (tests/e2e/kill_points.py, which also says how each point is held).

One job per (path, point), all applied at once to the session's operator. Each is held at its point until
every job is there (or was seen past it, which fails that case); then one SIGKILL hits them all, the holds
are released and the operator starts again. A restart costs about half a minute on a loaded two-core
machine, so one kill for every point, instead of one per point, is what keeps the matrix inside its
budget. Every case then asserts on its own job: the job ends Ready; deprovision (waagent, or sysprep) ran
exactly once, counted in the guest; deallocate and each create (snapshot, image, version) were posted
exactly once; generalize once (twice only when the kill cut a generalize POST in flight: it is safe to
repeat, steps/generalize.py, and the simulator, like Azure, accepts a second one); the VM never started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import kill_points as kp
from tests.e2e import matrix_world as mw
from tests.e2e.conftest import OPERATOR_NAMESPACE, assert_guest_deprovisioned, deprovision_runs
from vmgen.domain.phases import STEP_SEQUENCE

CASES = [point for path in kp.PATHS for point in kp.points(path)]
REACH_SECONDS = 240.0
FINISH_SECONDS = 240.0


def _leases(world: Any) -> set[str]:
    done = world.control_plane.kubectl("get", "leases", "-n", OPERATOR_NAMESPACE, "-o", "json", check=False)
    if done.returncode != 0:
        return set()
    items = json.loads(done.stdout)["items"]
    return {item["metadata"]["name"] for item in items if item["spec"].get("holderIdentity")}


def drive(batch: mw.Batch, jobs: list[kp.Held]) -> float:
    """Wait until every job sits at its point, kill the operator once, release, start it; returns the
    seconds it took every job to reach its point."""
    world, started = batch.world, time.monotonic()
    waiting = list(jobs)
    while waiting and time.monotonic() - started < REACH_SECONDS:
        bodies = batch.bodies()
        leases = _leases(world) if any(job.point.step == "validate" for job in waiting) else set()
        for job in list(waiting):
            body = bodies.get(job.name, {})
            job.arm_boundary(body)
            if kp.reached(job, body, leases):
                job.hit = body.get("status", {})
                waiting.remove(job)
            elif kp.passed(job, body):
                job.missed = body.get("status", {})
                waiting.remove(job)
        time.sleep(0.2)
    reached = time.monotonic() - started
    world.operator.kill()
    for job in jobs:
        job.release()
    world.operator.start()
    return reached


@pytest.fixture(scope="module")
def matrix(
    request: pytest.FixtureRequest,
    control_plane: Any,
    arm: Any,
    operator: Any,
    sandboxes: Any,
    windows_ca: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, kp.Held]]:
    world = mw.module_world(control_plane, arm, operator, "kill-matrix")
    with mw.batch(world, sandboxes, windows_ca, tmp_path_factory) as batch:
        points = [point for point in CASES if point.id in mw.selected(request)]
        batch.reserve_linux(sum(not point.path.startswith("windows") for point in points))
        made = [kp.hold(batch, point) for point in points]
        arm.clear_requests()
        batch.apply([manifest for _, manifest in made])
        jobs = [job for job, _ in made]
        reached = drive(batch, jobs)
        restarted = time.monotonic()
        bodies = batch.wait_all_terminal([job.name for job in jobs], timeout=FINISH_SECONDS)
        print(
            f"\nkill matrix: {len(jobs)} jobs at their points after {reached:.0f}s, one SIGKILL,"
            f" all done {time.monotonic() - restarted:.0f}s after the restart"
        )
        for job in jobs:
            job.body = bodies.get(job.name, {})
        arm.reset_latencies()
        yield {job.name: job for job in jobs}


def test_every_step_of_every_path_has_its_kill_points_or_a_reason_why_not() -> None:
    covered = set(kp.DURING) | set(kp.ELSEWHERE)
    assert set(STEP_SEQUENCE) <= covered, f"steps without kill points: {set(STEP_SEQUENCE) - covered}"
    for path in kp.PATHS:
        steps = kp.path_steps(path)
        assert steps, path
        assert {f"{path}-before-{s}" for s in steps} <= {p.id for p in kp.points(path)}
        assert set(steps).isdisjoint(kp.ELSEWHERE), f"{path} runs a step that only another file covers"


@pytest.mark.parametrize("point", CASES, ids=[p.id for p in CASES])
def test_killed_at_this_point_the_job_ends_ready_with_every_irreversible_step_once(
    matrix: dict[str, kp.Held], arm: Any, point: kp.Point
) -> None:
    job = matrix[point.id]
    assert job.missed is None, f"{point.id}: the job went past its point unkilled: {json.dumps(job.missed)}"
    assert job.hit is not None, f"{point.id}: never reached; status {json.dumps(job.body.get('status'))}"
    body, vm = job.body, job.vm
    assert mw.phase(body) == "Succeeded", json.dumps(body.get("status"), indent=1)
    assert mw.ready(body).get("status") == "True"
    if point.path.startswith("windows"):
        assert vm.machine.snapshot()["sysprepStarts"] == 1, "sysprep started once, counted in the guest"
    else:
        assert deprovision_runs(vm) == 1, "waagent ran once, counted in the guest"
        assert_guest_deprovisioned(vm)
    ops = mw.operations(arm, vm)
    assert ops.count("deallocate") == 1, ops
    assert ops.count("generalize") in (
        (1, 2) if point.step == "generalize" and point.kind == "during" else (1,)
    )
    assert "start" not in ops, "the VM was never started"
    assert arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["generalized"] is True
    if point.path == "linux-capture":
        out = body["status"]["outputs"]
        made = [*out["snapshots"], out["managedImageId"], out["galleryImageVersionId"]]
        assert len(made) == 3, out
        puts = [r.path.lower() for r in arm.requests() if r.api == "arm" and r.method == "PUT"]
        for resource_id in made:
            assert puts.count(resource_id.lower()) == 1, (
                f"{resource_id} was created {puts.count(resource_id.lower())} times"
            )
