"""The WinRM adapter (real pypsrp) against the testbed's Windows endpoint: transports, streams, doubt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vmgen.adapters import winrm
from vmgen.domain import errors, windows
from vmgen_testbed.windows import scripts


def target(vm: Any, **overrides: Any) -> winrm.WinRmTarget:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": vm.endpoint.https_port,
        "username": vm.username,
        "password": vm.password,
        "ca_pem": vm.ca_path.read_text(),
    }
    settings.update(overrides)
    return winrm.WinRmTarget(**settings)


@pytest.fixture
def vm(windows_vm: Callable[..., Any]) -> Any:
    return windows_vm()


class TestTransports:
    async def test_ntlm_over_http_with_message_encryption_runs_the_preflight(self, vm: Any) -> None:
        result = await winrm.WinRmClient().run(
            target(vm, port=vm.endpoint.http_port, tls=False, ca_pem=None), windows.preflight_script()
        )
        report = windows.parse_preflight("\n".join(result.output))
        assert report.image_state == "IMAGE_STATE_COMPLETE"
        assert report.findings == ()

    async def test_ntlm_over_https_verifies_the_certificate_against_the_ca(self, vm: Any) -> None:
        result = await winrm.WinRmClient().run(target(vm), scripts.probe_script(output="over tls"))
        assert result.output == ("over tls",)

    async def test_basic_over_https_is_accepted(self, vm: Any) -> None:
        result = await winrm.WinRmClient().run(target(vm, auth="basic"), scripts.probe_script(output="basic"))
        assert result.output == ("basic",)


class TestStreams:
    async def test_an_unknown_script_is_a_powershell_error(self, vm: Any) -> None:
        with pytest.raises(errors.DeprovisionFailed, match="Get-Nothing' is not recognized"):
            await winrm.WinRmClient().run(target(vm), "Get-Nothing -Force")

    async def test_write_error_alone_counts_as_failure(self, vm: Any) -> None:
        with pytest.raises(errors.DeprovisionFailed, match="the disk is on fire"):
            await winrm.WinRmClient().run(
                target(vm), scripts.probe_script(output="partial", error="the disk is on fire")
            )

    async def test_throw_fails_the_pipeline_with_its_message(self, vm: Any) -> None:
        with pytest.raises(errors.DeprovisionFailed, match="sysprep said no"):
            await winrm.WinRmClient().run(target(vm), scripts.probe_script(throw="sysprep said no"))


class TestUncertainty:
    async def test_a_connection_dropped_during_sysprep_start_is_uncertain_and_sysprep_ran_once(
        self, windows_vm: Callable[..., Any]
    ) -> None:
        vm = windows_vm(failures=["connection-dropped"])
        with pytest.raises(errors.DeprovisionOutcomeUnknown, match="may still be running"):
            await winrm.WinRmClient().run(target(vm), windows.sysprep_start_script())
        assert vm.machine.sysprep_starts == 1
        again = await winrm.WinRmClient().run(target(vm), windows.sysprep_start_script())
        start = windows.parse_sysprep_start("\n".join(again.output))
        assert start.already_started and not start.started
        assert vm.machine.sysprep_starts == 1

    async def test_a_powered_off_guest_is_unreachable(self, vm: Any) -> None:
        await vm.guest.power_off()
        with pytest.raises(errors.GuestUnreachable):
            await winrm.WinRmClient().run(
                target(vm, timeouts=winrm.WinRmTimeouts(connect=2, operation=2, read=5)),
                windows.preflight_script(),
            )
