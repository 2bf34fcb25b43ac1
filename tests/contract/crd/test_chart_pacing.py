"""The chart's ARM request limits reach the operator, and values outside the schema are refused."""

from __future__ import annotations

from typing import Any

import pytest

from vmgen import config
from vmgen_testbed.helm import render_chart


def _env(values: list[str]) -> dict[str, str]:
    (deployment,) = [
        o for o in render_chart(release="vmgen", namespace="ops", values=values) if o["kind"] == "Deployment"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    items: list[dict[str, Any]] = container["env"]
    return {item["name"]: item["value"] for item in items if "value" in item}


def test_the_default_limits_are_the_operators_defaults() -> None:
    chosen = config.Config.from_env(_env([]))

    assert chosen.max_requests_in_flight == config.DEFAULT_MAX_REQUESTS_IN_FLIGHT
    assert chosen.max_subscription_requests_in_flight == config.DEFAULT_MAX_SUBSCRIPTION_REQUESTS_IN_FLIGHT


def test_the_limits_set_in_values_reach_the_operator() -> None:
    env = _env(
        ["--set", "operator.maxRequestsInFlight=200", "--set", "operator.maxSubscriptionRequestsInFlight=24"]
    )

    chosen = config.Config.from_env(env)
    assert (chosen.max_requests_in_flight, chosen.max_subscription_requests_in_flight) == (200, 24)


def test_values_reused_from_a_chart_without_the_limits_leave_the_operators_defaults() -> None:
    env = _env(
        [
            "--set",
            "operator.maxRequestsInFlight=null",
            "--set",
            "operator.maxSubscriptionRequestsInFlight=null",
        ]
    )

    assert "VMGEN_MAX_REQUESTS_IN_FLIGHT" not in env
    assert config.Config.from_env(env).max_requests_in_flight == config.DEFAULT_MAX_REQUESTS_IN_FLIGHT


@pytest.mark.parametrize("value", ["0", "-1", "2.5"])
def test_a_limit_outside_the_schema_is_refused(value: str) -> None:
    with pytest.raises(AssertionError, match="maxSubscriptionRequestsInFlight"):
        render_chart(
            release="vmgen",
            namespace="ops",
            values=["--set", f"operator.maxSubscriptionRequestsInFlight={value}"],
        )
