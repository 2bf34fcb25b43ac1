"""What the Windows guest step's decisions carry beyond their type (domain/windows_plan.py): the phase and
delay of every wait, the transport's effect on whether the guest can be read, the exact bounds (sysprep
attempts, sysprepTimeout, poll delays), and the facts a person needs in each message: the VM, the Secret,
the command to run, the file to delete, the timeout as the spec writes it.

test_windows_plan.py holds the rows by outcome; this file pins what those rows leave open.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tests.unit.test_windows_plan import (
    ADE,
    BASIC_HTTP,
    NO_WINRM,
    NOW,
    RUN_COMMAND,
    WINRM,
    at,
    report,
    state,
    vm,
)
from vmgen.domain import api, model, planner, windows, windows_plan
from vmgen.domain.actions import transitioning
from vmgen.domain.phases import Phase
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import Status, Step, StepName, StepState
from vmgen.domain.windows_actions import CheckSysprep, MarkSysprepUnknown, StartSysprep

P = model.PowerState
S = StepState
MARKER = "C:\\Windows\\Temp\\vmgen-sysprep-started.txt"
CONFIRM = f'{api.CONFIRM_ANNOTATION}: "true"'


def decide(spec: Spec, status: Status, observation: model.VmObservation, confirmed: bool = False) -> Any:
    return planner.plan(spec, status, observation, now=NOW, confirmed=confirmed)


def agent_wait(phase: Phase) -> planner.Wait:
    return planner.Wait(
        Reason.AGENT_NOT_READY,
        "The VM agent of win-01 is not ready, and spec.windows.transport RunCommand needs it."
        " Waiting for the agent; or use transport WinRM.",
        15.0,
        phase,
    )


class TestTheTransportDecidesWhetherTheGuestCanBeRead:
    @pytest.mark.parametrize(
        ("spec", "status", "expected"),
        [
            pytest.param(
                WINRM, at(S.PENDING), StartSysprep(), id="WinRM starts sysprep without the VM agent"
            ),
            pytest.param(
                WINRM, at(S.RUNNING), CheckSysprep(), id="WinRM reads a running step without the agent"
            ),
            pytest.param(
                WINRM, at(S.UNKNOWN), CheckSysprep(), id="WinRM re-reads an unknown outcome without it"
            ),
            pytest.param(
                RUN_COMMAND,
                at(S.PENDING),
                agent_wait(Phase.DEPROVISIONING),
                id="Run Command waits for the agent before starting sysprep",
            ),
            pytest.param(
                RUN_COMMAND,
                at(S.RUNNING),
                agent_wait(Phase.DEPROVISIONING),
                id="Run Command waits for the agent before reading a running step",
            ),
            pytest.param(
                RUN_COMMAND,
                at(S.UNKNOWN),
                planner.AwaitConfirmation(),
                id="Run Command without the agent leaves an unknown outcome to a person",
            ),
            pytest.param(
                RUN_COMMAND,
                Status(),
                agent_wait(Phase.VALIDATING),
                id="Run Command validation waits for the agent in Validating",
            ),
        ],
    )
    def test_a_vm_agent_that_is_not_ready(self, spec: Spec, status: Status, expected: Any) -> None:
        assert decide(spec, status, vm(agent_ready=False)) == expected


class TestPowerTransitionsAreWaitedForInTheirPhase:
    @pytest.mark.parametrize(
        ("status", "power", "phase"),
        [
            pytest.param(Status(), P.STOPPING, Phase.VALIDATING, id="validation"),
            pytest.param(at(S.PENDING), P.STARTING, Phase.DEPROVISIONING, id="before sysprep started"),
            pytest.param(at(S.RUNNING), P.DEALLOCATING, Phase.DEPROVISIONING, id="while sysprep runs"),
        ],
    )
    def test_a_vm_in_transition(self, status: Status, power: model.PowerState, phase: Phase) -> None:
        assert decide(WINRM, status, vm(power)) == transitioning("win-01", power, phase)


class TestStoppedVms:
    def test_sysprep_through_run_command_that_powered_the_vm_off_is_checkpointed(self) -> None:
        assert decide(RUN_COMMAND, at(S.RUNNING), vm(P.DEALLOCATED)) == planner.Checkpoint(
            StepName.DEPROVISION,
            Reason.SYSPREP_SUCCEEDED,
            "Sysprep /generalize /oobe /shutdown finished and powered VM win-01 off (deallocated).",
        )

    def test_a_vm_stopped_mid_sysprep_over_winrm_names_the_vm_and_its_state(self) -> None:
        action = decide(WINRM, at(S.RUNNING), vm(P.STOPPED))
        assert isinstance(action, MarkSysprepUnknown)
        assert "over WinRM (with /quit) but VM win-01 is now stopped" in action.why

    @pytest.mark.parametrize(
        ("status", "tense"),
        [pytest.param(Status(), "is", id="at validation"), pytest.param(at(S.PENDING), "was", id="later")],
    )
    def test_a_stopped_vm_says_what_it_is_and_how_to_confirm(self, status: Status, tense: str) -> None:
        action = decide(WINRM, status, vm(P.DEALLOCATED))
        assert isinstance(action, planner.Fail)
        assert action.reason is Reason.VM_NOT_RUNNING
        assert action.message.startswith(f"VM win-01 {tense} deallocated but not generalized")
        assert (
            "so vmgen cannot run sysprep in it (and never starts a VM itself). Start the VM, then delete and"
            " recreate this resource; or, if sysprep already generalized its guest, recreate"
            in action.message
        )
        assert action.message.endswith(
            f"recreate this resource with the annotation {CONFIRM} and vmgen deallocates and generalizes it"
            " as it is."
        )

    def test_a_person_confirming_a_stopped_vm_before_sysprep_started_is_believed(self) -> None:
        assert decide(WINRM, at(S.PENDING), vm(P.DEALLOCATED), confirmed=True) == planner.ConfirmDeprovision()

    def test_a_person_confirming_an_unknown_outcome_is_believed(self) -> None:
        assert decide(WINRM, at(S.UNKNOWN), vm(), confirmed=True) == planner.ConfirmDeprovision()


class TestValidationMessages:
    def test_winrm_without_spec_winrm_names_the_fields_and_the_other_transport(self) -> None:
        action = decide(NO_WINRM, Status(), vm())
        assert isinstance(action, planner.Fail)
        assert action.message.startswith("VM win-01 runs Windows")
        assert "set spec.winrm (host, credentialsSecretRef, caSecretRef) so that" in action.message
        assert "or set spec.windows.transport: RunCommand. The VM was not touched." in action.message
        assert action.message.endswith("The VM was not touched.")

    def test_basic_over_http_names_the_endpoint_the_secret_and_the_two_fixes(self) -> None:
        action = decide(BASIC_HTTP, Status(), vm())
        assert isinstance(action, planner.Fail)
        message = action.message
        assert "(http://10.0.0.5:5985/wsman)" in message
        assert "Secret admin would cross the network in clear text" in message
        assert "(allowUnencrypted only lets the object past admission). Use tls: true" in message
        assert "HTTPS listener on port 5986, or auth: ntlm (WinRM then encrypts every message)" in message
        assert message.endswith("Nothing was sent to the VM.")

    @pytest.mark.parametrize(
        "status", [pytest.param(Status(), id="at validation"), pytest.param(at(S.PENDING), id="later")]
    )
    def test_disk_encryption_names_the_vm_every_extension_and_the_command(self, status: Status) -> None:
        both = (ADE, "microsoft.azure.security.AzureDiskEncryptionForLinux", "Other.Extension")
        action = decide(WINRM, status, vm(extensions=both))
        assert isinstance(action, planner.Fail)
        assert action.reason is Reason.DISK_ENCRYPTION_EXTENSION_PRESENT
        assert action.message.startswith(
            "VM win-01 has the Azure Disk Encryption extension (Microsoft.Azure.Security.AzureDiskEncryption,"
            " microsoft.azure.security.AzureDiskEncryptionForLinux): sysprep needs every volume fully"
            " decrypted."
        )
        assert (
            "Disable it (az vm encryption disable --volume-type ALL), wait for the volumes to be"
            in action.message
        )
        assert "FullyDecrypted, remove the extension, then recreate this resource." in action.message
        assert action.message.endswith(" Sysprep was not started; the VM is unchanged.")

    def test_a_vm_without_encryption_extensions_has_no_finding(self) -> None:
        assert windows_plan.disk_encryption(vm(extensions=("Microsoft.Compute.CustomScriptExtension",))) == ""


class TestPreflightVerdictMessages:
    def test_a_generalized_guest_says_so_and_that_sysprep_is_not_started_again(self) -> None:
        verdict = windows_plan.after_preflight(
            report(image_state=windows.IMAGE_STATE_GENERALIZED), vm_name="w"
        )
        assert verdict == windows_plan.Verified(
            "ImageState of VM w reads IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE already: sysprep generalized it"
            " before; it is not started again."
        )

    def test_every_finding_is_listed_and_the_other_reasons_named_once(self) -> None:
        found = report(
            services=(("RdAgent", "Stopped"), ("WindowsAzureGuestAgent", "Stopped")),
            pending_reboot=("RebootPending",),
            roles=("AD-Domain-Services",),
        )
        verdict = windows_plan.after_preflight(found, vm_name="win-01")
        first, second, third, fourth = (f.message for f in found.findings)
        assert verdict == windows_plan.GiveUp(
            Reason.AGENT_SERVICE_NOT_RUNNING,
            "Preflight of VM win-01 found what sysprep cannot work with (also: RebootPending,"
            f" UnsupportedServerRole): {first}; {second}; {third}; {fourth}. Sysprep was not started; the VM"
            " is unchanged. Fix it in the guest, then delete and recreate this resource.",
        )

    def test_a_single_finding_names_no_others(self) -> None:
        verdict = windows_plan.after_preflight(report(pending_reboot=("X",)), vm_name="win-01")
        assert isinstance(verdict, windows_plan.GiveUp)
        assert verdict.message.startswith(
            "Preflight of VM win-01 found what sysprep cannot work with: a reboot"
        )

    def test_findings_of_one_kind_name_no_others(self) -> None:
        found = report(volumes=(("C:", "FullyEncrypted"), ("D:", "EncryptionInProgress")))
        verdict = windows_plan.after_preflight(found, vm_name="win-01")
        assert isinstance(verdict, windows_plan.GiveUp)
        assert "cannot work with: volume C:" in verdict.message


STEP = Step(state=S.RUNNING, started_at=NOW)
TIMEOUT = timedelta(minutes=30)


def judge(
    found: windows.SysprepState, step: Step = STEP, *, after: timedelta = timedelta(0), **kw: Any
) -> Any:
    return windows_plan.judge(found, step=step, timeout=kw.get("timeout", TIMEOUT), now=NOW + after)


class TestSysprepBounds:
    @pytest.mark.parametrize(
        ("unstarted", "gives_up"),
        [
            pytest.param(3, False, id="the fourth unstarted run starts again"),
            pytest.param(4, True, id="fifth"),
        ],
    )
    def test_sysprep_that_never_starts_is_tried_five_times(self, unstarted: int, gives_up: bool) -> None:
        verdict = judge(
            state(windows.IMAGE_STATE_COMPLETE, started=False), replace(STEP, unstarted_runs=unstarted)
        )
        if gives_up:
            assert verdict == windows_plan.GiveUp(
                Reason.DEPROVISION_FAILED,
                f"Sysprep did not start after 5 attempts (no start marker {MARKER} in the guest).",
            )
        else:
            assert verdict == windows_plan.NotStarted(
                "The guest shows no sysprep start marker although the intent was recorded: sysprep never"
                " started. Starting it now."
            )

    # "within sysprepTimeout": exactly at the deadline sysprep is still within it; a microsecond past, not.
    @pytest.mark.parametrize(
        ("after", "timed_out"),
        [
            pytest.param(TIMEOUT, False, id="exactly at the deadline it is still watched"),
            pytest.param(TIMEOUT + timedelta(microseconds=1), True, id="a microsecond past it fails"),
        ],
    )
    def test_the_deadline(self, after: timedelta, timed_out: bool) -> None:
        verdict = judge(state(windows.IMAGE_STATE_SPECIALIZE), after=after)
        assert isinstance(verdict, windows_plan.GiveUp if timed_out else windows_plan.StillRunning)

    def test_a_timeout_names_the_spec_field_the_state_the_reboot_wait_and_the_logs(self) -> None:
        verdict = judge(state(windows.IMAGE_STATE_SPECIALIZE, err=(" Error X ",)), after=timedelta(hours=1))
        assert verdict == windows_plan.GiveUp(
            Reason.SYSPREP_TIMEOUT,
            "Sysprep did not finish within spec.windows.sysprepTimeout (30m): ImageState is"
            " IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE (waiting for a reboot that never comes); sysprep.exe is"
            " not running. setuperr.log: Error X.",
        )

    def test_a_timeout_while_sysprep_works_says_it_is_still_running_and_no_reboot_wait(self) -> None:
        verdict = judge(state(windows.IMAGE_STATE_UNDEPLOYABLE, running=True), after=timedelta(hours=1))
        assert isinstance(verdict, windows_plan.GiveUp)
        assert verdict.message.endswith(
            ": ImageState is IMAGE_STATE_UNDEPLOYABLE; sysprep.exe is still running. no sysprep log lines."
        )

    @pytest.mark.parametrize(
        ("timeout", "written"),
        [
            pytest.param(timedelta(0), "0s", id="zero"),
            pytest.param(timedelta(seconds=4), "4s", id="seconds"),
            pytest.param(timedelta(seconds=60), "1m", id="a minute"),
            pytest.param(timedelta(seconds=90), "1m30s", id="minutes and seconds"),
            pytest.param(timedelta(hours=1), "1h", id="an hour"),
            pytest.param(timedelta(hours=1, minutes=30, seconds=5), "1h30m5s", id="all three"),
        ],
    )
    def test_the_timeout_is_written_as_the_spec_writes_it(self, timeout: timedelta, written: str) -> None:
        verdict = judge(
            state(windows.IMAGE_STATE_SPECIALIZE), after=timeout + timedelta(seconds=1), timeout=timeout
        )
        assert isinstance(verdict, windows_plan.GiveUp)
        assert f"spec.windows.sysprepTimeout ({written}):" in verdict.message


class TestSysprepVerdictMessages:
    def test_generalized(self) -> None:
        assert judge(state(windows.IMAGE_STATE_GENERALIZED)) == windows_plan.Verified(
            "Sysprep finished: ImageState is IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE."
        )

    @pytest.mark.parametrize(
        ("after", "delay"),
        [
            pytest.param(timedelta(0), 1.0, id="soon at first"),
            pytest.param(timedelta(seconds=100), 10.0, id="a tenth of the time elapsed"),
            pytest.param(timedelta(minutes=20), 30.0, id="at most every 30 s"),
        ],
    )
    def test_running_sysprep_is_looked_at_again_after_a_tenth_of_its_time(
        self, after: timedelta, delay: float
    ) -> None:
        assert judge(
            state(windows.IMAGE_STATE_UNDEPLOYABLE, running=True), after=after
        ) == windows_plan.StillRunning("Sysprep is running (ImageState IMAGE_STATE_UNDEPLOYABLE).", delay)

    def test_a_step_without_a_start_time_is_watched_soon_and_never_times_out(self) -> None:
        verdict = judge(
            state(windows.IMAGE_STATE_SPECIALIZE), replace(STEP, started_at=None), after=timedelta(days=9)
        )
        assert verdict == windows_plan.StillRunning(
            "Sysprep is running (ImageState IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE).", 1.0
        )

    def test_undeployable_says_not_to_capture_and_carries_the_logs(self) -> None:
        verdict = judge(state(windows.IMAGE_STATE_UNDEPLOYABLE, err=("Error P",)))
        assert verdict == windows_plan.GiveUp(
            Reason.SYSPREP_UNDEPLOYABLE,
            "Sysprep failed: ImageState is IMAGE_STATE_UNDEPLOYABLE (a sysprep provider failed and the"
            " machine cannot be deployed any more). setuperr.log: Error P. Do not capture an image from this"
            " VM; restore it from a snapshot or rebuild it.",
        )

    def test_an_immediate_failure_names_the_usual_cause_and_the_marker_to_delete(self) -> None:
        verdict = judge(state(windows.IMAGE_STATE_COMPLETE))
        assert verdict == windows_plan.GiveUp(
            Reason.SYSPREP_FAILED,
            "Sysprep failed at once: ImageState is still IMAGE_STATE_COMPLETE. no sysprep log lines. Fix the"
            " cause in the guest (an AppX package installed for one user only is the usual one: remove it"
            f" with Remove-AppxPackage), delete {MARKER}, then recreate this resource.",
        )


class TestTheUnknownOutcomeMessage:
    def test_it_says_where_to_look_what_to_expect_and_the_exact_command(self) -> None:
        message = windows_plan.unknown_message("VM w was stopped", name="job-1", namespace="team")
        assert message.startswith("VM w was stopped. vmgen cannot tell whether sysprep finished")
        assert (
            "Check the guest (ImageState in"
            " HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State," in message
        )
        assert (
            "for example through the serial console); if it reads"
            " IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE, set the" in message
        )
        assert f"(kubectl annotate vmgen job-1 -n team {api.CONFIRM_ANNOTATION}=true)" in message
        assert f"annotation {CONFIRM} (kubectl" in message
        assert message.endswith("otherwise delete this resource.")
