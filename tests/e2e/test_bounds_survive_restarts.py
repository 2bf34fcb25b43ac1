"""Bounds that steer decisions live in status, so a SIGKILLed operator keeps them.

A guest whose SSH runs keep dropping before waagent starts must end Failed after the same number of runs
(deprovision.MAX_DEPROVISION_ATTEMPTS) whether or not the operator is restarted in between: the count of
runs proven not started is `status.steps.deprovision.unstartedRuns`, not a counter in process memory.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import World, assert_guest_untouched, condition
from vmgen.domain import deprovision


def dropping_waagent(vm: Any) -> None:
    """A wrapper first on sudo's PATH in the guest: it logs each start, then kills the SSH session that ran
    it (the connection drops) and exits without ever starting the real waagent."""
    wrapper = vm.sandbox.rootfs / "usr/local/sbin/waagent"
    wrapper.write_text(
        "#!/bin/sh\necho start >> /var/log/vmgen-dropped-runs\n"
        f"pkill -KILL -f 'sshd: {vm.sandbox.username}'\nexit 1\n"
    )
    wrapper.chmod(0o755)


def dropped_runs(vm: Any) -> int:
    log = vm.sandbox.rootfs / "var/log/vmgen-dropped-runs"
    return len(log.read_text().splitlines()) if log.exists() else 0


def unstarted_runs(body: dict[str, Any]) -> int:
    runs: int = body.get("status", {}).get("steps", {}).get("deprovision", {}).get("unstartedRuns", 0)
    return runs


def test_runs_that_keep_dropping_fail_after_the_same_bound_across_operator_restarts(
    world: World, linux_vm: Any
) -> None:
    vm = linux_vm()
    dropping_waagent(vm)
    world.linux_job("dropping", vm, host_keys=list(vm.sandbox.host_keys))

    for runs in (2, 3):  # SIGKILL the operator between attempts, twice
        world.wait_for(
            "dropping", lambda b, n=runs: unstarted_runs(b) >= n, timeout=90, what=f"{runs} unstarted runs"
        )
        world.operator.kill()
        world.operator.start()
    body = world.wait_failed("dropping", timeout=120)

    ready = condition(body, "Ready")
    assert ready["reason"] == "DeprovisionFailed"
    assert f"started {deprovision.MAX_DEPROVISION_ATTEMPTS} times" in ready["message"]
    assert body["status"]["steps"]["deprovision"]["attempts"] == deprovision.MAX_DEPROVISION_ATTEMPTS
    assert dropped_runs(vm) == deprovision.MAX_DEPROVISION_ATTEMPTS
    assert_guest_untouched(vm)
