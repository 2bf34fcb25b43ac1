"""The Windows guest step's decisions as tables: validation, the deprovision step's rows, what the
preflight and sysprep-state reports mean (domain/windows_plan.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vmgen.domain import model, planner, windows, windows_plan
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import Phase, Status, Step, StepName, StepState
from vmgen.domain.windows_actions import CheckSysprep, MarkSysprepUnknown, StartSysprep, ValidateWindows

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
P = model.PowerState
S = StepState
ADE = "Microsoft.Azure.Security.AzureDiskEncryption"

BODY: dict[str, Any] = {
    "vm": {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "name": "win-01"},
    "osType": "Windows",
    "winrm": {"host": "10.0.0.5", "credentialsSecretRef": {"name": "admin"}, "caSecretRef": {"name": "ca"}},
    "windows": {"transport": "WinRM", "sysprepTimeout": "30m"},
}
WINRM = Spec.from_body(BODY)
RUN_COMMAND = Spec.from_body({**BODY, "windows": {"transport": "RunCommand"}, "winrm": None})
NO_WINRM = Spec.from_body({k: v for k, v in BODY.items() if k != "winrm"})
BASIC_HTTP = Spec.from_body(
    {**BODY, "winrm": {**BODY["winrm"], "tls": False, "auth": "basic", "allowUnencrypted": True}}
)


def vm(power: model.PowerState = P.RUNNING, **changes: Any) -> model.VmObservation:
    base = model.VmObservation(
        id=WINRM.vm.resource_id,
        os_type=model.OsType.WINDOWS,
        power_state=power,
        generalized=False,
        agent_ready=True,
    )
    return replace(base, **changes)


def at(state: StepState, *, started: datetime = NOW, unstarted: int = 0) -> Status:
    return Status(
        phase=Phase.DEPROVISIONING,
        steps={
            StepName.VALIDATE: Step(state=S.SUCCEEDED),
            StepName.DEPROVISION: Step(state=state, started_at=started, unstarted_runs=unstarted),
        },
    )


class TestValidation:
    @pytest.mark.parametrize(
        ("spec", "observation", "confirmed", "expected", "reason"),
        [
            pytest.param(
                WINRM, vm(), False, ValidateWindows, None, id="a running VM with spec.winrm validates"
            ),
            pytest.param(
                RUN_COMMAND, vm(), False, ValidateWindows, None, id="Run Command needs no spec.winrm"
            ),
            pytest.param(
                NO_WINRM, vm(), False, planner.Fail, Reason.INVALID_SPEC, id="WinRM without spec.winrm fails"
            ),
            pytest.param(
                BASIC_HTTP,
                vm(),
                False,
                planner.Fail,
                Reason.WINRM_BASIC_OVER_HTTP,
                id="Basic over plain HTTP is refused with its own reason despite allowUnencrypted",
            ),
            pytest.param(
                WINRM,
                vm(extensions=(ADE,)),
                False,
                planner.Fail,
                Reason.DISK_ENCRYPTION_EXTENSION_PRESENT,
                id="an Azure Disk Encryption extension fails validation",
            ),
            pytest.param(
                WINRM, vm(P.DEALLOCATED), False, planner.Fail, Reason.VM_NOT_RUNNING, id="a stopped VM fails"
            ),
            pytest.param(
                WINRM,
                vm(P.DEALLOCATED),
                True,
                ValidateWindows,
                None,
                id="a stopped VM a person confirmed as sysprepped validates",
            ),
            pytest.param(
                WINRM, vm(P.STARTING), False, planner.Wait, Reason.VM_TRANSITIONING, id="a starting VM waits"
            ),
            pytest.param(
                RUN_COMMAND,
                vm(agent_ready=False),
                False,
                planner.Wait,
                Reason.AGENT_NOT_READY,
                id="Run Command waits for the VM agent",
            ),
        ],
    )
    def test_validation(
        self,
        spec: Spec,
        observation: model.VmObservation,
        confirmed: bool,
        expected: type,
        reason: Reason | None,
    ) -> None:
        action = planner.plan(spec, Status(), observation, now=NOW, confirmed=confirmed)
        assert isinstance(action, expected)
        if reason is not None:
            assert getattr(action, "reason", None) == reason


class TestDeprovisionRows:
    @pytest.mark.parametrize(
        ("spec", "status", "observation", "confirmed", "expected", "reason"),
        [
            pytest.param(
                WINRM, at(S.PENDING), vm(), False, StartSysprep, None, id="a pending step starts sysprep"
            ),
            pytest.param(
                WINRM,
                at(S.PENDING),
                vm(extensions=(ADE,)),
                False,
                planner.Fail,
                Reason.DISK_ENCRYPTION_EXTENSION_PRESENT,
                id="an ADE extension added after validation still stops sysprep",
            ),
            pytest.param(
                WINRM,
                at(S.RUNNING),
                vm(),
                False,
                CheckSysprep,
                None,
                id="a running step reads the state first and never starts sysprep again",
            ),
            pytest.param(
                RUN_COMMAND,
                at(S.RUNNING),
                vm(P.STOPPED),
                False,
                planner.Checkpoint,
                Reason.SYSPREP_SUCCEEDED,
                id="through Run Command a VM stopped after the start finished sysprep /shutdown",
            ),
            pytest.param(
                WINRM,
                at(S.RUNNING),
                vm(P.STOPPED),
                False,
                MarkSysprepUnknown,
                None,
                id="over WinRM a VM stopped mid-sysprep is an unknown outcome",
            ),
            pytest.param(
                WINRM,
                at(S.RUNNING),
                vm(P.STOPPED),
                True,
                planner.ConfirmDeprovision,
                None,
                id="a person's confirmation settles a stopped VM mid-sysprep",
            ),
            pytest.param(
                RUN_COMMAND,
                at(S.RUNNING),
                vm(P.STOPPING),
                False,
                planner.Wait,
                Reason.VM_TRANSITIONING,
                id="a VM stopping by itself after sysprep is waited for",
            ),
            pytest.param(
                WINRM, at(S.UNKNOWN), vm(), False, CheckSysprep, None, id="an unknown outcome is re-read"
            ),
            pytest.param(
                WINRM,
                at(S.UNKNOWN),
                vm(P.DEALLOCATED),
                False,
                planner.AwaitConfirmation,
                None,
                id="an unknown outcome on a stopped VM waits for a person",
            ),
            pytest.param(
                WINRM,
                at(S.PENDING),
                vm(P.DEALLOCATED),
                False,
                planner.Fail,
                Reason.VM_NOT_RUNNING,
                id="a VM stopped before sysprep started fails untouched",
            ),
        ],
    )
    def test_rows(
        self,
        spec: Spec,
        status: Status,
        observation: model.VmObservation,
        confirmed: bool,
        expected: type,
        reason: Reason | None,
    ) -> None:
        action = planner.plan(spec, status, observation, now=NOW, confirmed=confirmed)
        assert isinstance(action, expected), action
        if reason is not None:
            assert getattr(action, "reason", None) == reason


def report(**changes: Any) -> windows.PreflightReport:
    base = windows.PreflightReport(
        image_state=windows.IMAGE_STATE_COMPLETE,
        services=tuple((name, "Running") for name in windows.AGENT_SERVICES),
        volumes=(("C:", "FullyDecrypted"),),
        pending_reboot=(),
        generalization_state=7,
        cleanup_state=2,
        roles=(),
    )
    return replace(base, **changes)


class TestPreflightVerdicts:
    @pytest.mark.parametrize(
        ("found", "reason", "line"),
        [
            pytest.param(
                report(volumes=(("C:", "FullyEncrypted"),)),
                Reason.VOLUME_ENCRYPTED,
                "FullyEncrypted",
                id="BitLocker on",
            ),
            pytest.param(
                report(roles=("AD-Domain-Services",)),
                Reason.UNSUPPORTED_SERVER_ROLE,
                "AD-Domain-Services",
                id="an unsupported role",
            ),
            pytest.param(
                report(services=(("RdAgent", "Stopped"),)),
                Reason.AGENT_SERVICE_NOT_RUNNING,
                "RdAgent",
                id="an agent service stopped",
            ),
            pytest.param(
                report(pending_reboot=("RebootPending",)),
                Reason.REBOOT_PENDING,
                "RebootPending",
                id="a pending reboot",
            ),
            pytest.param(
                report(generalization_state=4),
                Reason.SYSPREP_STATUS_REFUSES,
                "GeneralizationState is 4",
                id="SysprepStatus refusing",
            ),
            pytest.param(
                report(image_state="IMAGE_STATE_UNDEPLOYABLE"),
                Reason.IMAGE_STATE_NOT_COMPLETE,
                "UNDEPLOYABLE",
                id="ImageState not complete",
            ),
        ],
    )
    def test_each_finding_fails_with_its_own_reason_and_sysprep_not_started(
        self, found: windows.PreflightReport, reason: Reason, line: str
    ) -> None:
        verdict = windows_plan.after_preflight(found, vm_name="win-01")
        assert isinstance(verdict, windows_plan.GiveUp)
        assert verdict.reason == reason
        assert line in verdict.message
        assert "Sysprep was not started" in verdict.message

    def test_a_clean_machine_proceeds(self) -> None:
        assert isinstance(windows_plan.after_preflight(report(), vm_name="win-01"), windows_plan.Proceed)

    def test_a_machine_generalized_already_is_checkpointed_not_sysprepped_again(self) -> None:
        verdict = windows_plan.after_preflight(
            report(image_state=windows.IMAGE_STATE_GENERALIZED), vm_name="w"
        )
        assert isinstance(verdict, windows_plan.Verified)

    def test_several_findings_name_the_others(self) -> None:
        verdict = windows_plan.after_preflight(report(roles=("DNS",), pending_reboot=("X",)), vm_name="w")
        assert isinstance(verdict, windows_plan.GiveUp)
        assert verdict.reason == Reason.REBOOT_PENDING
        assert "UnsupportedServerRole" in verdict.message


def state(
    image: str, *, started: bool = True, running: bool = False, err: tuple[str, ...] = ()
) -> windows.SysprepState:
    return windows.SysprepState(
        image_state=image,
        sysprep_started=started,
        sysprep_running=running,
        setup_err_tail=err,
        setup_act_errors=(),
    )


TIMEOUT = timedelta(minutes=30)
STEP = Step(state=S.RUNNING, started_at=NOW)


class TestSysprepVerdicts:
    @pytest.mark.parametrize(
        ("found", "step", "now", "verdict", "reason"),
        [
            pytest.param(
                state(windows.IMAGE_STATE_GENERALIZED),
                STEP,
                NOW,
                windows_plan.Verified,
                None,
                id="generalized is done",
            ),
            pytest.param(
                state("IMAGE_STATE_UNDEPLOYABLE", running=True),
                STEP,
                NOW,
                windows_plan.StillRunning,
                None,
                id="running is watched",
            ),
            pytest.param(
                state(windows.IMAGE_STATE_COMPLETE, err=("Error SYSPRP AppX Contoso",)),
                STEP,
                NOW,
                windows_plan.GiveUp,
                Reason.SYSPREP_FAILED,
                id="COMPLETE after sysprep exited is the AppX failure",
            ),
            pytest.param(
                state("IMAGE_STATE_UNDEPLOYABLE"),
                STEP,
                NOW,
                windows_plan.GiveUp,
                Reason.SYSPREP_UNDEPLOYABLE,
                id="UNDEPLOYABLE after exit",
            ),
            pytest.param(
                state("IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE"),
                STEP,
                NOW + timedelta(minutes=29),
                windows_plan.StillRunning,
                None,
                id="stuck SPECIALIZE waits within the deadline",
            ),
            pytest.param(
                state("IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE"),
                STEP,
                NOW + timedelta(minutes=31),
                windows_plan.GiveUp,
                Reason.SYSPREP_TIMEOUT,
                id="stuck SPECIALIZE past sysprepTimeout fails",
            ),
            pytest.param(
                state(windows.IMAGE_STATE_COMPLETE, started=False),
                STEP,
                NOW,
                windows_plan.NotStarted,
                None,
                id="no marker: never started",
            ),
            pytest.param(
                state(windows.IMAGE_STATE_COMPLETE, started=False),
                replace(STEP, unstarted_runs=4),
                NOW,
                windows_plan.GiveUp,
                Reason.DEPROVISION_FAILED,
                id="sysprep that never starts is bounded",
            ),
        ],
    )
    def test_verdicts(
        self, found: windows.SysprepState, step: Step, now: datetime, verdict: type, reason: Reason | None
    ) -> None:
        judged = windows_plan.judge(found, step=step, timeout=TIMEOUT, now=now)
        assert isinstance(judged, verdict), judged
        if reason is not None:
            assert isinstance(judged, windows_plan.GiveUp)
            assert judged.reason == reason

    def test_the_appx_failure_carries_the_setuperr_line(self) -> None:
        judged = windows_plan.judge(
            state(windows.IMAGE_STATE_COMPLETE, err=("Error SYSPRP Package Contoso.App_1.0",)),
            step=STEP,
            timeout=TIMEOUT,
            now=NOW,
        )
        assert isinstance(judged, windows_plan.GiveUp)
        assert "Package Contoso.App_1.0" in judged.message

    def test_polls_are_soon_at_first_and_bounded_later(self) -> None:
        assert windows_plan.poll_delay(0) == 1.0
        assert windows_plan.poll_delay(3600) == 30.0
