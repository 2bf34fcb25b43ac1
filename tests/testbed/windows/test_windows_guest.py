"""The modelled Windows machine behind the real endpoint: sysprep, failure modes, WS-Man faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from vmgen.domain import windows
from vmgen_testbed.windows import scripts


def session(vm: Any, **options: Any) -> tuple[WSMan, RunspacePool]:
    connection = WSMan(
        "127.0.0.1",
        port=vm.endpoint.https_port,
        username=vm.username,
        password=vm.password,
        auth="ntlm",
        cert_validation=str(vm.ca_path),
        **options,
    )
    return connection, RunspacePool(connection)


def run(vm: Any, script: str) -> list[str]:
    connection, pool = session(vm)
    with connection, pool:
        shell = PowerShell(pool)
        shell.add_script(script)
        output = shell.invoke()
        assert not shell.had_errors, [str(e) for e in shell.streams.error]
        return [str(line) for line in output]


def wait_for(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class ManualClock:
    """The machine's clock, moved by the test: sysprep's progress without sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def sysprep_state(vm: Any) -> windows.SysprepState:
    return windows.parse_sysprep_state("\n".join(run(vm, windows.sysprep_state_script())))


class TestSysprep:
    def test_sysprep_removes_panther_and_reaches_reseal_to_oobe(self, windows_vm: Callable[..., Any]) -> None:
        vm = windows_vm(sysprep_seconds=30)
        clock = ManualClock()
        vm.machine.clock = clock
        start = windows.parse_sysprep_start("\n".join(run(vm, windows.sysprep_start_script())))
        assert start.started and start.image_state == "IMAGE_STATE_COMPLETE"
        clock.now += 29
        running = sysprep_state(vm)
        assert running.progress == windows.SysprepProgress.RUNNING and running.sysprep_running
        assert running.image_state == "IMAGE_STATE_UNDEPLOYABLE"
        clock.now += 1
        assert sysprep_state(vm).progress == windows.SysprepProgress.GENERALIZED
        snapshot = vm.machine.snapshot()
        assert snapshot["pantherPresent"] is False and snapshot["unattendFiles"] == []
        assert snapshot["sysprepStarts"] == 1
        assert "/oobe /generalize /quiet /quit /mode:vm" in snapshot["sysprepCommandLines"][0]

    def test_a_second_start_starts_nothing(self, windows_vm: Callable[..., Any]) -> None:
        vm = windows_vm()
        run(vm, windows.sysprep_start_script())
        again = windows.parse_sysprep_start("\n".join(run(vm, windows.sysprep_start_script())))
        assert again.already_started and vm.machine.sysprep_starts == 1

    def test_an_appx_failure_leaves_image_state_complete_and_names_the_package(
        self, windows_vm: Callable[..., Any]
    ) -> None:
        vm = windows_vm(failures=["sysprep-fails-at-once"])
        run(vm, windows.sysprep_start_script())
        state = sysprep_state(vm)
        assert state.progress == windows.SysprepProgress.FAILED
        assert state.image_state == "IMAGE_STATE_COMPLETE"
        assert "Microsoft.BingWeather" in state.log_excerpt()

    def test_undeployable_stays_undeployable_with_the_provider_in_setuperr(
        self, windows_vm: Callable[..., Any]
    ) -> None:
        vm = windows_vm(failures=["undeployable"])
        run(vm, windows.sysprep_start_script())
        wait_for(lambda: sysprep_state(vm).progress == windows.SysprepProgress.FAILED)
        assert "Sysprep_Generalize_MSDTC" in sysprep_state(vm).log_excerpt()

    def test_stuck_at_specialize_never_finishes(self, windows_vm: Callable[..., Any]) -> None:
        vm = windows_vm(failures=["stuck-specialize"], sysprep_seconds=0.1)
        run(vm, windows.sysprep_start_script())
        wait_for(lambda: sysprep_state(vm).image_state == "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE")
        assert sysprep_state(vm).progress == windows.SysprepProgress.RUNNING


class TestPreflightFailureModes:
    @pytest.mark.parametrize(
        ("failure", "kind"),
        [
            ("bitlocker-on", windows.FindingKind.VOLUME_ENCRYPTED),
            ("unsupported-role", windows.FindingKind.UNSUPPORTED_SERVER_ROLE),
            ("agent-stopped", windows.FindingKind.AGENT_SERVICE_NOT_RUNNING),
            ("pending-reboot", windows.FindingKind.REBOOT_PENDING),
            ("sysprep-status-refuses", windows.FindingKind.SYSPREP_STATUS_REFUSES),
        ],
    )
    def test_each_failure_mode_shows_as_its_finding(
        self, windows_vm: Callable[..., Any], failure: str, kind: windows.FindingKind
    ) -> None:
        vm = windows_vm(failures=[failure])
        report = windows.parse_preflight("\n".join(run(vm, windows.preflight_script())))
        assert [finding.kind for finding in report.findings] == [kind]
        assert vm.machine.sysprep_starts == 0


class TestWsman:
    def test_a_receive_with_nothing_to_say_answers_the_operation_timeout_fault(
        self, windows_vm: Callable[..., Any]
    ) -> None:
        vm = windows_vm()
        connection, pool = session(vm, operation_timeout=1, read_timeout=5)
        with connection, pool:
            with pytest.raises(WSManFaultError) as fault:
                pool.shell.receive("stdout", timeout=1)
        assert fault.value.code == 2150858793

    def test_a_large_output_is_split_to_fit_the_envelope(self, windows_vm: Callable[..., Any]) -> None:
        vm = windows_vm()
        vm.machine.setuperr.extend(f"{n:05d} " + "x" * 3000 for n in range(200))
        connection, pool = session(vm, max_envelope_size=51200)
        with connection, pool:
            shell = PowerShell(pool)
            shell.add_script(windows.sysprep_state_script())
            output = shell.invoke()
        state = windows.parse_sysprep_state("\n".join(str(line) for line in output))
        assert len(state.setup_err_tail) == 20 and state.setup_err_tail[-1].startswith("00199")
        assert 40_000 < vm.endpoint.largest_answer <= 51200  # several Receives, each within the bound

    def test_power_off_stops_the_endpoint_answering_and_power_on_restores_it(
        self, windows_vm: Callable[..., Any]
    ) -> None:
        vm = windows_vm()
        asyncio.run(vm.guest.power_off())
        with pytest.raises(Exception, match=r"(?i)connect|refused"):
            run(vm, windows.preflight_script())
        asyncio.run(vm.guest.power_on())
        assert run(vm, windows.preflight_script())


class TestAuthentication:
    def test_an_unauthenticated_request_gets_401_offering_negotiate_and_basic_only_over_https(
        self, windows_vm: Callable[..., Any]
    ) -> None:
        vm = windows_vm()
        plain = requests.post(f"http://127.0.0.1:{vm.endpoint.http_port}/wsman", data=b"", timeout=5)
        secure = requests.post(
            f"https://127.0.0.1:{vm.endpoint.https_port}/wsman", data=b"", timeout=5, verify=str(vm.ca_path)
        )
        assert plain.status_code == secure.status_code == 401
        assert plain.headers["WWW-Authenticate"] == "Negotiate"
        assert "Basic" in secure.headers["WWW-Authenticate"]

    def test_a_wrong_basic_password_gets_401(self, windows_vm: Callable[..., Any]) -> None:
        vm = windows_vm()
        answer = requests.post(
            f"https://127.0.0.1:{vm.endpoint.https_port}/wsman",
            data=b"<x/>",
            auth=(vm.username, "wrong"),
            timeout=5,
            verify=str(vm.ca_path),
        )
        assert answer.status_code == 401


class TestStreamsAsPypsrpSeesThem:
    def invoke(self, vm: Any, script: str) -> PowerShell:
        connection, pool = session(vm)
        with connection, pool:
            shell = PowerShell(pool)
            shell.add_script(script)
            shell.invoke()
            return shell

    def test_write_error_fills_the_error_stream_without_had_errors(
        self, windows_vm: Callable[..., Any]
    ) -> None:
        shell = self.invoke(windows_vm(), scripts.probe_script(output="kept", error="careful"))
        assert shell.output == ["kept"]
        assert shell.had_errors is False
        assert [str(record) for record in shell.streams.error] == ["careful"]
        assert shell.streams.error[0].fq_error == "Microsoft.PowerShell.Commands.WriteErrorException"

    def test_throw_fails_the_pipeline_with_its_error_record(self, windows_vm: Callable[..., Any]) -> None:
        shell = self.invoke(windows_vm(), scripts.probe_script(output="before", throw="stop here"))
        assert shell.output == ["before"]
        assert shell.had_errors is True
        assert shell.state == PSInvocationState.FAILED
        assert [str(record) for record in shell.streams.error] == ["stop here"]

    def test_an_unknown_command_is_command_not_found(self, windows_vm: Callable[..., Any]) -> None:
        shell = self.invoke(windows_vm(), "Remove-Everything -Force")
        assert shell.had_errors is True
        assert shell.streams.error[0].fq_error == "CommandNotFoundException"
        assert "'Remove-Everything' is not recognized" in str(shell.streams.error[0])
