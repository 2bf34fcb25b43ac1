"""Preflight: every read-only check, each finding reported; nothing in Azure or the guest changes.

`spec.mode: Preflight` runs this step alone. It collects every blocker instead of stopping at the first:
the VM in Azure (exists, not generalized, running, agent ready, OS type), the guest (the SSH Secret, host
keys pinned or read through Run Command, an SSH login with passwordless sudo), the capture targets
(image definition fit, version free, managed image possible), and for a Windows copy the domain-join
guard (steps/copy_safety.py). It ends in phase PreflightComplete with the
findings in status.outputs.findings: Ready True when there are none, False otherwise (Argo CD: Healthy or
Degraded). Only reads happen here: GETs, one read-only Run Command, one SSH login running `sudo -n true`.
"""

from __future__ import annotations

from vmgen.domain import copy_plan, errors, guest, model, planner, windows, windows_plan
from vmgen.domain.reasons import Reason
from vmgen.domain.windows_spec import Transport
from vmgen.steps import copy_safety, prepare_windows, prepare_windows_winrm, validate
from vmgen.steps.base import Executor, Pass

Finding = tuple[str, str]


async def run(p: Pass, action: planner.RunPreflight) -> None:
    p.events.normal(Reason.PREFLIGHT, f"Checking VM {p.spec.vm.name}; nothing will be changed.")
    vm = p.observation
    findings: list[Finding] = []
    if vm is None:
        findings.append(
            (Reason.VM_NOT_FOUND, f"Azure has no VM {p.spec.vm.name} in {p.spec.vm.resource_group}.")
        )
    else:
        findings += _azure(p, vm)
        if not vm.generalized and not findings:
            findings += await _guest(p, vm)
            findings += await _copy_safety(p, vm)
        findings += [(f.reason, f.message) for f in await validate.capture_findings(p, vm)]
    message = (
        f"Preflight of VM {p.spec.vm.name}: nothing blocks generalization."
        if not findings
        else f"Preflight of VM {p.spec.vm.name} found {len(findings)} blocker(s): "
        + " | ".join(f"{reason}: {text}" for reason, text in findings)
    )
    (p.events.normal if not findings else p.events.warning)(
        Reason.PREFLIGHT_PASSED if not findings else Reason.PREFLIGHT_FAILED, message
    )
    await p.save(p.status.preflight_complete(tuple(findings), message, at=p.at))
    await p.release_claim()


def _azure(p: Pass, vm: model.VmObservation) -> list[Finding]:
    """What Azure says, judged by the planner's own validation rules."""
    decided = planner.check_vm(p.spec, vm)
    if isinstance(decided, planner.Fail | planner.Wait):
        return [(decided.reason, decided.message)]
    return []


async def _guest(p: Pass, vm: model.VmObservation) -> list[Finding]:
    if (vm.os_type or p.spec.os_type) is model.OsType.WINDOWS:
        return await _windows_guest(p)
    ssh = p.spec.ssh
    if ssh is None or (p.spec.os_type or vm.os_type) is not model.OsType.LINUX:
        return []
    try:
        key = await p.ports.secrets.ssh_private_key(p.resource.namespace, ssh.private_key_secret)
        keys = ssh.host_keys
        if not keys:
            output = await p.azure().run_shell_script(p.spec.vm, guest.evidence_script(ssh.username))
            keys = guest.parse_host_keys(output.stdout)
            if not keys:
                raise errors.HostKeysUnavailable(
                    "Run Command returned no SSH host keys; pin spec.ssh.hostKeys."
                )
        await p.ports.deprovisioner.probe(
            model.SshTarget(
                host=ssh.host, port=ssh.port, username=ssh.username, private_key=key, host_keys=keys
            )
        )
    except errors.VmgenError as exc:
        return [(exc.reason, exc.message)]
    return []


async def _copy_safety(p: Pass, vm: model.VmObservation) -> list[Finding]:
    """A Windows copy's domain-join guard (steps/copy_safety.py), reads only."""
    if not p.spec.copied or (vm.os_type or p.spec.os_type) is not model.OsType.WINDOWS:
        return []
    found = [f for f in (copy_plan.windows_transport(p.spec, vm), await copy_safety.blocker(p)) if f]
    return [(f.reason, f.message) for f in found]


async def _windows_guest(p: Pass) -> list[Finding]:
    """The Windows preflight script (read-only), over the spec's transport, every blocker reported.

    A copy's source is never reached through Run Command (a managed run command is a write to the VM):
    its guest is read over spec.winrm when given, else the copy's own preflight runs in the job."""
    if p.spec.copied and p.spec.windows.transport is Transport.RUN_COMMAND and p.spec.windows.winrm is None:
        return []
    try:
        guest = (
            p.ports.windows.winrm(await prepare_windows_winrm.read_secrets(p))
            if p.spec.copied
            else await prepare_windows.open_guest(p)
        )
        output = await guest.run(windows.preflight_script(), timeout=prepare_windows.SCRIPT_SECONDS)
        report = windows.parse_preflight(output)
    except errors.VmgenError as exc:
        return [(exc.reason, exc.message)]
    except windows.ScriptOutputError as exc:
        return [(Reason.WINDOWS_SCRIPT_FAILED, f"The preflight script's report was unreadable: {exc}")]
    return [(reason, message) for reason, message in windows_plan.preflight_findings(report)]


EXECUTORS: dict[type, Executor] = {planner.RunPreflight: run}
