"""The exact facts copy_plan hands on: whole actions of the copy's rows, the copy's ids and disks, the
address it is reached at, and the spec.timeouts.copy boundary (measured to the microsecond).

tests/unit/test_copy_plan.py says which row applies; these pin what each row carries, so that a message
losing the VM's name, a Checkpoint losing its step, or an id losing its provider path fails here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vmgen.domain import capture, copy_plan, images, model
from vmgen.domain.actions import Checkpoint, Fail, Wait
from vmgen.domain.outputs import CopyOutputs, Outputs
from vmgen.domain.phases import Phase, StepName, StepState
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import Status, Step

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
P = model.PowerState
OWNER = "images/web-golden"
H = capture.owner_hash(OWNER)
SUB = "00000000-0000-0000-0000-000000000001"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg"
BODY: dict[str, Any] = {
    "vm": {"subscriptionId": SUB, "resourceGroup": "rg", "name": "web-01"},
    "osType": "Auto",
    "ssh": {"username": "azureuser", "privateKeySecretRef": {"name": "ssh"}},
    "source": "Copy",
    "copy": {"stopSourceFirst": True},
}
STOPPING = Spec.from_body(BODY)
WINDOWS_BODY: dict[str, Any] = {
    "vm": BODY["vm"],
    "osType": "Windows",
    "source": "Copy",
    "winrm": {"host": "10.0.0.5", "credentialsSecretRef": {"name": "admin"}},
}
OS_DISK = f"{GROUP}/providers/Microsoft.Compute/disks/web-01-os"
DATA_DISK = f"{GROUP}/providers/Microsoft.Compute/disks/web-01-d0"


def source(power: model.PowerState = P.RUNNING, **changes: object) -> model.VmObservation:
    base = model.VmObservation(
        id=STOPPING.vm.resource_id,
        os_type=model.OsType.LINUX,
        power_state=power,
        generalized=False,
        agent_ready=True,
        location="westeurope",
        os_disk_id=OS_DISK,
        data_disks=((0, DATA_DISK),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def at(spec: Spec, *done: StepName) -> Status:
    steps = {name: Step(state=StepState.SUCCEEDED, started_at=NOW) for name in done}
    return Status(phase=Phase.COPYING, steps=steps).planned(spec.steps)


AT_STOP = at(STOPPING, StepName.VALIDATE)
AT_START = at(STOPPING, StepName.VALIDATE, StepName.STOP_SOURCE, StepName.SNAPSHOT)


class TestTheSourceRowsCarryTheirStepReasonAndMessage:
    def test_a_deallocated_source_checkpoints_stop_source(self) -> None:
        action = copy_plan.plan(STOPPING, AT_STOP, source(P.DEALLOCATED))

        assert action == Checkpoint(
            StepName.STOP_SOURCE, Reason.SOURCE_STOPPED, "The source VM is deallocated."
        )

    def test_a_running_source_again_checkpoints_start_source(self) -> None:
        action = copy_plan.plan(STOPPING, AT_START, source(P.RUNNING))

        assert action == Checkpoint(StepName.START_SOURCE, Reason.SOURCE_STARTED, "The source VM runs again.")

    def test_a_generalized_source_is_never_started_and_the_message_says_where_its_snapshots_are(self) -> None:
        action = copy_plan.plan(STOPPING, AT_START, source(P.DEALLOCATED, generalized=True))

        assert action == Fail(
            Reason.SOURCE_NOT_RESTARTED,
            "VM web-01 is generalized, and vmgen never starts a generalized VM: it stays deallocated."
            " Its snapshots are in status.outputs.snapshots.",
        )

    @pytest.mark.parametrize("power", [P.STARTING, P.DEALLOCATING])
    def test_a_source_in_transition_is_waited_for_with_its_state_named(self, power: model.PowerState) -> None:
        action = copy_plan.plan(STOPPING, AT_START, source(power))

        assert action == Wait(
            Reason.VM_TRANSITIONING,
            f"VM web-01 is {power.value}; waiting for Azure to finish that first.",
            3.0,
            Phase.COPYING,
        )


class TestAWindowsCopyThroughWinRMIsRefused:
    def test_the_message_names_the_vm_the_field_to_set_and_that_nothing_was_touched(self) -> None:
        spec = Spec.from_body({**WINDOWS_BODY, "windows": {"transport": "WinRM"}})

        assert copy_plan.windows_transport(spec, source(os_type=model.OsType.WINDOWS)) == Fail(
            Reason.COPY_NOT_SUPPORTED,
            "VM web-01 runs Windows, and vmgen runs sysprep on a Windows copy only through Azure Run Command"
            " (spec.winrm names the source's listener, not the copy's). Set spec.windows.transport:"
            " RunCommand; spec.winrm may stay, it is then used only to ask the source, read-only, whether it"
            " is domain-joined (docs/copy.md). The VM was not touched.",
        )


class TestTheCopysIdsAndDisks:
    def test_outputs_record_the_full_azure_ids_of_the_copy_its_nic_and_its_disks(self) -> None:
        outputs = copy_plan.outputs_for(STOPPING, source(), owner=OWNER)

        assert outputs == CopyOutputs(
            vm_id=f"{GROUP}/providers/Microsoft.Compute/virtualMachines/web-01-vmgen-{H}",
            nic_id=f"{GROUP}/providers/Microsoft.Network/networkInterfaces/web-01-vmgen-{H}-nic",
            disk_ids=(
                f"{GROUP}/providers/Microsoft.Compute/disks/web-01-vmgen-{H}-os",
                f"{GROUP}/providers/Microsoft.Compute/disks/web-01-vmgen-{H}-lun0",
            ),
            state="Creating",
        )

    def test_each_copy_disk_is_in_the_sources_group_and_built_from_its_own_snapshot(self) -> None:
        disks = copy_plan.copy_disks(STOPPING, source(), owner=OWNER)

        snapshots = f"{GROUP}/providers/Microsoft.Compute/snapshots"
        assert disks == (
            copy_plan.CopyDisk(
                images.ResourceRef(SUB, "rg", f"web-01-vmgen-{H}-os"),
                f"{snapshots}/web-01-os-vmgen-{H}",
                None,
            ),
            copy_plan.CopyDisk(
                images.ResourceRef(SUB, "rg", f"web-01-vmgen-{H}-lun0"),
                f"{snapshots}/web-01-lun0-vmgen-{H}",
                0,
            ),
        )

    def test_a_source_without_an_os_disk_id_never_makes_a_data_disks_snapshot_the_copys_os_disk(self) -> None:
        disks = copy_plan.copy_disks(STOPPING, source(os_disk_id=""), owner=OWNER)

        assert [(d.lun, d.snapshot_id.rsplit("/", 1)[1]) for d in disks] == [(0, f"web-01-lun0-vmgen-{H}")]


class TestTheAddressTheGuestIsReachedAt:
    def test_a_spec_without_ssh_before_the_copy_exists_has_no_host(self) -> None:
        spec = Spec.from_body({**WINDOWS_BODY, "windows": {"transport": "RunCommand"}})

        assert spec.ssh is None
        assert copy_plan.ssh_host(spec, at(spec, StepName.VALIDATE)) == ""

    def test_once_the_copy_is_built_its_own_address_is_used(self) -> None:
        status = at(STOPPING, *STOPPING.steps[:5]).with_outputs(
            Outputs(copy=CopyOutputs(vm_id=f"{GROUP}/providers/x/y/web-01-vmgen-{H}", address="10.213.9.4"))
        )

        assert copy_plan.ssh_host(STOPPING, status) == "10.213.9.4"


STARTED = NOW - timedelta(minutes=30)  # spec.timeouts.copy defaults to 30 minutes


class TestTheCopyIsWaitedForUntilSpecTimeoutsCopy:
    """`>`: at exactly spec.timeouts.copy the copy is still within it; one microsecond later it is not."""

    @pytest.mark.parametrize(
        ("copy", "state"),
        [(None, "missing"), (source(P.STOPPED), "stopped"), (source(agent_ready=False), "running")],
    )
    def test_a_copy_not_ready_at_exactly_the_deadline_is_still_waited_for(
        self, copy: model.VmObservation | None, state: str
    ) -> None:
        action = copy_plan.readiness(STOPPING, copy, started=STARTED, now=NOW)

        assert action == Wait(
            Reason.COPY_CREATING,
            f"The copy of VM web-01 is {state}; waiting for it to run with its agent ready.",
            3.0,
            Phase.COPYING,
        )

    @pytest.mark.parametrize(("copy", "state"), [(None, "missing"), (source(P.STOPPED), "stopped")])
    def test_one_microsecond_past_the_deadline_it_fails_with_the_limit_in_minutes(
        self, copy: model.VmObservation | None, state: str
    ) -> None:
        action = copy_plan.readiness(STOPPING, copy, started=STARTED - timedelta(microseconds=1), now=NOW)

        assert action == Fail(
            Reason.COPY_NOT_READY,
            "The copy of VM web-01 did not run with its agent ready within spec.timeouts.copy (30m);"
            f" it is {state}. Look at its boot diagnostics in Azure; the source VM was not touched.",
        )

    def test_a_limit_in_seconds_is_shown_in_fractional_minutes(self) -> None:
        spec = Spec.from_body({**BODY, "timeouts": {"copy": "90s"}})

        action = copy_plan.readiness(spec, None, started=NOW - timedelta(minutes=2), now=NOW)

        assert isinstance(action, Fail) and "(1.5m)" in action.message

    def test_a_copy_whose_start_was_never_recorded_has_no_deadline(self) -> None:
        assert not copy_plan.deadline_passed(None, NOW, timedelta(0))
