"""Parsing spec: documented defaults, Go durations, and InvalidSpec naming the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from vmgen.domain import errors, model
from vmgen.domain.spec import Spec, parse_duration

MINIMAL: dict[str, Any] = {
    "vm": {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "name": "web-01"},
    "ssh": {"host": "10.0.0.4", "privateKeySecretRef": {"name": "web-01-ssh"}},
}


def test_a_minimal_spec_gets_the_documented_defaults() -> None:
    spec = Spec.from_body(MINIMAL)

    assert spec.vm == model.VmRef("00000000-0000-0000-0000-000000000001", "rg", "web-01")
    assert spec.os_type is None
    assert spec.credentials_secret is None
    assert spec.ssh is not None
    assert (spec.ssh.port, spec.ssh.username, spec.ssh.host_keys) == (22, "azureuser", ())
    assert spec.delete_user is True
    assert spec.timeouts.deprovision == timedelta(minutes=15)
    assert spec.timeouts.shutdown == timedelta(minutes=20)
    assert spec.timeouts.generalize == timedelta(minutes=5)


def test_a_full_spec_is_read_field_by_field() -> None:
    spec = Spec.from_body(
        {
            **MINIMAL,
            "osType": "Linux",
            "azure": {"credentialsSecretRef": {"name": "azure-sp"}},
            "ssh": {
                "host": "h",
                "port": 2222,
                "username": "ops",
                "privateKeySecretRef": {"name": "k"},
                "hostKeys": [" ssh-ed25519 AAAA ", ""],
            },
            "linux": {"deprovisionUser": False},
            "timeouts": {"deprovision": "1h30m", "shutdown": "90s"},
        }
    )

    assert spec.os_type is model.OsType.LINUX
    assert spec.credentials_secret == "azure-sp"
    assert spec.ssh is not None and (spec.ssh.port, spec.ssh.username) == (2222, "ops")
    assert spec.ssh.host_keys == ("ssh-ed25519 AAAA",)
    assert spec.delete_user is False
    assert spec.timeouts.deprovision == timedelta(minutes=90)
    assert spec.timeouts.shutdown == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"ssh": MINIMAL["ssh"]}, "spec.vm", id="a spec without vm names spec.vm"),
        pytest.param(
            {**MINIMAL, "vm": {"subscriptionId": "s", "resourceGroup": "rg"}},
            "spec.vm.name",
            id="a vm without name names spec.vm.name",
        ),
        pytest.param(
            {**MINIMAL, "osType": "Solaris"}, "spec.osType", id="an unknown osType names spec.osType"
        ),
        pytest.param(
            {**MINIMAL, "ssh": {**MINIMAL["ssh"], "port": 0}},
            "spec.ssh.port",
            id="port 0 names spec.ssh.port",
        ),
        pytest.param(
            {**MINIMAL, "ssh": {"host": "h"}},
            "spec.ssh.privateKeySecretRef.name",
            id="ssh without a key Secret names privateKeySecretRef",
        ),
        pytest.param(
            {**MINIMAL, "timeouts": {"shutdown": "20 minutes"}},
            "spec.timeouts.shutdown",
            id="a malformed duration names the timeout",
        ),
    ],
)
def test_an_unusable_spec_is_invalid_and_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.InvalidSpec) as caught:
        Spec.from_body(body)

    # The message opens with the field's full path: a substring check would let `spec.vm` pass for a
    # message about `spec.vm.name`.
    assert caught.value.message.split()[0] == field, caught.value.message


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h30m", 5400), ("2h", 7200)])
def test_go_durations_are_parsed(text: str, seconds: int) -> None:
    assert parse_duration(text, field="f") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0s", "15", "m15", "1.5h", "15m "])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(errors.InvalidSpec):
        parse_duration(text, field="spec.timeouts.x")
