"""What the read-only guest scripts report, and what the verdicts make of it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from vmgen.domain import guest

ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK9L6y9H+5mm9jfY/bnl0Z2Pn+UYY6IqhmqM35WImNyM"
RSA = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7"


class TestHostKeys:
    def test_host_key_lines_are_read_without_their_comments(self) -> None:
        stdout = f"{ED} root@web-01\n{RSA} root@web-01\n"

        assert guest.parse_host_keys(stdout) == (ED, RSA)

    def test_noise_and_duplicates_are_dropped(self) -> None:
        stdout = f"cat: /etc/ssh/ssh_host_dsa_key.pub: No such file\n{ED}\n{ED} again\nnot-a-key AAAA\n"

        assert guest.parse_host_keys(stdout) == (ED,)

    def test_no_keys_is_an_empty_answer(self) -> None:
        assert guest.parse_host_keys("") == ()


def report(user: str = "present", hostkeys: str = "3", ovfenv: str = "present", waagent: str = "idle") -> str:
    return "\n".join(
        [
            "Enable succeeded:",
            f"vmgen-evidence user={user}",
            f"vmgen-evidence hostkeys={hostkeys}",
            f"vmgen-evidence ovfenv={ovfenv}",
            f"vmgen-evidence waagent={waagent}",
        ]
    )


class TestEvidence:
    def test_a_complete_report_is_parsed(self) -> None:
        evidence = guest.parse_evidence(report(user="absent", hostkeys="0", ovfenv="absent"))

        assert evidence == guest.Evidence(
            user_present=False, host_keys=0, ovf_env_present=False, waagent_running=False
        )

    @pytest.mark.parametrize(
        "stdout",
        [
            pytest.param("", id="empty output"),
            pytest.param(report().rsplit("\n", 1)[0], id="a truncated report"),
            pytest.param(report(hostkeys="many"), id="a garbled count"),
            pytest.param(report(user="maybe"), id="a garbled fact"),
        ],
    )
    def test_an_incomplete_report_proves_nothing(self, stdout: str) -> None:
        assert guest.parse_evidence(stdout) is None

    @pytest.mark.parametrize(
        ("stdout", "delete_user", "verdict"),
        [
            pytest.param(
                report(user="absent", hostkeys="0", ovfenv="absent"),
                True,
                guest.Verdict.DONE,
                id="user, host keys and waagent state gone is done",
            ),
            pytest.param(
                report(user="absent", hostkeys="2", ovfenv="absent"),
                True,
                guest.Verdict.DONE,
                id="host keys kept by an image that does not regenerate them is still done",
            ),
            pytest.param(
                report(user="present", hostkeys="0", ovfenv="absent"),
                False,
                guest.Verdict.DONE,
                id="a kept user is done when deprovision keeps the user",
            ),
            pytest.param(
                report(),
                True,
                guest.Verdict.NOT_STARTED,
                id="everything intact and no waagent running has not started",
            ),
            pytest.param(
                report(waagent="running"),
                True,
                guest.Verdict.IN_PROGRESS,
                id="a running waagent deprovision is in progress",
            ),
            pytest.param(
                report(user="absent", hostkeys="0", ovfenv="absent", waagent="running"),
                True,
                guest.Verdict.IN_PROGRESS,
                id="waagent still running is in progress even if files are gone",
            ),
            pytest.param(
                report(user="present", hostkeys="0", ovfenv="absent"),
                True,
                guest.Verdict.UNKNOWN,
                id="a user still present after the rest is gone is unknown",
            ),
            pytest.param(
                report(user="present", hostkeys="0", ovfenv="present"),
                True,
                guest.Verdict.UNKNOWN,
                id="host keys gone but waagent state intact is unknown",
            ),
            pytest.param("", True, guest.Verdict.UNKNOWN, id="no report is unknown"),
        ],
    )
    def test_the_verdict_follows_the_evidence(
        self, stdout: str, delete_user: bool, verdict: guest.Verdict
    ) -> None:
        assert guest.judge(guest.parse_evidence(stdout), delete_user=delete_user) is verdict


@pytest.mark.parametrize(
    ("stdout", "delete_user", "verdict"),
    [
        pytest.param(report(), True, guest.Verdict.NOT_STARTED, id="an intact guest is deprovisioned"),
        pytest.param(
            report(ovfenv="absent"),
            False,
            guest.Verdict.NOT_STARTED,
            id="a guest merely lacking ovf-env.xml (a specialized image) is not taken for deprovisioned",
        ),
        pytest.param(
            report(user="present", hostkeys="0", ovfenv="absent"),
            False,
            guest.Verdict.DONE,
            id="every effect of -deprovision at once is done",
        ),
        pytest.param(
            report(user="absent", hostkeys="0", ovfenv="absent"),
            True,
            guest.Verdict.DONE,
            id="every effect of -deprovision+user at once is done",
        ),
        pytest.param(
            report(user="absent", hostkeys="2", ovfenv="absent"),
            True,
            guest.Verdict.NOT_STARTED,
            id="host keys still there is not enough evidence to skip deprovision",
        ),
        pytest.param(
            report(waagent="running"), True, guest.Verdict.IN_PROGRESS, id="a running waagent is waited for"
        ),
        pytest.param("", True, guest.Verdict.NOT_STARTED, id="an unreadable report changes nothing"),
    ],
)
def test_a_look_before_the_first_run_needs_every_effect_to_skip_deprovision(
    stdout: str, delete_user: bool, verdict: guest.Verdict
) -> None:
    assert guest.look_before_first_run(guest.parse_evidence(stdout), delete_user=delete_user) is verdict


def test_the_evidence_script_runs_in_a_shell_and_reports_every_fact(tmp_path: object) -> None:
    bash = shutil.which("bash")
    assert bash, "bash is needed to run the evidence script"
    result = subprocess.run(
        [bash, "-c", guest.evidence_script("no-such-user-x")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )

    evidence = guest.parse_evidence(result.stdout)

    assert evidence is not None, result.stdout + result.stderr
    assert evidence.user_present is False
    assert evidence.waagent_running is False, "the probe must not match its own command line"


def test_the_evidence_script_quotes_the_user_name() -> None:
    script = guest.evidence_script("a'b; rm -rf /")

    assert "rm -rf /'" in script and "'a'\"'\"'b; rm -rf /'" in script
