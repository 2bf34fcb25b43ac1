"""The ARM request limits: defaults, VMGEN_* variables, flags winning over them, nonsense refused."""

from __future__ import annotations

import pytest

from vmgen import cli, config


def settings(*argv: str, env: dict[str, str] | None = None) -> config.Config:
    return cli.settings(cli.parser().parse_args(["run", *argv]), env or {})


def test_the_default_limits_leave_room_for_a_fleet_and_bound_one_subscription() -> None:
    chosen = settings()

    assert chosen.max_requests_in_flight == 64
    assert chosen.max_subscription_requests_in_flight == 16


def test_the_limits_come_from_the_environment_and_flags_win() -> None:
    env = {"VMGEN_MAX_REQUESTS_IN_FLIGHT": "100", "VMGEN_MAX_SUBSCRIPTION_REQUESTS_IN_FLIGHT": "8"}

    assert settings(env=env).max_requests_in_flight == 100
    assert settings(env=env).max_subscription_requests_in_flight == 8
    chosen = settings("--max-subscription-requests-in-flight", "4", env=env)
    assert (chosen.max_requests_in_flight, chosen.max_subscription_requests_in_flight) == (100, 4)


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5", "10001"])
def test_a_nonsense_limit_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="request limit"):
        config.Config.from_env({"VMGEN_MAX_REQUESTS_IN_FLIGHT": value})


def test_a_nonsense_limit_flag_exits_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["run", "--max-requests-in-flight", "0"])

    assert "between 1 and 10000" in capsys.readouterr().err
