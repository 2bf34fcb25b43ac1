"""A restarted operator, or a dropped WinRM connection, never starts sysprep twice: the next pass reads
ImageState and the start marker first, and the job finishes Ready with sysprep started exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import World, condition
from tests.e2e.windows_jobs import assert_generalized_once, windows_job


def sysprep_starts(vm: Any) -> int:
    starts: int = vm.machine.snapshot()["sysprepStarts"]
    return starts


@pytest.mark.parametrize("transport", ["WinRM", "RunCommand"])
def test_killed_during_sysprep_it_resumes_from_evidence_and_never_starts_sysprep_twice(
    world: World, windows_vm: Any, transport: str
) -> None:
    vm = windows_vm(sysprep_seconds=4.0)
    windows_job(world, "win-kill", vm, transport=transport)
    world.wait_for("win-kill", lambda b: sysprep_starts(vm) == 1, timeout=60, what="sysprep started")

    world.operator.kill()
    world.operator.start()
    body = world.wait_ready("win-kill", timeout=100)

    assert sysprep_starts(vm) == 1
    assert body["status"]["steps"]["deprovision"]["state"] == "Succeeded"
    assert_generalized_once(world, vm)


def test_a_connection_dropped_after_the_start_is_settled_from_imagestate(
    world: World, windows_vm: Any
) -> None:
    vm = windows_vm(failures=["connection-dropped"], sysprep_seconds=1.0)
    windows_job(world, "win-dropped", vm)

    body = world.wait_ready("win-dropped", timeout=100)

    assert sysprep_starts(vm) == 1
    assert condition(body, "Deprovisioned")["reason"] == "SysprepSucceeded"
    warnings = [e for e in world.events() if e.get("reason") == "DeprovisionOutcomeUnknown"]
    assert warnings, "the dropped connection must be reported"
    assert_generalized_once(world, vm)


def test_killed_after_a_dropped_connection_it_still_starts_sysprep_only_once(
    world: World, windows_vm: Any
) -> None:
    vm = windows_vm(failures=["connection-dropped"], sysprep_seconds=4.0)
    windows_job(world, "win-dropped-kill", vm)
    world.wait_for("win-dropped-kill", lambda b: sysprep_starts(vm) == 1, timeout=60, what="sysprep started")
    world.wait_for(
        "win-dropped-kill",
        lambda b: (
            "connection was lost"
            in b.get("status", {}).get("steps", {}).get("deprovision", {}).get("message", "")
            or b.get("status", {}).get("steps", {}).get("deprovision", {}).get("state") == "Running"
        ),
        timeout=60,
        what="the dropped start recorded",
    )

    world.operator.kill()
    world.operator.start()
    world.wait_ready("win-dropped-kill", timeout=100)

    assert sysprep_starts(vm) == 1
    assert_generalized_once(world, vm)
