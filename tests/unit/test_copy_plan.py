"""spec.source Copy as a table: the copy's own planner rows, the VM each step acts on, its names and bounds.

Each row is (spec, status, fresh observation of the source) -> the one action the workflow takes next.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vmgen.domain import copy_plan, errors, model, planner
from vmgen.domain.outputs import CopyOutputs, Outputs
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import Phase, Status, Step, StepName, StepState

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
P = model.PowerState
S = StepState
OWNER = "images/web-golden"

BODY: dict[str, Any] = {
    "vm": {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "name": "web-01"},
    "osType": "Auto",
    "ssh": {"username": "azureuser", "privateKeySecretRef": {"name": "ssh"}},
    "source": "Copy",
}
COPY = Spec.from_body(BODY)
STOPPING = Spec.from_body({**BODY, "copy": {"stopSourceFirst": True}})
IN_PLACE = Spec.from_body({**BODY, "source": "InPlace", "ssh": {**BODY["ssh"], "host": "10.0.0.4"}})
COPY_VM_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute"
    "/virtualMachines/web-01-vmgen-abcdef12"
)


def source(power: model.PowerState = P.RUNNING, **changes: object) -> model.VmObservation:
    base = model.VmObservation(
        id=COPY.vm.resource_id,
        os_type=model.OsType.LINUX,
        power_state=power,
        generalized=False,
        agent_ready=True,
        location="westeurope",
        os_disk_id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/web-01-os",
        data_disks=((0, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/web-01-d0"),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def at(spec: Spec, done: tuple[str, ...], **states: StepState) -> Status:
    steps = {StepName(name): Step(state=S.SUCCEEDED, started_at=NOW) for name in done}
    steps |= {StepName(name): Step(state=state, started_at=NOW) for name, state in states.items()}
    return Status(phase=Phase.COPYING, steps=steps).planned(spec.steps)


def with_copy(status: Status, **copy: str) -> Status:
    return status.with_outputs(Outputs(copy=CopyOutputs(vm_id=COPY_VM_ID, address="10.213.9.4", **copy)))


def plan(spec: Spec, status: Status, vm: model.VmObservation | None) -> planner.Action:
    return planner.plan(spec, status, vm, now=NOW, confirmed=False)


class TestTheStepsOfACopy:
    def test_a_copy_snapshots_builds_generalizes_captures_and_deletes_the_copy(self) -> None:
        assert [s.value for s in COPY.steps] == [
            "validate", "snapshot", "copy", "deprovision", "shutdown", "generalize", "deleteCopy",
        ]  # fmt: skip

    def test_stop_source_first_wraps_the_snapshot_in_a_stop_and_a_start(self) -> None:
        assert [s.value for s in STOPPING.steps][:5] == [
            "validate", "stopSource", "snapshot", "startSource", "copy",
        ]  # fmt: skip

    def test_in_place_keeps_its_four_steps(self) -> None:
        assert [s.value for s in IN_PLACE.steps] == ["validate", "deprovision", "shutdown", "generalize"]

    def test_in_place_still_needs_an_ssh_host(self) -> None:
        with pytest.raises(errors.InvalidSpec, match=r"spec\.ssh\.host"):
            Spec.from_body({**BODY, "source": "InPlace"})

    def test_an_unknown_source_and_a_malformed_subnet_are_invalid(self) -> None:
        with pytest.raises(errors.InvalidSpec, match=r"spec\.source"):
            Spec.from_body({**BODY, "source": "Clone"})
        with pytest.raises(errors.InvalidSpec, match="subnetId"):
            Spec.from_body({**BODY, "copy": {"subnetId": "vnet-1"}})


ROWS = [
    pytest.param(COPY, at(COPY, ()), source(), planner.Validate, id="a running Linux source is validated"),
    pytest.param(
        STOPPING, at(STOPPING, ("validate",)), source(), copy_plan.StopSource,
        id="stopSourceFirst deallocates a running source",
    ),
    pytest.param(
        STOPPING, at(STOPPING, ("validate",)), source(P.DEALLOCATED), planner.Checkpoint,
        id="a source found deallocated checkpoints the stop",
    ),
    pytest.param(
        STOPPING, at(STOPPING, ("validate", "stopSource", "snapshot")), source(P.DEALLOCATED),
        copy_plan.StartSource, id="the source is started again after its snapshots",
    ),
    pytest.param(
        STOPPING, at(STOPPING, ("validate", "stopSource", "snapshot")), source(P.RUNNING),
        planner.Checkpoint, id="a source running again checkpoints the start",
    ),
    pytest.param(
        STOPPING, at(STOPPING, ("validate", "stopSource", "snapshot")), source(P.STARTING),
        planner.Wait, id="a starting source is waited for",
    ),
    pytest.param(
        COPY, at(COPY, ("validate", "snapshot")), source(), copy_plan.BuildCopy,
        id="after the snapshots the copy is built",
    ),
    pytest.param(
        COPY, at(COPY, ("validate", "snapshot"), copy=S.RUNNING), None, planner.Fail,
        id="a source gone during the copy fails VMNotFound",
    ),
    pytest.param(
        COPY, with_copy(at(COPY, ("validate", "snapshot", "copy", "deprovision", "shutdown", "generalize"))),
        None, copy_plan.DeleteCopy, id="the copy is deleted last whatever the source reads",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "status", "vm", "expected"), ROWS)
def test_the_copy_rows(spec: Spec, status: Status, vm: model.VmObservation | None, expected: type) -> None:
    assert type(plan(spec, status, vm)) is expected


class TestSafety:
    def test_a_generalized_source_is_never_started(self) -> None:
        status = at(STOPPING, ("validate", "stopSource", "snapshot"))

        action = plan(STOPPING, status, source(P.DEALLOCATED, generalized=True))

        assert isinstance(action, planner.Fail) and action.reason is Reason.SOURCE_NOT_RESTARTED
        assert not copy_plan.may_start(source(P.DEALLOCATED, generalized=True))
        assert copy_plan.may_start(source(P.DEALLOCATED))

    def test_a_windows_source_fails_validation_untouched(self) -> None:
        action = plan(COPY, at(COPY, ()), source(os_type=model.OsType.WINDOWS))

        assert isinstance(action, planner.Fail) and action.reason is Reason.COPY_NOT_SUPPORTED
        assert "not touched" in action.message

    def test_the_copys_name_cannot_collide_with_the_sources(self) -> None:
        long = Spec.from_body({**BODY, "vm": {**BODY["vm"], "name": "x" * 64}})

        names = copy_plan.names(long, owner=OWNER)

        assert names.vm.name != long.vm.name and names.vm.name.startswith("x" * 40 + "-vmgen-")
        assert len(names.vm.name) <= 64 and names.nic.name == f"{names.vm.name}-nic"
        assert copy_plan.names(long, owner=OWNER) == names  # a restart finds the same names

    def test_one_disk_per_snapshot_named_after_the_copy(self) -> None:
        disks = copy_plan.copy_disks(COPY, source(), owner=OWNER)

        base = copy_plan.names(COPY, owner=OWNER).vm.name
        assert [(d.ref.name, d.lun) for d in disks] == [(f"{base}-os", None), (f"{base}-lun0", 0)]
        assert all("/snapshots/web-01-" in d.snapshot_id for d in disks)


class TestTheTargetVm:
    def test_steps_before_the_copy_act_on_the_source(self) -> None:
        assert copy_plan.target(COPY, at(COPY, ("validate",))) == COPY.vm

    def test_steps_after_the_copy_act_on_the_copy_and_ssh_goes_to_its_address(self) -> None:
        status = with_copy(at(COPY, ("validate", "snapshot", "copy")), state="Ready")

        target = copy_plan.target(COPY, status)

        assert target == model.VmRef(COPY.vm.subscription_id, "rg", "web-01-vmgen-abcdef12")
        assert copy_plan.ssh_host(COPY, status) == "10.213.9.4"

    def test_in_place_always_acts_on_spec_vm(self) -> None:
        status = with_copy(at(IN_PLACE, ("validate",)))

        assert copy_plan.target(IN_PLACE, status) == IN_PLACE.vm
        assert copy_plan.ssh_host(IN_PLACE, status) == "10.0.0.4"

    def test_the_clean_up_acts_on_the_source_again(self) -> None:
        done = ("validate", "snapshot", "copy", "deprovision", "shutdown", "generalize")
        assert copy_plan.target(COPY, with_copy(at(COPY, done))) == COPY.vm


class TestBoundedWaits:
    def test_a_booting_copy_is_waited_for(self) -> None:
        action = copy_plan.readiness(COPY, source(P.STARTING), started=NOW, now=NOW + timedelta(minutes=1))

        assert isinstance(action, planner.Wait) and action.reason is Reason.COPY_CREATING

    def test_a_copy_whose_agent_is_not_ready_after_the_timeout_fails_copy_not_ready(self) -> None:
        late = NOW + COPY.timeouts.copy + timedelta(seconds=1)

        action = copy_plan.readiness(COPY, source(agent_ready=False), started=NOW, now=late)

        assert isinstance(action, planner.Fail) and action.reason is Reason.COPY_NOT_READY

    def test_a_running_copy_with_its_agent_ready_is_ready(self) -> None:
        assert copy_plan.readiness(COPY, source(), started=NOW, now=NOW) is None
