"""The fault matrix: every Azure call a job makes, failed every way Azure fails, plus the guest's faults.

The Azure cases are generated: every (call, fault kind) of `CALLS` x `faults.KINDS`, where a long-running
operation that ends Failed applies only to the calls that start one. The calls are those of a Linux job
(GET VM, which is also how the instance view is read: `$expand=instanceView`; the Run Command look; the
deallocate; the generalize; the polls of both long-running operations and the final read of their
result) and of a capture job (the snapshot, managed image and gallery version creates). Each case is one
job on its own VM with one fault scoped to that VM (`vm=`), or, for a create, to the resource the
operator names (`resource=`: the snapshot, the image, the gallery); a poll fault reaches the VM's polls
because the simulator matches a poll against the request that started its operation.

All jobs run at once in the session's operator (a module-scoped batch); then one test per case asserts:
the job ends Ready (a fault injected once is transient), or Failed with the exact reason and a message
that says what to do where the fault is permanent (the guest cases below); deprovision ran exactly once
(never for a guest that cannot be reached); the VM was never started; and the fault provably reached
this job's requests in the simulator's request log.

The guest cases: SSH dropped in the middle of deprovision (waagent goes on in the guest; the operator
verifies from Run Command evidence), the VM agent not ready (the operator waits under AgentNotReady until
it is), an SSH host that does not resolve and a port where nothing listens (Failed within
spec.timeouts.deprovision, each under its own reason, without a Run Command).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e import matrix_world as mw
from tests.e2e.conftest import (
    assert_guest_deprovisioned,
    assert_guest_untouched,
    deprovision_runs,
    slow_counting_waagent,
)
from vmgen.domain import capture
from vmgen_testbed.arm.faults import KINDS, Fault

LINUX_CALLS = ("get", "runCommand", "deallocate", "generalize", "operationStatus", "operationResult")
CREATES = ("createSnapshot", "createImage", "createGalleryImageVersion")
CALLS = LINUX_CALLS + CREATES
STARTS_AN_OPERATION = {"runCommand", "deallocate", *CREATES}
GUEST_CASES = ("ssh-dropped-mid-deprovision", "agent-not-ready", "ssh-host-unresolvable", "ssh-port-closed")
GUEST_TESTS = {  # the tests that look at each guest case (parametrized ones by their id)
    "ssh-dropped-mid-deprovision": (
        "test_ssh_dropped_in_the_middle_of_deprovision_is_verified_and_never_run_again",
    ),
    "agent-not-ready": ("test_a_guest_agent_that_is_not_ready_is_waited_for_and_the_job_ends_ready",),
    "ssh-host-unresolvable": ("ssh-host-unresolvable",),
    "ssh-port-closed": ("ssh-port-closed",),
}
TIMEOUT = 300.0


def azure_cases() -> list[tuple[str, str]]:
    return [
        (call, kind)
        for call in CALLS
        for kind in KINDS
        if kind != "failed-operation" or call in STARTS_AN_OPERATION
    ]


AZURE_CASES = azure_cases()


def case_id(call: str, kind: str) -> str:
    return f"{call}-{kind}".lower()


@dataclass
class Case:
    name: str
    vm: Any
    call: str | None = None
    kind: str | None = None
    subject: str | None = None  # the resource name a create's fault is scoped to
    seen: set[str] = field(default_factory=set)  # Ready reasons seen while it ran
    body: dict[str, Any] = field(default_factory=dict)


def dropping_ssh_waagent(vm: Any) -> None:
    """waagent starts for real, detached, then the SSH session that started it is killed: the operator's
    connection drops in the middle of deprovision while the guest goes on with it."""
    wrapper = vm.sandbox.rootfs / "usr/local/sbin/waagent"
    wrapper.write_text(
        "#!/bin/sh\necho start >> /var/log/vmgen-deprovision-starts\n"
        'setsid /usr/sbin/waagent "$@" </dev/null >/dev/null 2>&1 &\nsleep 0.5\n'
        f"pkill -KILL -f 'sshd: {vm.sandbox.username}'\nexit 1\n"
    )
    wrapper.chmod(0o755)


def _azure_case(batch: mw.Batch, call: str, kind: str) -> tuple[Case, dict[str, Any]]:
    name = case_id(call, kind)
    vm = batch.linux_vm()
    slow_counting_waagent(vm, 0)
    manifest = batch.linux_manifest(name, vm, capture=call in CREATES)
    case = Case(name=name, vm=vm, call=call, kind=kind)
    if call == "createSnapshot":
        owner = capture.owner_hash(f"{batch.world.namespace}/{name}")
        case.subject = f"{vm.name[:50]}-os-vmgen-{owner}"
    elif call == "createImage":
        case.subject = f"{vm.name}-img"
    elif call == "createGalleryImageVersion":
        case.subject = manifest["spec"]["capture"]["galleryImageVersion"]["gallery"]
    scope = {"resource": case.subject} if case.subject else {"vm": vm.name}
    batch.world.arm.inject(Fault(kind=kind, operation=call, count=1, **scope))  # type: ignore[arg-type]
    return case, manifest


def _guest_case(batch: mw.Batch, name: str) -> tuple[Case, dict[str, Any]]:
    vm = batch.linux_vm()
    case = Case(name=name, vm=vm)
    slow_counting_waagent(vm, 0)
    manifest = batch.linux_manifest(name, vm)
    ssh = manifest["spec"]["ssh"]
    if name == "ssh-dropped-mid-deprovision":
        dropping_ssh_waagent(vm)
    elif name == "agent-not-ready":
        del ssh["hostKeys"]  # they must be read through Run Command, which needs the agent
        batch.world.arm.update_vm(vm.subscription_id, vm.resource_group, vm.name, agent_ready=False)
    elif name == "ssh-host-unresolvable":
        ssh["host"] = "web-01..internal"  # refused by the resolver without a query leaving the machine
        manifest["spec"]["timeouts"] = {"deprovision": "6s"}
    elif name == "ssh-port-closed":
        ssh["port"] = 2
        manifest["spec"]["timeouts"] = {"deprovision": "6s"}
    return case, manifest


def _watch(batch: mw.Batch, cases: list[Case]) -> dict[str, dict[str, Any]]:
    """Wait for every job to end; the agent comes back once its job said it waits for it."""
    deadline = time.monotonic() + TIMEOUT
    bodies: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        bodies = batch.bodies()
        for case in cases:
            body = bodies.get(case.name, {})
            reason = mw.ready(body).get("reason")
            if reason:
                case.seen.add(reason)
            if case.name == "agent-not-ready" and reason == "AgentNotReady":
                vm = case.vm
                batch.world.arm.update_vm(vm.subscription_id, vm.resource_group, vm.name, agent_ready=True)
        if all(mw.phase(bodies.get(c.name, {})) in mw.TERMINAL for c in cases):
            break
        time.sleep(0.3)
    return bodies


@pytest.fixture(scope="module")
def matrix(
    request: pytest.FixtureRequest,
    control_plane: Any,
    arm: Any,
    operator: Any,
    sandboxes: Any,
    windows_ca: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Case]]:
    world = mw.module_world(control_plane, arm, operator, "fault-matrix")
    with mw.batch(world, sandboxes, windows_ca, tmp_path_factory) as batch:
        chosen = mw.selected(request)
        batch.reserve_linux(len(chosen))  # one VM per case (a few too many when a -k leaves tests out)
        made = [_azure_case(batch, c, k) for c, k in AZURE_CASES if case_id(c, k) in chosen]
        made += [_guest_case(batch, name) for name in GUEST_CASES if chosen & set(GUEST_TESTS[name])]
        started = time.monotonic()
        batch.apply([manifest for _, manifest in made])
        cases = [case for case, _ in made]
        bodies = _watch(batch, cases)
        print(f"\nfault matrix: {len(cases)} jobs in {time.monotonic() - started:.0f}s")
        for case in cases:
            case.body = bodies.get(case.name, {})
        arm.clear_faults()
        yield {case.name: case for case in cases}


def _status(case: Case) -> str:
    return json.dumps(case.body.get("status"), indent=1)


def _reached(arm: Any, case: Case) -> list[Any]:
    """The requests of this case that met its fault: answered with the fault's status (None: dropped),
    or, for a failed operation, the poll that said Failed."""
    assert case.call is not None and case.kind is not None
    vm = case.vm

    def mine(record: Any) -> bool:
        if case.subject is not None:
            return case.subject.lower() in record.path.lower().split("/")
        return bool(record.is_for_vm(vm.name))

    polls = mw.operation_paths(arm, mine)
    records = [r for r in arm.requests() if r.api == "arm" and (mine(r) or r.path.lower() in polls)]
    if case.kind == "failed-operation":
        started = [r for r in records if r.operation == case.call and r.status in (200, 201, 202)]
        own = mw.operation_paths(arm, lambda r: r in started)
        created = {r.path.lower() for r in started}
        return [
            r
            for r in records
            if (
                r.path.lower() in own
                and r.operation == "operationStatus"
                and (r.response_body or {}).get("status") == "Failed"
            )
            or (  # the operator reads a created resource back instead of polling its operation
                r.method == "GET"
                and r.path.lower() in created
                and ((r.response_body or {}).get("properties") or {}).get("provisioningState") == "Failed"
            )
        ]
    status = None if case.kind == "drop" else int(case.kind[:3])
    return [r for r in records if r.operation == case.call and r.status == status]


@pytest.mark.parametrize(("call", "kind"), AZURE_CASES, ids=[case_id(c, k) for c, k in AZURE_CASES])
def test_a_fault_on_this_azure_call_is_survived_and_the_job_ends_ready(
    matrix: dict[str, Case], arm: Any, call: str, kind: str
) -> None:
    case = matrix[case_id(call, kind)]
    assert _reached(arm, case), f"the {kind} fault never reached {call} of {case.vm.name}"
    assert mw.phase(case.body) == "Succeeded", _status(case)
    assert mw.ready(case.body)["status"] == "True"
    assert deprovision_runs(case.vm) == 1, "waagent ran once"
    assert_guest_deprovisioned(case.vm)
    assert "start" not in mw.operations(arm, case.vm), "the VM was never started"


def test_ssh_dropped_in_the_middle_of_deprovision_is_verified_and_never_run_again(
    matrix: dict[str, Case], arm: Any
) -> None:
    case = matrix["ssh-dropped-mid-deprovision"]
    assert mw.phase(case.body) == "Succeeded", _status(case)
    assert deprovision_runs(case.vm) == 1
    assert_guest_deprovisioned(case.vm)
    assert "runCommand" in mw.operations(arm, case.vm), "the outcome was verified through Run Command"
    assert "start" not in mw.operations(arm, case.vm)


def test_a_guest_agent_that_is_not_ready_is_waited_for_and_the_job_ends_ready(
    matrix: dict[str, Case], arm: Any
) -> None:
    case = matrix["agent-not-ready"]
    assert "AgentNotReady" in case.seen, f"it waited under its own reason; seen {case.seen}"
    assert mw.phase(case.body) == "Succeeded", _status(case)
    assert deprovision_runs(case.vm) == 1
    assert "start" not in mw.operations(arm, case.vm)


FIX = "Fix spec.ssh or the network, then recreate this resource."
UNREACHABLE: dict[str, tuple[str, Callable[[Case], list[str]]]] = {
    # (the exact reason, what the message must say: what is wrong, what to check, what to do)
    "ssh-host-unresolvable": (
        "GuestHostUnresolvable",
        lambda case: [
            "spec.ssh.host 'web-01..internal' does not resolve",
            "Check the name for typos (or use the VM's private IP address)",
            "nothing ran on the VM, which is unchanged",
            FIX,
        ],
    ),
    "ssh-port-closed": (
        "GuestUnreachable",
        lambda case: [
            f"Nothing answers SSH on {case.vm.sandbox.ip}:2",
            "Check spec.ssh.host and spec.ssh.port",
            "(spec.timeouts.deprovision)",
            FIX,
        ],
    ),
}


@pytest.mark.parametrize("name", list(UNREACHABLE))
def test_a_guest_that_cannot_be_reached_fails_with_its_own_actionable_reason_and_is_never_touched(
    matrix: dict[str, Case], arm: Any, name: str
) -> None:
    case = matrix[name]
    reason, facts = UNREACHABLE[name]
    assert mw.phase(case.body) == "Failed", _status(case)
    ready = mw.ready(case.body)
    assert ready["reason"] == reason
    for fact in facts(case):
        assert fact in ready["message"], ready["message"]
    ops = mw.operations(arm, case.vm)
    assert "runCommand" not in ops, "an unreachable guest never costs a Run Command"
    assert "start" not in ops and "deallocate" not in ops
    assert deprovision_runs(case.vm) == 0
    assert_guest_untouched(case.vm)


def test_every_azure_call_meets_every_fault_kind() -> None:
    assert {k for _, k in AZURE_CASES} == set(KINDS)
    for call in CALLS:
        kinds = {k for c, k in AZURE_CASES if c == call}
        expected = set(KINDS) if call in STARTS_AN_OPERATION else set(KINDS) - {"failed-operation"}
        assert kinds == expected, call
