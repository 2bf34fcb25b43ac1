"""Pure decisions of the Windows guest step: sysprep over WinRM or through Azure Run Command.

The planner (domain/planner.py) hands a Windows VM's validation and its deprovision step here; the step's
I/O (steps/prepare_windows.py) asks `after_preflight()` and `judge()` what the guest's reports mean.
Every rule lives here and is table-tested (tests/unit/test_windows_plan.py):

- validation: the transport's configuration (spec.winrm for WinRM; Basic over plain HTTP refused with
  its own reason before any call, `allowUnencrypted` notwithstanding), no Azure Disk Encryption
  extension on the VM (read from Azure: sysprep needs decrypted volumes), the VM running;
- before sysprep: every preflight finding fails with its own reason, the VM untouched and sysprep never
  started; a guest whose ImageState already reads RESEAL_TO_OOBE is checkpointed, not sysprepped again;
- once intent is recorded (step Running), only evidence decides: ImageState plus the start marker that
  the start script leaves (domain/windows.py). Sysprep is never started twice: a pass that finds the
  step Running reads the state first (after a restart or a dropped connection alike), and the start
  script itself starts nothing when its marker exists;
- the wait is bounded by spec.windows.sysprepTimeout from the step's startedAt (kept across restarts);
  stuck at SPECIALIZE_RESEAL_TO_OOBE, or still running, past it fails `SysprepTimeout`;
- failures carry the log lines a person needs: setuperr.log's tail and setupact.log's errors;
- Run Command starts sysprep with /shutdown (its runner must answer before the VM stops), so a VM found
  stopped after sysprep was started through Run Command has finished sysprep; over WinRM (/quit) the VM
  keeps running and a stopped VM mid-sysprep is an unknown outcome for a person to confirm.
The VM is never started: a stopped VM that sysprep did not stop waits for a person's confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from vmgen.domain import api, model, windows
from vmgen.domain.actions import (
    Action,
    AwaitConfirmation,
    Checkpoint,
    ConfirmDeprovision,
    Fail,
    Wait,
    transitioning,
)
from vmgen.domain.deprovision import GiveUp, Proceed, StillRunning, Verified
from vmgen.domain.phases import Phase, Step
from vmgen.domain.reasons import Reason
from vmgen.domain.spec import Spec
from vmgen.domain.status import Status, StepName, StepState
from vmgen.domain.windows_actions import CheckSysprep, MarkSysprepUnknown, StartSysprep, ValidateWindows
from vmgen.domain.windows_spec import Transport

__all__ = [
    "ADE_EXTENSIONS",
    "MAX_UNSTARTED_RUNS",
    "UNKNOWN_RECHECK_SECONDS",
    "GiveUp",
    "NotStarted",
    "Proceed",
    "StillRunning",
    "Verified",
    "after_preflight",
    "deprovision",
    "judge",
    "poll_delay",
    "unknown_message",
    "validate",
]

ADE_EXTENSIONS = frozenset(
    {"microsoft.azure.security.azurediskencryption", "microsoft.azure.security.azurediskencryptionforlinux"}
)
"""`<publisher>.<type>` of Azure Disk Encryption, lower-cased."""
MAX_UNSTARTED_RUNS = 5
UNKNOWN_RECHECK_SECONDS = 60.0
"""While a person is asked, the state is re-read (read-only) this often; the annotation wakes it at once."""

_STOPPED = (model.PowerState.DEALLOCATED, model.PowerState.STOPPED)
_FINDING_REASONS = {
    windows.FindingKind.IMAGE_STATE_NOT_COMPLETE: Reason.IMAGE_STATE_NOT_COMPLETE,
    windows.FindingKind.AGENT_SERVICE_NOT_RUNNING: Reason.AGENT_SERVICE_NOT_RUNNING,
    windows.FindingKind.VOLUME_ENCRYPTED: Reason.VOLUME_ENCRYPTED,
    windows.FindingKind.REBOOT_PENDING: Reason.REBOOT_PENDING,
    windows.FindingKind.SYSPREP_STATUS_REFUSES: Reason.SYSPREP_STATUS_REFUSES,
    windows.FindingKind.UNSUPPORTED_SERVER_ROLE: Reason.UNSUPPORTED_SERVER_ROLE,
}
_UNTOUCHED = " Sysprep was not started; the VM is unchanged."


# -- the planner's rows ---------------------------------------------------------------------------


def validate(spec: Spec, vm: model.VmObservation, *, confirmed: bool) -> Action:
    """Validation of a Windows VM that is not generalized (adoption was decided before)."""
    windows_spec = spec.windows
    if windows_spec.transport is Transport.WINRM:
        if windows_spec.winrm is None:
            return Fail(
                Reason.INVALID_SPEC,
                f"VM {spec.vm.name} runs Windows and spec.windows.transport is WinRM: set spec.winrm (host,"
                " credentialsSecretRef, caSecretRef) so that sysprep can run over WinRM, or set"
                " spec.windows.transport: RunCommand. The VM was not touched.",
            )
        if windows_spec.winrm.basic_over_http:
            return Fail(Reason.WINRM_BASIC_OVER_HTTP, basic_over_http_message(spec))
    if vm.power_state in _STOPPED:
        if confirmed:  # a person says sysprep ran already: deallocate and generalize it
            return ValidateWindows()
        return Fail(Reason.VM_NOT_RUNNING, _not_running(spec, vm, "is"))
    if vm.power_state is not model.PowerState.RUNNING:
        return transitioning(spec.vm.name, vm.power_state, Phase.VALIDATING)
    if ade := disk_encryption(vm):
        return Fail(Reason.DISK_ENCRYPTION_EXTENSION_PRESENT, ade)
    if windows_spec.transport is Transport.RUN_COMMAND and not vm.agent_ready:
        return _agent_not_ready(spec, Phase.VALIDATING)
    return ValidateWindows()


def deprovision(
    spec: Spec, status: Status, vm: model.VmObservation, *, now: datetime, confirmed: bool
) -> Action:
    """The deprovision step of a Windows VM: start sysprep once, then watch it from evidence."""
    step = status.step(StepName.DEPROVISION)
    run_command = spec.windows.transport is Transport.RUN_COMMAND
    inspectable = vm.power_state is model.PowerState.RUNNING and (vm.agent_ready or not run_command)
    if step.state is StepState.UNKNOWN:
        if confirmed:
            return ConfirmDeprovision()
        return CheckSysprep() if inspectable else AwaitConfirmation()
    if step.state is StepState.RUNNING:
        if vm.power_state in _STOPPED:
            if run_command:
                return Checkpoint(
                    StepName.DEPROVISION,
                    Reason.SYSPREP_SUCCEEDED,
                    f"Sysprep /generalize /oobe /shutdown finished and powered VM {spec.vm.name} off"
                    f" ({vm.power_state.value}).",
                )
            if confirmed:
                return ConfirmDeprovision()
            return MarkSysprepUnknown(
                f"Sysprep was started over WinRM (with /quit) but VM {spec.vm.name} is now"
                f" {vm.power_state.value}: someone stopped it, and its ImageState cannot be read"
            )
        if vm.power_state is not model.PowerState.RUNNING:
            return transitioning(spec.vm.name, vm.power_state, Phase.DEPROVISIONING)
        if not inspectable:
            return _agent_not_ready(spec, Phase.DEPROVISIONING)
        return CheckSysprep()
    if vm.power_state in _STOPPED:
        if confirmed:
            return ConfirmDeprovision()
        return Fail(Reason.VM_NOT_RUNNING, _not_running(spec, vm, "was"))
    if vm.power_state is not model.PowerState.RUNNING:
        return transitioning(spec.vm.name, vm.power_state, Phase.DEPROVISIONING)
    if ade := disk_encryption(vm):
        return Fail(Reason.DISK_ENCRYPTION_EXTENSION_PRESENT, ade)
    if not inspectable:
        return _agent_not_ready(spec, Phase.DEPROVISIONING)
    return StartSysprep()


# -- what the guest's reports mean ----------------------------------------------------------------


# Proceed, Verified, StillRunning and GiveUp are the guest-preparation outcomes of domain/deprovision.py,
# shared by both OS paths; only NotStarted differs (sysprep's carries no backoff delay).


@dataclass(frozen=True)
class NotStarted:
    """The intent was recorded but the start marker is absent: sysprep never started (safe to start)."""

    message: str


Verdict = Proceed | Verified | StillRunning | NotStarted | GiveUp


def after_preflight(report: windows.PreflightReport, *, vm_name: str) -> Verdict:
    if report.image_state == windows.IMAGE_STATE_GENERALIZED:
        return Verified(
            f"ImageState of VM {vm_name} reads {windows.IMAGE_STATE_GENERALIZED} already: sysprep"
            " generalized it before; it is not started again."
        )
    findings = report.findings
    if not findings:
        return Proceed()
    first = findings[0]
    text = "; ".join(f.message for f in findings)
    others = sorted({_FINDING_REASONS[f.kind].value for f in findings[1:]} - {_FINDING_REASONS[first.kind]})
    also = f" (also: {', '.join(others)})" if others else ""
    return GiveUp(
        _FINDING_REASONS[first.kind],
        f"Preflight of VM {vm_name} found what sysprep cannot work with{also}: {text}.{_UNTOUCHED} Fix it"
        " in the guest, then delete and recreate this resource.",
    )


def preflight_findings(report: windows.PreflightReport) -> tuple[tuple[Reason, str], ...]:
    """Every blocker of a Windows preflight report with the reason it fails under (spec.mode Preflight)."""
    return tuple((_FINDING_REASONS[f.kind], f.message) for f in report.findings)


def judge(state: windows.SysprepState, *, step: Step, timeout: timedelta, now: datetime) -> Verdict:
    """What a sysprep-state report means once intent was recorded (the step is Running or Unknown)."""
    progress = state.progress
    logs = state.log_excerpt()
    if progress is windows.SysprepProgress.GENERALIZED:
        return Verified(f"Sysprep finished: ImageState is {windows.IMAGE_STATE_GENERALIZED}.")
    if progress is windows.SysprepProgress.NOT_STARTED:
        if step.unstarted_runs + 1 >= MAX_UNSTARTED_RUNS:
            return GiveUp(
                Reason.DEPROVISION_FAILED,
                f"Sysprep did not start after {MAX_UNSTARTED_RUNS} attempts (no start marker"
                " C:\\Windows\\Temp\\vmgen-sysprep-started.txt in the guest).",
            )
        return NotStarted(
            "The guest shows no sysprep start marker although the intent was recorded: sysprep never"
            " started. Starting it now."
        )
    if progress is windows.SysprepProgress.FAILED:
        if state.image_state == windows.IMAGE_STATE_UNDEPLOYABLE:
            return GiveUp(
                Reason.SYSPREP_UNDEPLOYABLE,
                f"Sysprep failed: ImageState is {state.image_state} (a sysprep provider failed and the"
                f" machine cannot be deployed any more). {logs}. Do not capture an image from this VM;"
                " restore it from a snapshot or rebuild it.",
            )
        return GiveUp(
            Reason.SYSPREP_FAILED,
            f"Sysprep failed at once: ImageState is still {state.image_state}. {logs}. Fix the cause in the"
            " guest (an AppX package installed for one user only is the usual one: remove it with"
            " Remove-AppxPackage), delete C:\\Windows\\Temp\\vmgen-sysprep-started.txt, then recreate"
            " this resource.",
        )
    started = step.started_at
    if started is not None and now - started > timeout:
        return GiveUp(
            Reason.SYSPREP_TIMEOUT,
            f"Sysprep did not finish within spec.windows.sysprepTimeout ({_duration(timeout)}): ImageState is"
            f" {state.image_state}"
            + (
                " (waiting for a reboot that never comes)"
                if state.image_state == windows.IMAGE_STATE_SPECIALIZE
                else ""
            )
            + f"; sysprep.exe is {'still' if state.sysprep_running else 'not'} running. {logs}.",
        )
    elapsed = (now - started).total_seconds() if started else 0.0
    return StillRunning(f"Sysprep is running (ImageState {state.image_state}).", poll_delay(elapsed))


def poll_delay(elapsed: float) -> float:
    """Soon at first (the testbed's sysprep takes a second), then no more than every 30 s: a real
    sysprep takes minutes, and every look through Run Command costs a managed run command."""
    return min(30.0, max(1.0, elapsed / 10.0))


# -- messages -------------------------------------------------------------------------------------


def unknown_message(why: str, *, name: str, namespace: str) -> str:
    """What a person reads while vmgen waits for them (the exact command to run included)."""
    return (
        f"{why}. vmgen cannot tell whether sysprep finished and will not start it again blindly. Check the"
        " guest (ImageState in HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State, for"
        " example through the serial console); if it reads IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE, set the"
        f' annotation {api.CONFIRM_ANNOTATION}: "true" (kubectl annotate vmgen {name} -n {namespace}'
        f" {api.CONFIRM_ANNOTATION}=true) and vmgen deallocates and generalizes it; otherwise delete this"
        " resource."
    )


def basic_over_http_message(spec: Spec) -> str:
    winrm = spec.windows.winrm
    assert winrm is not None
    return (
        f"spec.winrm asks for Basic authentication over plain HTTP ({winrm.endpoint}): the password in"
        f" Secret {winrm.credentials_secret} would cross the network in clear text, so vmgen refuses it"
        " (allowUnencrypted only lets the object past admission). Use tls: true with an HTTPS listener"
        " on port 5986, or auth: ntlm (WinRM then encrypts every message). Nothing was sent to the VM."
    )


def disk_encryption(vm: model.VmObservation) -> str:
    found = [e for e in vm.extensions if e.lower() in ADE_EXTENSIONS]
    if not found:
        return ""
    return (
        f"VM {vm.id.rsplit('/', 1)[-1]} has the Azure Disk Encryption extension ({', '.join(found)}):"
        " sysprep needs every volume fully decrypted. Disable it (az vm encryption disable --volume-type"
        " ALL), wait for the volumes to be FullyDecrypted, remove the extension, then recreate this"
        " resource." + _UNTOUCHED
    )


def _not_running(spec: Spec, vm: model.VmObservation, tense: str) -> str:
    return (
        f"VM {spec.vm.name} {tense} {vm.power_state.value} but not generalized, so vmgen cannot run sysprep"
        " in it (and never starts a VM itself). Start the VM, then delete and recreate this resource; or,"
        " if sysprep already generalized its guest, recreate this resource with the annotation"
        f' {api.CONFIRM_ANNOTATION}: "true" and vmgen deallocates and generalizes it as it is.'
    )


def _agent_not_ready(spec: Spec, phase: Phase) -> Wait:
    return Wait(
        Reason.AGENT_NOT_READY,
        f"The VM agent of {spec.vm.name} is not ready, and spec.windows.transport RunCommand needs it."
        " Waiting for the agent; or use transport WinRM.",
        15.0,
        phase,
    )


def _duration(delta: timedelta) -> str:
    """As the spec writes it: 4s, 30m, 1h30m."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (
        (f"{hours}h" if hours else "")
        + (f"{minutes}m" if minutes else "")
        + (f"{seconds}s" if seconds else "")
    )
    return text or "0s"
