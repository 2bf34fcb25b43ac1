"""Every PowerShell script the operator sends parses with a real PowerShell grammar; its output parsers judge
right. The testbed's model only matches marker lines, so without this check a broken script would pass."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import tree_sitter
import tree_sitter_powershell

from vmgen.domain import copy_safety, windows

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))

SCRIPTS = {
    "preflight": windows.preflight_script(),
    "sysprep start (quit)": windows.sysprep_start_script(),
    "sysprep start (shutdown)": windows.sysprep_start_script(shutdown=True),
    "sysprep state": windows.sysprep_state_script(),
    "domain membership": copy_safety.domain_membership_script(),
}


def syntax_errors(script: str) -> list[str]:
    found: list[str] = []

    def walk(node: tree_sitter.Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            found.append(f"line {node.start_point[0] + 1}: {node.type} {node.text!r}")
        for child in node.children:
            walk(child)

    walk(_PARSER.parse(script.encode()).root_node)
    return found


class TestSyntax:
    @pytest.mark.parametrize("name", SCRIPTS)
    def test_every_operator_script_is_valid_powershell(self, name: str) -> None:
        assert syntax_errors(SCRIPTS[name]) == []

    @pytest.mark.parametrize(
        "broken",
        [
            "if ($x -eq 1) { 'one'",
            "$report = [ordered]@{ a = 1; b = ",
            windows.preflight_script().replace("})", "}", 1),
        ],
    )
    def test_a_broken_script_fails_the_check(self, broken: str) -> None:
        assert syntax_errors(broken) != []

    @pytest.mark.parametrize("name", SCRIPTS)
    def test_every_script_starts_with_its_marker_line(self, name: str) -> None:
        assert SCRIPTS[name].splitlines()[0].startswith(windows.MARKER_PREFIX)

    def test_the_exit_option_is_a_quoted_parameter_line(self) -> None:
        assert "$VmgenExit = 'quit'" in windows.sysprep_start_script().splitlines()[1]
        assert "$VmgenExit = 'shutdown'" in windows.sysprep_start_script(shutdown=True).splitlines()[1]


def report(**fields: object) -> str:
    return "WARNING: profile noise\nvmgen-win " + json.dumps(fields) + "\n"


CLEAN = {
    "imageState": "IMAGE_STATE_COMPLETE",
    "services": [{"name": n, "status": "Running"} for n in windows.AGENT_SERVICES],
    "volumes": [{"mountPoint": "C:", "volumeStatus": "FullyDecrypted", "protectionStatus": "Off"}],
    "pendingReboot": [],
    "generalizationState": 7,
    "cleanupState": 2,
    "roles": ["Web-Server"],
}


class TestPreflight:
    def test_a_clean_machine_has_no_findings(self) -> None:
        assert windows.parse_preflight(report(**CLEAN)).findings == ()

    @pytest.mark.parametrize(
        ("change", "kind", "words"),
        [
            (
                {"imageState": "IMAGE_STATE_UNDEPLOYABLE"},
                windows.FindingKind.IMAGE_STATE_NOT_COMPLETE,
                "UNDEPLOYABLE",
            ),
            (
                {"services": [{"name": "RdAgent", "status": "Stopped"}]},
                windows.FindingKind.AGENT_SERVICE_NOT_RUNNING,
                "RdAgent is Stopped",
            ),
            (
                {"volumes": {"mountPoint": "C:", "volumeStatus": "FullyEncrypted"}},
                windows.FindingKind.VOLUME_ENCRYPTED,
                "Disable-BitLocker -MountPoint C:",
            ),
            ({"pendingReboot": "PendingFileRenameOperations"}, windows.FindingKind.REBOOT_PENDING, "Rename"),
            (
                {"generalizationState": 4},
                windows.FindingKind.SYSPREP_STATUS_REFUSES,
                "GeneralizationState is 4",
            ),
            (
                {"roles": ["Web-Server", "AD-Domain-Services"]},
                windows.FindingKind.UNSUPPORTED_SERVER_ROLE,
                "AD-Domain-Services",
            ),
        ],
    )
    def test_each_blocker_is_its_own_finding(
        self, change: dict[str, object], kind: windows.FindingKind, words: str
    ) -> None:
        findings = windows.parse_preflight(report(**{**CLEAN, **change})).findings
        assert [finding.kind for finding in findings] == [kind]
        assert words in findings[0].message

    def test_output_without_a_report_is_refused(self) -> None:
        with pytest.raises(windows.ScriptOutputError, match="no vmgen-win report"):
            windows.parse_preflight("hello\n")

    def test_an_incomplete_report_is_refused(self) -> None:
        with pytest.raises(windows.ScriptOutputError, match="incomplete"):
            windows.parse_preflight(report(imageState="IMAGE_STATE_COMPLETE"))


def state(**fields: object) -> windows.SysprepState:
    base = {"imageState": "IMAGE_STATE_UNDEPLOYABLE", "sysprepStarted": True, "sysprepRunning": True}
    return windows.parse_sysprep_state(report(**{**base, **fields}))


class TestSysprepProgress:
    def test_reseal_to_oobe_is_generalized(self) -> None:
        assert (
            state(imageState=windows.IMAGE_STATE_GENERALIZED, sysprepRunning=False).progress == "Generalized"
        )

    def test_undeployable_while_sysprep_runs_is_still_running(self) -> None:
        assert state().progress == windows.SysprepProgress.RUNNING

    def test_complete_after_sysprep_exited_is_a_failure_with_the_logs(self) -> None:
        failed = state(
            imageState="IMAGE_STATE_COMPLETE",
            sysprepRunning=False,
            setupErrTail=["Error SYSPRP Package Microsoft.BingWeather was installed for a user"],
            setupActErrors="Error SYSPRP ActionPlatform::LaunchModule failed",
        )
        assert failed.progress == windows.SysprepProgress.FAILED
        assert "Microsoft.BingWeather" in failed.log_excerpt()
        assert "LaunchModule" in failed.log_excerpt()

    def test_undeployable_after_sysprep_exited_is_a_failure(self) -> None:
        assert state(sysprepRunning=False).progress == windows.SysprepProgress.FAILED

    def test_specialize_waits_for_the_deadline(self) -> None:
        stuck = state(imageState="IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE", sysprepRunning=False)
        assert stuck.progress == windows.SysprepProgress.RUNNING

    def test_no_start_marker_means_not_started(self) -> None:
        assert state(imageState="IMAGE_STATE_COMPLETE", sysprepStarted=False).progress == "NotStarted"

    def test_a_second_start_reports_the_first(self) -> None:
        start = windows.parse_sysprep_start(
            report(started=False, alreadyStarted=True, imageState="IMAGE_STATE_UNDEPLOYABLE")
        )
        assert start.already_started and not start.started


class TestParameterLines:
    def test_a_parameter_value_is_single_quoted_with_its_quotes_doubled(self) -> None:
        lines = windows._header("probe", 3, Path="C:\\it's (here)")
        assert lines == ["# vmgen:probe v3", "$VmgenPath = 'C:\\it''s (here)'"]
        assert syntax_errors("\n".join(lines)) == []


class TestReportsAreReadWhole:
    def test_a_preflight_report_is_read_field_by_field(self) -> None:
        parsed = windows.parse_preflight(report(**{**CLEAN, "pendingReboot": "X", "cleanupState": 5}))
        assert parsed == windows.PreflightReport(
            image_state="IMAGE_STATE_COMPLETE",
            services=tuple((name, "Running") for name in windows.AGENT_SERVICES),
            volumes=(("C:", "FullyDecrypted"),),
            pending_reboot=("X",),
            generalization_state=7,
            cleanup_state=5,
            roles=("Web-Server",),
        )

    def test_the_last_report_line_counts(self) -> None:
        output = (
            report(started=True, alreadyStarted=False, imageState="A")
            + "vmgen-win "
            + json.dumps({"started": False, "alreadyStarted": True, "imageState": "IMAGE_STATE_UNDEPLOYABLE"})
        )
        assert windows.parse_sysprep_start(output) == windows.SysprepStart(
            started=False, already_started=True, image_state="IMAGE_STATE_UNDEPLOYABLE"
        )

    def test_a_first_start_reports_that_it_started(self) -> None:
        parsed = windows.parse_sysprep_start(
            report(started=1, alreadyStarted=0, imageState="IMAGE_STATE_COMPLETE")
        )
        assert parsed == windows.SysprepStart(
            started=True, already_started=False, image_state="IMAGE_STATE_COMPLETE"
        )

    def test_a_sysprep_state_report_is_read_field_by_field(self) -> None:
        parsed = windows.parse_sysprep_state(
            report(imageState="S", sysprepStarted=1, sysprepRunning=0, setupErrTail=None, setupActErrors="e")
        )
        assert parsed == windows.SysprepState(
            image_state="S",
            sysprep_started=True,
            sysprep_running=False,
            setup_err_tail=(),
            setup_act_errors=("e",),
        )


class TestBrokenReportsSayWhatIsWrong:
    @pytest.mark.parametrize(
        ("output", "parse", "says"),
        [
            pytest.param(
                "hello\n", windows.parse_preflight, "the script printed no vmgen-win report", id="none"
            ),
            pytest.param(
                "vmgen-win [1]\n",
                windows.parse_preflight,
                "the vmgen-win report is not a JSON object",
                id="a list",
            ),
            pytest.param(
                "vmgen-win {\n",
                windows.parse_preflight,
                "the vmgen-win report is not JSON: Expecting property name enclosed in double quotes: line 1"
                " column 2 (char 1)",
                id="not JSON",
            ),
            pytest.param(
                report(**{**CLEAN, "services": "RdAgent"}),
                windows.parse_preflight,
                "the preflight report is incomplete: ScriptOutputError(\"expected objects, got 'RdAgent'\")",
                id="services that are not objects",
            ),
            pytest.param(
                report(started=True, imageState="X"),
                windows.parse_sysprep_start,
                "the sysprep start report is incomplete: KeyError('alreadyStarted')",
                id="a start report without alreadyStarted",
            ),
            pytest.param(
                report(imageState="X", sysprepStarted=True),
                windows.parse_sysprep_state,
                "the sysprep state report is incomplete: KeyError('sysprepRunning')",
                id="a state report without sysprepRunning",
            ),
        ],
    )
    def test_a_broken_report(self, output: str, parse: Callable[[str], object], says: str) -> None:
        with pytest.raises(windows.ScriptOutputError) as raised:
            parse(output)
        assert str(raised.value) == says


class TestLogExcerpt:
    @pytest.mark.parametrize(
        ("err", "act", "excerpt"),
        [
            pytest.param((), (), "no sysprep log lines", id="no lines"),
            pytest.param((" a ", "b"), (), "setuperr.log: a | b", id="setuperr.log's tail, stripped"),
            pytest.param(
                (), ("c ", " d"), "setupact.log errors: c | d", id="setupact.log's errors, stripped"
            ),
            pytest.param(("a",), ("c",), "setuperr.log: a; setupact.log errors: c", id="both"),
        ],
    )
    def test_what_a_person_reads_of_the_logs(
        self, err: tuple[str, ...], act: tuple[str, ...], excerpt: str
    ) -> None:
        found = windows.SysprepState("IMAGE_STATE_COMPLETE", True, False, err, act)
        assert found.log_excerpt() == excerpt
