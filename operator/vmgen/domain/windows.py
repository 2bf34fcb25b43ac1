"""The PowerShell scripts vmgen sends to a Windows VM, and the pure parsers of what they print.

Three scripts cover Azure's procedure for generalizing Windows ("make sure sysprep supports the machine,
delete C:\\Windows\\Panther, run sysprep /generalize /oobe, wait, deallocate, mark generalized"):
- `preflight_script()`: one short, read-only call that reports every blocker at once (ImageState, the
  Azure agent services, BitLocker per volume, pending reboots, the SysprepStatus keys, server roles);
  `parse_preflight()` turns its report into `Finding`s, one per blocker.
- `sysprep_start_script()`: removes Panther and the unattend files, records a start marker, and starts
  `sysprep.exe /oobe /generalize /quiet /quit /mode:vm` through `Win32_Process.Create`, so sysprep is not
  a child of the remoting session (processes started in a remote session die when its runspace pool
  closes). A second call finds the marker and starts nothing: sysprep is never started twice. (To run
  sysprep again after a failure, a person deletes C:\\Windows\\Temp\\vmgen-sysprep-started.txt.)
- `sysprep_state_script()`: ImageState, whether the marker exists and sysprep.exe still runs, the tail of
  setuperr.log and the error lines of setupact.log; `parse_sysprep_state()` judges the progress.

Every script starts with a stable marker line (`# vmgen:<name> v<version>`), then its parameters as
`$Vmgen<Name> = '<value>'` lines (single-quoted, quotes doubled): the testbed's Windows model recognises
scripts by exactly that, and the same text runs through WinRM and Azure Run Command alike. Each prints
one `vmgen-win <json>` line; anything else on stdout is ignored, so a profile's chatter cannot break
parsing. No I/O here: the adapters run the texts, the steps act on the parsed results.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AGENT_SERVICES",
    "IMAGE_STATE_COMPLETE",
    "IMAGE_STATE_GENERALIZED",
    "MARKER_PREFIX",
    "OUTPUT_PREFIX",
    "UNSUPPORTED_ROLES",
    "Finding",
    "FindingKind",
    "PreflightReport",
    "ScriptOutputError",
    "SysprepProgress",
    "SysprepStart",
    "SysprepState",
    "parse_preflight",
    "parse_sysprep_start",
    "parse_sysprep_state",
    "preflight_script",
    "sysprep_start_script",
    "sysprep_state_script",
]

MARKER_PREFIX = "# vmgen:"
OUTPUT_PREFIX = "vmgen-win "
IMAGE_STATE_COMPLETE = "IMAGE_STATE_COMPLETE"
IMAGE_STATE_GENERALIZED = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
IMAGE_STATE_UNDEPLOYABLE = "IMAGE_STATE_UNDEPLOYABLE"
IMAGE_STATE_SPECIALIZE = "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE"
AGENT_SERVICES = ("RdAgent", "WindowsAzureGuestAgent", "WindowsAzureTelemetryService")
# Server roles that "Sysprep Support for Server Roles" lists as not supported (Get-WindowsFeature names).
UNSUPPORTED_ROLES = frozenset(
    {
        "AD-Certificate",
        "AD-Domain-Services",
        "ADFS-Federation",
        "ADLDS",
        "ADRMS",
        "DNS",
        "Fax",
        "NPAS",
        "UpdateServices",
        "WDS",
    }
)
_SYSPREP_READY_GENERALIZATION_STATE = 7
_STATE_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State"
_SYSPREP_STATUS_KEY = r"HKLM:\SYSTEM\Setup\Status\SysprepStatus"
_START_MARKER = r"C:\Windows\Temp\vmgen-sysprep-started.txt"
_SETUPERR = r"C:\Windows\System32\Sysprep\Panther\setuperr.log"
_SETUPACT = r"C:\Windows\System32\Sysprep\Panther\setupact.log"
_LOG_LINES = 20


class ScriptOutputError(ValueError):
    """The script's output had no `vmgen-win` report, or the report had the wrong shape."""


def _header(name: str, version: int, **parameters: str) -> list[str]:
    lines = [f"{MARKER_PREFIX}{name} v{version}"]
    for key, value in parameters.items():
        lines.append(f"$Vmgen{key} = '{value.replace(chr(39), chr(39) * 2)}'")
    return lines


def _report(fields: str) -> str:
    return f"'{OUTPUT_PREFIX}' + ([ordered]@{{ {fields} }} | ConvertTo-Json -Compress -Depth 4)"


def preflight_script() -> str:
    services = ", ".join(f"'{name}'" for name in AGENT_SERVICES)
    return "\n".join(
        [
            *_header("preflight", 1),
            "$ErrorActionPreference = 'Stop'",
            f"$imageState = (Get-ItemProperty -Path '{_STATE_KEY}').ImageState",
            f"$services = @(foreach ($name in @({services})) {{",
            "    $service = Get-Service -Name $name -ErrorAction SilentlyContinue",
            "    $status = if ($null -eq $service) { 'Missing' } else { [string]$service.Status }",
            "    [ordered]@{ name = $name; status = $status }",
            "})",
            "$volumes = @(Get-BitLockerVolume | ForEach-Object {",
            "    [ordered]@{ mountPoint = [string]$_.MountPoint; volumeStatus = [string]$_.VolumeStatus;"
            " protectionStatus = [string]$_.ProtectionStatus }",
            "})",
            "$pending = @(@(",
            r"    'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending',",
            r"    'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired'",
            ") | Where-Object { Test-Path -Path $_ })",
            r"$renames = Get-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager'"
            " -Name PendingFileRenameOperations -ErrorAction SilentlyContinue",
            "if ($null -ne $renames -and $renames.PendingFileRenameOperations) {",
            "    $pending += 'PendingFileRenameOperations'",
            "}",
            f"$sysprepStatus = Get-ItemProperty -Path '{_SYSPREP_STATUS_KEY}'",
            "$roles = @(Get-WindowsFeature | Where-Object { $_.Installed -and $_.FeatureType -eq 'Role' }"
            " | ForEach-Object { [string]$_.Name })",
            _report(
                "imageState = [string]$imageState; services = $services; volumes = $volumes;"
                " pendingReboot = $pending; generalizationState = [int]$sysprepStatus.GeneralizationState;"
                " cleanupState = [int]$sysprepStatus.CleanupState; roles = $roles"
            ),
        ]
    )


def sysprep_start_script(*, shutdown: bool = False) -> str:
    """`shutdown=False` (WinRM): `/quit`, the operator deallocates. `shutdown=True` (Run Command, whose
    runner must answer before the VM stops): `/shutdown`, the VM powers off by itself."""
    return "\n".join(
        [
            *_header("sysprep-start", 1, Exit="shutdown" if shutdown else "quit"),
            "$ErrorActionPreference = 'Stop'",
            f"$marker = '{_START_MARKER}'",
            f"$imageState = [string](Get-ItemProperty -Path '{_STATE_KEY}').ImageState",
            "if (Test-Path -Path $marker) {",
            "    " + _report("started = $false; alreadyStarted = $true; imageState = $imageState"),
            "    return",
            "}",
            r"Remove-Item -Path 'C:\Windows\Panther' -Recurse -Force -ErrorAction SilentlyContinue",
            r"foreach ($file in @('C:\Windows\System32\Sysprep\unattend.xml',"
            r" 'C:\Windows\Panther\unattend.xml', 'C:\unattend.xml',"
            r" 'C:\Windows\System32\Sysprep\Panther\unattend.xml')) {",
            "    Remove-Item -Path $file -Force -ErrorAction SilentlyContinue",
            "}",
            "Set-Content -Path $marker -Value (Get-Date -Format o)",
            r"$commandLine = 'C:\Windows\System32\Sysprep\sysprep.exe /oobe /generalize /quiet /'"
            " + $VmgenExit + ' /mode:vm'",
            "$process = Invoke-CimMethod -ClassName Win32_Process -MethodName Create"
            " -Arguments @{ CommandLine = $commandLine }",
            "if ($process.ReturnValue -ne 0) {",
            '    throw "sysprep.exe could not be started: Win32_Process.Create returned"'
            " + ' ' + $process.ReturnValue",
            "}",
            _report(
                "started = $true; alreadyStarted = $false; imageState = $imageState;"
                " processId = [int]$process.ProcessId"
            ),
        ]
    )


def sysprep_state_script() -> str:
    return "\n".join(
        [
            *_header("sysprep-state", 1),
            "$ErrorActionPreference = 'Stop'",
            f"$imageState = [string](Get-ItemProperty -Path '{_STATE_KEY}').ImageState",
            f"$started = Test-Path -Path '{_START_MARKER}'",
            "$running = @(Get-Process -Name sysprep -ErrorAction SilentlyContinue).Count -gt 0",
            f"$errLog = '{_SETUPERR}'",
            f"$actLog = '{_SETUPACT}'",
            "$errTail = @(if (Test-Path -Path $errLog) {"
            f" Get-Content -Path $errLog -Tail {_LOG_LINES} | ForEach-Object {{ [string]$_ }} }})",
            "$actErrors = @(if (Test-Path -Path $actLog) {"
            " Select-String -Path $actLog -Pattern ', Error ' -SimpleMatch"
            f" | Select-Object -Last {_LOG_LINES} | ForEach-Object {{ [string]$_.Line }} }})",
            _report(
                "imageState = $imageState; sysprepStarted = $started; sysprepRunning = $running;"
                " setupErrTail = $errTail; setupActErrors = $actErrors"
            ),
        ]
    )


def _parse_report(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith(OUTPUT_PREFIX):
            try:
                report = json.loads(line[len(OUTPUT_PREFIX) :])
            except ValueError as error:
                raise ScriptOutputError(f"the vmgen-win report is not JSON: {error}") from None
            if not isinstance(report, dict):
                raise ScriptOutputError("the vmgen-win report is not a JSON object")
            return report
    raise ScriptOutputError("the script printed no vmgen-win report")


# The building blocks that other script modules share (domain/copy_safety.py).
header, report, parse_report = _header, _report, _parse_report


def _strings(value: Any) -> tuple[str, ...]:
    """A list of strings, also from a scalar or null: in some Windows PowerShell 5.1 paths ConvertTo-Json
    unrolls a one-element array into its element, and an empty one into null."""
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return (str(value),)


def _objects(value: Any) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, dict))
    raise ScriptOutputError(f"expected objects, got {value!r}")


class FindingKind(enum.StrEnum):
    IMAGE_STATE_NOT_COMPLETE = "ImageStateNotComplete"
    AGENT_SERVICE_NOT_RUNNING = "AgentServiceNotRunning"
    VOLUME_ENCRYPTED = "VolumeEncrypted"
    REBOOT_PENDING = "RebootPending"
    SYSPREP_STATUS_REFUSES = "SysprepStatusRefuses"
    UNSUPPORTED_SERVER_ROLE = "UnsupportedServerRole"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    message: str


@dataclass(frozen=True)
class PreflightReport:
    image_state: str
    services: tuple[tuple[str, str], ...]  # (name, status)
    volumes: tuple[tuple[str, str], ...]  # (mount point, VolumeStatus)
    pending_reboot: tuple[str, ...]
    generalization_state: int
    cleanup_state: int
    roles: tuple[str, ...]

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every blocker, in a stable order; empty when sysprep may run."""
        found: list[Finding] = []
        if self.image_state != IMAGE_STATE_COMPLETE:
            found.append(
                Finding(
                    FindingKind.IMAGE_STATE_NOT_COMPLETE,
                    f"ImageState is {self.image_state}, not {IMAGE_STATE_COMPLETE}: the machine is not a "
                    "completed installation (sysprep already ran, or setup did not finish)",
                )
            )
        for name, status in self.services:
            if status != "Running":
                found.append(
                    Finding(
                        FindingKind.AGENT_SERVICE_NOT_RUNNING,
                        f"the Azure agent service {name} is {status}, not Running: start it "
                        f"(Start-Service {name}) before generalizing",
                    )
                )
        for mount_point, status in self.volumes:
            if status != "FullyDecrypted":
                found.append(
                    Finding(
                        FindingKind.VOLUME_ENCRYPTED,
                        f"volume {mount_point} is {status}: sysprep needs every volume fully decrypted "
                        f"(Disable-BitLocker -MountPoint {mount_point}, then wait for FullyDecrypted)",
                    )
                )
        if self.pending_reboot:
            found.append(
                Finding(
                    FindingKind.REBOOT_PENDING,
                    "a reboot is pending (" + ", ".join(self.pending_reboot) + "): restart the VM first",
                )
            )
        if self.generalization_state != _SYSPREP_READY_GENERALIZATION_STATE:
            found.append(
                Finding(
                    FindingKind.SYSPREP_STATUS_REFUSES,
                    f"{_SYSPREP_STATUS_KEY} GeneralizationState is {self.generalization_state}, not "
                    f"{_SYSPREP_READY_GENERALIZATION_STATE} (CleanupState {self.cleanup_state}): sysprep "
                    "will refuse to run on this machine",
                )
            )
        unsupported = sorted(role for role in self.roles if role in UNSUPPORTED_ROLES)
        if unsupported:
            found.append(
                Finding(
                    FindingKind.UNSUPPORTED_SERVER_ROLE,
                    "sysprep does not support the installed server role(s) " + ", ".join(unsupported),
                )
            )
        return tuple(found)


def parse_preflight(output: str) -> PreflightReport:
    report = _parse_report(output)
    try:
        return PreflightReport(
            image_state=str(report["imageState"]),
            services=tuple((str(s["name"]), str(s["status"])) for s in _objects(report.get("services"))),
            volumes=tuple(
                (str(v["mountPoint"]), str(v["volumeStatus"])) for v in _objects(report.get("volumes"))
            ),
            pending_reboot=_strings(report.get("pendingReboot")),
            generalization_state=int(report["generalizationState"]),
            cleanup_state=int(report["cleanupState"]),
            roles=_strings(report.get("roles")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ScriptOutputError(f"the preflight report is incomplete: {error!r}") from None


@dataclass(frozen=True)
class SysprepStart:
    started: bool  # this call started sysprep
    already_started: bool  # an earlier call did (its marker exists): nothing was started now
    image_state: str


def parse_sysprep_start(output: str) -> SysprepStart:
    report = _parse_report(output)
    try:
        return SysprepStart(
            started=bool(report["started"]),
            already_started=bool(report["alreadyStarted"]),
            image_state=str(report["imageState"]),
        )
    except KeyError as error:
        raise ScriptOutputError(f"the sysprep start report is incomplete: {error!r}") from None


class SysprepProgress(enum.StrEnum):
    NOT_STARTED = "NotStarted"  # no start marker: sysprep was never started by vmgen
    RUNNING = "Running"  # started, ImageState not final yet
    GENERALIZED = "Generalized"  # IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE: done
    FAILED = "Failed"  # sysprep exited and ImageState did not move (COMPLETE), or UNDEPLOYABLE


@dataclass(frozen=True)
class SysprepState:
    image_state: str
    sysprep_started: bool
    sysprep_running: bool
    setup_err_tail: tuple[str, ...]
    setup_act_errors: tuple[str, ...]

    @property
    def progress(self) -> SysprepProgress:
        if self.image_state == IMAGE_STATE_GENERALIZED:
            return SysprepProgress.GENERALIZED
        if not self.sysprep_started:
            return SysprepProgress.NOT_STARTED
        # While sysprep works ImageState reads UNDEPLOYABLE; once sysprep.exe has exited, COMPLETE (it
        # failed at once, often on an AppX package) or UNDEPLOYABLE (a provider failed) are final.
        if self.image_state in (IMAGE_STATE_COMPLETE, IMAGE_STATE_UNDEPLOYABLE) and not self.sysprep_running:
            return SysprepProgress.FAILED
        # SPECIALIZE_RESEAL_TO_OOBE (waiting for a reboot that never comes) or sysprep still working: only
        # the deadline (spec.windows.sysprepTimeout) ends this.
        return SysprepProgress.RUNNING

    def log_excerpt(self) -> str:
        """What a person needs in the condition message: setuperr.log's tail, setupact.log's errors."""
        parts = []
        if self.setup_err_tail:
            parts.append("setuperr.log: " + " | ".join(line.strip() for line in self.setup_err_tail))
        if self.setup_act_errors:
            parts.append("setupact.log errors: " + " | ".join(line.strip() for line in self.setup_act_errors))
        return "; ".join(parts) if parts else "no sysprep log lines"


def parse_sysprep_state(output: str) -> SysprepState:
    report = _parse_report(output)
    try:
        return SysprepState(
            image_state=str(report["imageState"]),
            sysprep_started=bool(report["sysprepStarted"]),
            sysprep_running=bool(report["sysprepRunning"]),
            setup_err_tail=_strings(report.get("setupErrTail")),
            setup_act_errors=_strings(report.get("setupActErrors")),
        )
    except KeyError as error:
        raise ScriptOutputError(f"the sysprep state report is incomplete: {error!r}") from None
