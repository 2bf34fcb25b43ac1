"""Each way a Windows job cannot finish ends Failed with its own reason and the line a person needs;
when preflight (or the configuration) stops it, sysprep was never started and the VM is untouched."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import World, condition, vm_requests
from tests.e2e.windows_jobs import assert_no_secret_leaked, windows_job, windows_manifest, winrm_secrets

ADE = ("Microsoft.Azure.Security", "AzureDiskEncryption")


def assert_untouched(world: World, vm: Any) -> None:
    assert vm.machine.snapshot()["sysprepStarts"] == 0, "sysprep must not start when preflight failed"
    assert vm.machine.snapshot()["pantherPresent"] is True
    azure = world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)
    assert azure["powerState"] == "running"
    assert azure["generalized"] is False
    operations = {r.operation for r in vm_requests(world.arm, vm)}
    assert not operations & {"deallocate", "powerOff", "generalize", "start"}, operations


@pytest.mark.parametrize(
    ("failures", "reason", "line"),
    [
        pytest.param(
            ["sysprep-status-refuses"], "SysprepStatusRefuses", "GeneralizationState is 4", id="status"
        ),
        pytest.param(["bitlocker-on"], "VolumeEncrypted", "volume C: is FullyEncrypted", id="bitlocker"),
        pytest.param(["unsupported-role"], "UnsupportedServerRole", "AD-Domain-Services", id="role"),
        pytest.param(["agent-stopped"], "AgentServiceNotRunning", "RdAgent is Stopped", id="agent"),
        pytest.param(["pending-reboot"], "RebootPending", "RebootPending", id="reboot"),
    ],
)
def test_a_preflight_finding_fails_with_its_reason_and_sysprep_never_starts(
    world: World, windows_vm: Any, failures: list[str], reason: str, line: str
) -> None:
    vm = windows_vm(failures=failures)
    world.arm.clear_requests()
    windows_job(world, "win-blocked", vm)

    body = world.wait_failed("win-blocked")

    ready = condition(body, "Ready")
    assert ready["reason"] == reason
    assert line in ready["message"]
    assert "Sysprep was not started" in ready["message"]
    assert_untouched(world, vm)


def test_an_azure_disk_encryption_extension_fails_before_any_script(world: World, windows_vm: Any) -> None:
    vm = windows_vm(extensions=(ADE,))
    world.arm.clear_requests()
    windows_job(world, "win-ade", vm)

    body = world.wait_failed("win-ade")

    assert vm.endpoint.requests == 0, "no script may run"

    ready = condition(body, "Ready")
    assert ready["reason"] == "DiskEncryptionExtensionPresent"
    assert "Microsoft.Azure.Security.AzureDiskEncryption" in ready["message"]
    assert_untouched(world, vm)


@pytest.mark.parametrize(
    ("failures", "transport", "reason", "line"),
    [
        pytest.param(
            ["sysprep-fails-at-once"],
            "WinRM",
            "SysprepFailed",
            "was installed for a user, but not provisioned for all users",
            id="appx-winrm",
        ),
        pytest.param(
            ["sysprep-fails-at-once"],
            "RunCommand",
            "SysprepFailed",
            "was installed for a user, but not provisioned for all users",
            id="appx-runcommand",
        ),
        pytest.param(
            ["undeployable"], "WinRM", "SysprepUndeployable", "Sysprep_Generalize_MSDTC", id="undeployable"
        ),
    ],
)
def test_a_failed_sysprep_fails_with_the_setuperr_lines_and_the_vm_is_not_deallocated(
    world: World, windows_vm: Any, failures: list[str], transport: str, reason: str, line: str
) -> None:
    vm = windows_vm(failures=failures)
    world.arm.clear_requests()
    windows_job(world, "win-sysprep-failed", vm, transport=transport)

    body = world.wait_failed("win-sysprep-failed")

    ready = condition(body, "Ready")
    assert ready["reason"] == reason
    assert line in ready["message"]
    assert vm.machine.snapshot()["sysprepStarts"] == 1
    operations = {r.operation for r in vm_requests(world.arm, vm)}
    assert not operations & {"deallocate", "generalize", "start"}, operations


def test_sysprep_stuck_at_specialize_fails_at_its_deadline(world: World, windows_vm: Any) -> None:
    vm = windows_vm(failures=["stuck-specialize"])
    windows_job(world, "win-stuck", vm, sysprep_timeout="4s")

    body = world.wait_failed("win-stuck", timeout=60)

    ready = condition(body, "Ready")
    assert ready["reason"] == "SysprepTimeout"
    assert "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE" in ready["message"]
    assert "4s" in ready["message"]
    assert vm.machine.snapshot()["sysprepStarts"] == 1


def test_basic_over_plain_http_is_refused_before_any_connection(world: World, windows_vm: Any) -> None:
    vm = windows_vm(allow_basic_http=True)
    winrm_secrets(world, vm)
    manifest = windows_manifest(
        world, "win-basic", vm, port=vm.endpoint.http_port, tls=False, auth="basic", allowUnencrypted=True
    )
    del manifest["spec"]["winrm"]["caSecretRef"]
    world.apply(manifest)

    body = world.wait_failed("win-basic")

    ready = condition(body, "Ready")
    assert ready["reason"] == "WinRMBasicOverHTTP"
    assert "clear text" in ready["message"]
    assert_untouched(world, vm)
    assert vm.endpoint.requests == 0, "nothing may reach the guest"


def test_a_wrong_winrm_password_fails_with_its_own_reason_and_leaks_nothing(
    world: World, windows_vm: Any
) -> None:
    vm = windows_vm()
    winrm_secrets(world, vm, password="wrong-winrm-password-8d1e")
    world.apply(windows_manifest(world, "win-refused", vm))

    body = world.wait_failed("win-refused")

    ready = condition(body, "Ready")
    assert ready["reason"] == "WinRMAuthenticationRefused"
    assert "401" in ready["message"]
    assert "spec.winrm.credentialsSecretRef" in ready["message"]
    assert_untouched(world, vm)
    assert_no_secret_leaked(world, vm, "win-refused")
    assert "wrong-winrm-password-8d1e" not in world.operator.logs()
