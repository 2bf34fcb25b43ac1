"""`vmgen` command line and configuration: defaults, VMGEN_* variables, flags winning over them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vmgen import cli, config


def settings(*argv: str, env: dict[str, str] | None = None) -> config.Config:
    return cli.settings(cli.parser().parse_args(["run", *argv]), env or {})


def test_the_defaults_talk_to_public_azure_with_a_fast_poll_interval() -> None:
    chosen = settings()

    assert chosen == config.Config()
    assert chosen.arm_endpoint == "https://management.azure.com"
    assert chosen.credential_scope == "https://management.azure.com/.default"
    assert chosen.authority == "https://login.microsoftonline.com"
    assert chosen.ca_bundle is None
    assert chosen.poll_interval == 5.0
    assert chosen.namespaces == ()
    assert chosen.operator_namespace == "default"


def test_every_setting_comes_from_its_environment_variable() -> None:
    env = {
        "VMGEN_ARM_ENDPOINT": "https://arm.local",
        "VMGEN_CREDENTIAL_SCOPE": "https://arm.local/.default",
        "VMGEN_AUTHORITY": "https://login.local",
        "VMGEN_CA_BUNDLE": "/ca.pem",
        "VMGEN_POLL_INTERVAL": "0.05",
        "VMGEN_NAMESPACES": "images, golden ,",
        "VMGEN_OPERATOR_NAMESPACE": "vmgen-system",
        "VMGEN_LIVENESS_ENDPOINT": "http://0.0.0.0:8080/healthz",
        "VMGEN_VERBOSE": "true",
    }

    assert settings(env=env) == config.Config(
        arm_endpoint="https://arm.local",
        credential_scope="https://arm.local/.default",
        authority="https://login.local",
        ca_bundle="/ca.pem",
        poll_interval=0.05,
        namespaces=("images", "golden"),
        operator_namespace="vmgen-system",
        liveness_endpoint="http://0.0.0.0:8080/healthz",
        verbose=True,
    )


def test_flags_win_over_the_environment() -> None:
    env = {"VMGEN_ARM_ENDPOINT": "https://env", "VMGEN_NAMESPACES": "a,b", "VMGEN_POLL_INTERVAL": "9"}

    chosen = settings(
        "--arm-endpoint", "https://flag", "-n", "c", "--poll-interval", "1.5", "--verbose", env=env
    )

    assert (chosen.arm_endpoint, chosen.namespaces, chosen.poll_interval, chosen.verbose) == (
        "https://flag",
        ("c",),
        1.5,
        True,
    )


def test_all_namespaces_overrides_a_namespace_list_from_the_environment() -> None:
    assert settings("--all-namespaces", env={"VMGEN_NAMESPACES": "a"}).namespaces == ()


def test_the_operator_namespace_falls_back_to_the_pods_namespace() -> None:
    assert settings(env={"POD_NAMESPACE": "ops"}).operator_namespace == "ops"
    assert (
        settings(env={"POD_NAMESPACE": "ops", "VMGEN_OPERATOR_NAMESPACE": "mine"}).operator_namespace
        == "mine"
    )


@pytest.mark.parametrize("value", ["0", "-1", "301", "fast"])
def test_a_nonsense_poll_interval_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="poll interval"):
        config.parse_interval(value)


def test_a_nonsense_poll_interval_in_the_environment_exits_with_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VMGEN_POLL_INTERVAL", "soon")

    assert cli.main(["run"]) == 2
    assert "poll interval" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "explanation"),
    [
        ("0", "the poll interval must be more than 0 and at most 300 seconds, not 0"),
        ("fast", "the poll interval must be a number of seconds, not 'fast'"),
    ],
)
def test_a_nonsense_poll_interval_flag_exits_with_the_reason_on_stderr(
    value: str, explanation: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--poll-interval", value])

    assert exit_info.value.code == 2
    assert f"argument --poll-interval: {explanation}" in capsys.readouterr().err


def test_namespace_and_all_namespaces_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.parser().parse_args(["run", "-n", "a", "--all-namespaces"])

    # Any other usage error (an unknown flag, a missing value) also exits 2: the message tells them apart.
    assert exit_info.value.code == 2
    assert "argument --all-namespaces/-A: not allowed with argument --namespace/-n" in capsys.readouterr().err


def test_namespace_and_all_namespaces_are_each_accepted_alone() -> None:
    assert cli.parser().parse_args(["run", "-n", "a", "-n", "b"]).namespaces == ["a", "b"]
    assert cli.parser().parse_args(["run", "--all-namespaces"]).all_namespaces is True


def test_vmgen_crd_prints_the_shipped_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crd"]) == 0

    printed = capsys.readouterr().out
    repository_copy = Path(__file__).resolve().parents[2] / "crds" / "vmgeneralization.yaml"
    assert printed == repository_copy.read_text(encoding="utf-8")
    crd = yaml.safe_load(printed)
    assert crd["metadata"]["name"] == "vmgeneralizations.vmgen.io"


class TestProductionSettings:
    def test_metrics_identity_namespaces_and_leader_election_have_safe_defaults(self) -> None:
        chosen = settings()

        assert chosen.metrics_port == 0, "no metrics endpoint unless asked for"
        assert chosen.identity_namespaces == (), "no namespace may use the operator's identity by default"
        assert chosen.leader_election is True
        assert chosen.leader_lease == "vmgen-leader"
        assert chosen.lease_duration == 15.0

    def test_they_come_from_their_environment_variables(self) -> None:
        env = {
            "VMGEN_METRICS_PORT": "9090",
            "VMGEN_IDENTITY_NAMESPACES": "images, golden",
            "VMGEN_LEADER_ELECTION": "false",
            "VMGEN_LEADER_LEASE": "vmgen-prod-leader",
            "VMGEN_LEASE_DURATION": "30",
        }

        chosen = settings(env=env)

        assert (chosen.metrics_port, chosen.identity_namespaces) == (9090, ("images", "golden"))
        assert (chosen.leader_election, chosen.leader_lease, chosen.lease_duration) == (
            False,
            "vmgen-prod-leader",
            30.0,
        )

    def test_flags_win_over_their_variables(self) -> None:
        env = {
            "VMGEN_METRICS_PORT": "9090",
            "VMGEN_LEADER_ELECTION": "false",
            "VMGEN_IDENTITY_NAMESPACES": "a",
        }

        chosen = settings(
            "--metrics-port",
            "9100",
            "--leader-election",
            "--identity-namespaces",
            "b,c",
            "--lease-duration",
            "5",
            env=env,
        )

        assert (chosen.metrics_port, chosen.leader_election, chosen.identity_namespaces) == (
            9100,
            True,
            ("b", "c"),
        )
        assert chosen.lease_duration == 5.0

    @pytest.mark.parametrize(
        "argv",
        [
            pytest.param(("--metrics-port", "70000"), id="a port above 65535"),
            pytest.param(("--metrics-port", "http"), id="a port that is no number"),
            pytest.param(("--lease-duration", "0.5"), id="a lease shorter than a second"),
        ],
    )
    def test_bad_values_are_refused_with_their_reason(
        self, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit):
            settings(*argv)

        assert "must be" in capsys.readouterr().err
