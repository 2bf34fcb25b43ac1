"""What the modelled Windows machine does with a PowerShell script: recognise it, act, answer like Windows.

No PowerShell runs here, so a script is recognised by its marker line (`# vmgen:<name> v<version>`, the
first non-blank line) plus the `$Vmgen<Name> = '<value>'` parameter lines right after it, exactly as
`vmgen.domain.windows` writes them, and answered with what that script prints on a real machine. Anything
else is a PowerShell error (CommandNotFoundException, the pipeline Failed), so no test passes because the
model was lenient. Syntax is checked elsewhere (tree-sitter-powershell in the unit tests).

The testbed's own probe, `# vmgen-testbed:probe v1`, writes output, a non-terminating error
(Write-Error) and a terminating one (throw) on request: the contract tests use it to see how each reaches
pypsrp, which the operator's scripts only do on failures.

Traps avoided: the output is what `ConvertTo-Json -Compress` prints (no spaces, one line); the start marker
file is written before sysprep starts, as the real script does, so a dropped connection after it still
leaves evidence; a powered-off machine runs nothing (callers check `powered` first).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from vmgen_testbed.windows.machine import FailureMode, WindowsMachine

__all__ = ["PROBE_MARKER", "ScriptOutcome", "TerminatingError", "probe_script", "recognise", "run"]

PROBE_MARKER = "# vmgen-testbed:probe v1"
_MARKER = re.compile(r"^# (?P<space>vmgen|vmgen-testbed):(?P<name>[a-z-]+) v(?P<version>\d+)$")
_PARAMETER = re.compile(r"^\$Vmgen(?P<key>\w+) = '(?P<value>(?:[^']|'')*)'$")
_START_MARKER = r"C:\Windows\Temp\vmgen-sysprep-started.txt"
_LOG_LINES = 20


@dataclass(frozen=True)
class TerminatingError:
    message: str
    error_id: str
    category: str  # an ErrorCategory name, as Windows sets it
    exception_type: str


@dataclass
class ScriptOutcome:
    output: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # non-terminating (Write-Error)
    terminating: TerminatingError | None = None  # throw, or a command that does not exist
    drop_connection: bool = False  # the transport should drop the connection instead of answering


def probe_script(*, output: str = "", error: str = "", throw: str = "") -> str:
    """The testbed's probe: real PowerShell that this model also understands."""

    def quote(value: str) -> str:
        return value.replace("'", "''")

    return "\n".join(
        [
            PROBE_MARKER,
            f"$VmgenOutput = '{quote(output)}'",
            f"$VmgenError = '{quote(error)}'",
            f"$VmgenThrow = '{quote(throw)}'",
            "if ($VmgenOutput) { Write-Output $VmgenOutput }",
            "if ($VmgenError) { Write-Error -Message $VmgenError }",
            "if ($VmgenThrow) { throw $VmgenThrow }",
        ]
    )


def recognise(script: str) -> tuple[str, int, dict[str, str]] | None:
    """(name, version, parameters) of a script this model knows, or None."""
    lines = [line.rstrip() for line in script.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return None
    marker = _MARKER.match(lines[0].strip())
    if marker is None:
        return None
    parameters: dict[str, str] = {}
    for line in lines[1:]:
        parameter = _PARAMETER.match(line.strip())
        if parameter is None:
            break
        parameters[parameter["key"]] = parameter["value"].replace("''", "'")
    name = marker["name"] if marker["space"] == "vmgen" else f"testbed-{marker['name']}"
    return name, int(marker["version"]), parameters


def _not_recognised(script: str) -> ScriptOutcome:
    first = next((line.strip() for line in script.splitlines() if line.strip()), "")
    word = first.split()[0] if first else ""
    return ScriptOutcome(
        terminating=TerminatingError(
            message=f"The term '{word}' is not recognized as the name of a cmdlet, function, script file, "
            "or operable program. Check the spelling of the name, or if a path was included, verify that "
            "the path is correct and try again.",
            error_id="CommandNotFoundException",
            category="ObjectNotFound",
            exception_type="System.Management.Automation.CommandNotFoundException",
        )
    )


def _report(fields: dict[str, Any]) -> str:
    return "vmgen-win " + json.dumps(fields, separators=(",", ":"))


def run(machine: WindowsMachine, script: str) -> ScriptOutcome:
    """Run one script on the machine (the caller made sure it is powered on)."""
    known = recognise(script)
    if known is None:
        return _not_recognised(script)
    name, version, parameters = known
    handler = _HANDLERS.get((name, version))
    if handler is None:
        return _not_recognised(script)
    try:
        return handler(machine, parameters)
    except KeyError:  # a parameter the real script needs is missing: PowerShell would fail the same way
        return _not_recognised(script)


def _preflight(machine: WindowsMachine, _: dict[str, str]) -> ScriptOutcome:
    with machine.lock:
        image_state = machine.read_image_state()
        return ScriptOutcome(
            output=[
                _report(
                    {
                        "imageState": image_state,
                        "services": [
                            {"name": name, "status": machine.services.get(name, "Missing")}
                            for name in ("RdAgent", "WindowsAzureGuestAgent", "WindowsAzureTelemetryService")
                        ],
                        "volumes": [
                            {
                                "mountPoint": mount,
                                "volumeStatus": status,
                                "protectionStatus": "Off" if status == "FullyDecrypted" else "On",
                            }
                            for mount, status in sorted(machine.volumes.items())
                        ],
                        "pendingReboot": list(machine.pending_reboot),
                        "generalizationState": machine.generalization_state,
                        "cleanupState": machine.cleanup_state,
                        "roles": list(machine.roles),
                    }
                )
            ]
        )


def _sysprep_start(machine: WindowsMachine, parameters: dict[str, str]) -> ScriptOutcome:
    exit_option = parameters["Exit"]
    if exit_option not in ("quit", "shutdown"):
        return ScriptOutcome(
            terminating=TerminatingError(
                message=f"sysprep.exe: unknown option /{exit_option}",
                error_id="RuntimeException",
                category="InvalidArgument",
                exception_type="System.Management.Automation.RuntimeException",
            )
        )
    with machine.lock:
        image_state = machine.read_image_state()
        if _START_MARKER in machine.temp_files:
            return ScriptOutcome(
                output=[_report({"started": False, "alreadyStarted": True, "imageState": image_state})]
            )
        machine.panther_present = False
        machine.unattend_files.clear()
        machine.temp_files[_START_MARKER] = str(machine.clock())
        process_id = machine.start_sysprep(
            rf"C:\Windows\System32\Sysprep\sysprep.exe /oobe /generalize /quiet /{exit_option} /mode:vm"
        )
        return ScriptOutcome(
            output=[
                _report(
                    {
                        "started": True,
                        "alreadyStarted": False,
                        "imageState": image_state,
                        "processId": process_id,
                    }
                )
            ],
            drop_connection=FailureMode.CONNECTION_DROPPED in machine.failures
            and machine.sysprep_starts == 1,
        )


def _sysprep_state(machine: WindowsMachine, _: dict[str, str]) -> ScriptOutcome:
    with machine.lock:
        return ScriptOutcome(
            output=[
                _report(
                    {
                        "imageState": machine.read_image_state(),
                        "sysprepStarted": _START_MARKER in machine.temp_files,
                        "sysprepRunning": machine.sysprep_running,
                        "setupErrTail": machine.setuperr[-_LOG_LINES:],
                        "setupActErrors": [line for line in machine.setupact if ", Error " in line][
                            -_LOG_LINES:
                        ],
                    }
                )
            ]
        )


def _domain_membership(machine: WindowsMachine, _: dict[str, str]) -> ScriptOutcome:
    """What `Get-CimInstance Win32_ComputerSystem` reports; it reads and changes nothing."""
    with machine.lock:
        return ScriptOutcome(
            output=[
                _report(
                    {
                        "computerName": machine.computer_name,
                        "partOfDomain": machine.part_of_domain,
                        "domain": machine.domain,
                    }
                )
            ]
        )


def _probe(_: WindowsMachine, parameters: dict[str, str]) -> ScriptOutcome:
    outcome = ScriptOutcome()
    if parameters["Output"]:
        outcome.output.append(parameters["Output"])
    if parameters["Error"]:
        outcome.errors.append(parameters["Error"])
    if parameters["Throw"]:
        outcome.terminating = TerminatingError(
            message=parameters["Throw"],
            error_id=parameters["Throw"],
            category="OperationStopped",
            exception_type="System.Management.Automation.RuntimeException",
        )
    return outcome


_HANDLERS = {
    ("preflight", 1): _preflight,
    ("sysprep-start", 1): _sysprep_start,
    ("sysprep-state", 1): _sysprep_state,
    ("domain-membership", 1): _domain_membership,
    ("testbed-probe", 1): _probe,
}
