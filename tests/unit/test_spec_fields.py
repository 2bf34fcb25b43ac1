"""spec, field by field: each default, each value read, and the exact InvalidSpec a person sees.

tests/unit/test_spec.py checks that an error names its field; this file pins the whole message (what
was wrong and what is allowed), so that a person reading `kubectl describe` can fix the field without
reading the code, and every default the documentation promises.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from vmgen.domain import capture_spec, errors, model
from vmgen.domain.spec import Spec, SshSpec, Timeouts, parse_duration
from vmgen.domain.status import StepName

VM = {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "name": "web-01"}
SSH = {"host": "10.0.0.4", "privateKeySecretRef": {"name": "web-01-ssh"}}
MINIMAL: dict[str, Any] = {"vm": VM, "ssh": SSH}


def test_the_documented_timeouts_are_the_defaults() -> None:
    assert Spec.from_body(MINIMAL).timeouts == Timeouts(
        deprovision=timedelta(minutes=15),
        shutdown=timedelta(minutes=20),
        generalize=timedelta(minutes=5),
        capture=timedelta(hours=2),
        copy=timedelta(minutes=30),
    )


def test_every_timeout_is_read_from_its_own_field() -> None:
    timeouts = {"deprovision": "1s", "shutdown": "2s", "generalize": "3s", "capture": "4s", "copy": "5s"}

    assert Spec.from_body({**MINIMAL, "timeouts": timeouts}).timeouts == Timeouts(
        *(timedelta(seconds=n) for n in range(1, 6))
    )


@pytest.mark.parametrize(
    ("ssh", "expected"),
    [
        pytest.param(SSH, SshSpec("10.0.0.4", 22, "azureuser", "web-01-ssh", ()), id="the defaults"),
        pytest.param(
            {**SSH, "port": 65535, "username": "ops", "hostKeys": [" ssh-ed25519 AAAA ", " "]},
            SshSpec("10.0.0.4", 65535, "ops", "web-01-ssh", ("ssh-ed25519 AAAA",)),
            id="the highest port, a user and a stripped key list",
        ),
        pytest.param({**SSH, "port": 1}, SshSpec("10.0.0.4", 1, "azureuser", "web-01-ssh", ()), id="port 1"),
        pytest.param(
            {**SSH, "username": "", "hostKeys": None},
            SshSpec("10.0.0.4", 22, "azureuser", "web-01-ssh", ()),
            id="an empty user and null keys are the defaults",
        ),
    ],
)
def test_spec_ssh_is_read_field_by_field(ssh: dict[str, Any], expected: SshSpec) -> None:
    assert Spec.from_body({**MINIMAL, "ssh": ssh}).ssh == expected


def test_a_copy_needs_no_ssh_host_and_an_in_place_job_needs_none_when_ssh_is_absent() -> None:
    copy = Spec.from_body({**MINIMAL, "source": "Copy", "ssh": {"privateKeySecretRef": {"name": "k"}}})
    bare = Spec.from_body({"vm": VM})

    assert copy.ssh == SshSpec("", 22, "azureuser", "k", ())
    assert bare.ssh is None
    assert bare.credentials_secret is None and bare.delete_user is True and bare.os_type is None


@pytest.mark.parametrize(
    ("os_type", "expected"),
    [
        pytest.param("Auto", None, id="Auto takes Azure's word"),
        pytest.param("Linux", model.OsType.LINUX, id="Linux"),
        pytest.param("Windows", model.OsType.WINDOWS, id="Windows"),
    ],
)
def test_os_type(os_type: str, expected: model.OsType | None) -> None:
    assert Spec.from_body({**MINIMAL, "osType": os_type}).os_type is expected


INVALID = [
    pytest.param({"ssh": SSH}, "spec.vm must be an object", id="no vm"),
    pytest.param({"vm": "web-01"}, "spec.vm must be an object", id="a vm that is text"),
    pytest.param({**MINIMAL, "vm": {**VM, "name": ""}}, "spec.vm.name is required", id="an empty vm name"),
    pytest.param(
        {**MINIMAL, "vm": {**VM, "name": 7}}, "spec.vm.name is required", id="a vm name that is a number"
    ),
    pytest.param(
        {**MINIMAL, "vm": {**VM, "resourceGroup": None}}, "spec.vm.resourceGroup is required", id="no group"
    ),
    pytest.param(
        {**MINIMAL, "vm": {**VM, "subscriptionId": None}}, "spec.vm.subscriptionId is required", id="no sub"
    ),
    pytest.param(
        {**MINIMAL, "osType": "Solaris"},
        "spec.osType must be Auto, Linux or Windows, not 'Solaris'",
        id="an unknown osType",
    ),
    pytest.param({**MINIMAL, "ssh": "h"}, "spec.ssh must be an object", id="ssh that is text"),
    pytest.param(
        {**MINIMAL, "ssh": {**SSH, "port": 0}},
        "spec.ssh.port must be between 1 and 65535, not 0",
        id="port 0",
    ),
    pytest.param(
        {**MINIMAL, "ssh": {**SSH, "port": 65536}},
        "spec.ssh.port must be between 1 and 65535, not 65536",
        id="port 65536",
    ),
    pytest.param(
        {**MINIMAL, "ssh": {**SSH, "port": "22"}},
        "spec.ssh.port must be between 1 and 65535, not '22'",
        id="a port that is text",
    ),
    pytest.param(
        {**MINIMAL, "ssh": {**SSH, "hostKeys": "ssh-ed25519 AAAA"}},
        "spec.ssh.hostKeys must be a list of OpenSSH public keys",
        id="host keys that are not a list",
    ),
    pytest.param(
        {**MINIMAL, "ssh": {**SSH, "hostKeys": ["ssh-ed25519 AAAA", 7]}},
        "spec.ssh.hostKeys must be a list of OpenSSH public keys",
        id="a host key that is not text",
    ),
    pytest.param(
        {**MINIMAL, "ssh": {"host": "h"}},
        "spec.ssh.privateKeySecretRef.name is required",
        id="no key Secret",
    ),
    pytest.param(
        {**MINIMAL, "ssh": {**SSH, "privateKeySecretRef": "k"}},
        "spec.ssh.privateKeySecretRef must be an object with a name",
        id="a key Secret that is text",
    ),
    pytest.param(
        {**MINIMAL, "ssh": {**SSH, "privateKeySecretRef": {}}},
        "spec.ssh.privateKeySecretRef.name is required",
        id="a key Secret without name",
    ),
    pytest.param(
        {**MINIMAL, "ssh": {"privateKeySecretRef": {"name": "k"}}},
        "spec.ssh.host is required",
        id="an in-place job without ssh host",
    ),
    pytest.param(
        {**MINIMAL, "azure": {"credentialsSecretRef": {"name": ""}}},
        "spec.azure.credentialsSecretRef.name is required",
        id="an Azure Secret with an empty name",
    ),
    pytest.param(
        {**MINIMAL, "timeouts": "15m"}, "spec.timeouts must be an object", id="timeouts that are text"
    ),
    pytest.param(
        {**MINIMAL, "timeouts": {"copy": "20 minutes"}},
        "spec.timeouts.copy must be a duration such as 90s, 15m or 1h30m, not '20 minutes'",
        id="a malformed timeout",
    ),
    pytest.param(
        {**MINIMAL, "timeouts": {"generalize": "0m"}},
        "spec.timeouts.generalize must be longer than 0s",
        id="a zero timeout",
    ),
]


@pytest.mark.parametrize(("body", "message"), INVALID)
def test_an_unusable_spec_says_exactly_what_is_wrong(body: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidSpec) as caught:
        Spec.from_body(body)

    assert caught.value.message == message


def test_the_azure_credentials_secret_is_read() -> None:
    spec = Spec.from_body({**MINIMAL, "azure": {"credentialsSecretRef": {"name": "azure-sp"}}})

    assert spec.credentials_secret == "azure-sp"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("59m", 3540), ("1h1m1s", 3661), ("10h", 36000)],
)
def test_each_unit_of_a_duration_counts_its_own_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text, field="f") == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("body", "steps"),
    [
        pytest.param(MINIMAL, ("validate", "deprovision", "shutdown", "generalize"), id="a plain job"),
        pytest.param({**MINIMAL, "mode": "Preflight"}, ("preflight",), id="a preflight does only that"),
        pytest.param(
            {**MINIMAL, "approval": "Manual"},
            ("validate", "approval", "deprovision", "shutdown", "generalize"),
            id="a manual approval before deprovision",
        ),
        pytest.param(
            {**MINIMAL, "preserveSource": {"snapshot": True}},
            ("validate", "snapshot", "deprovision", "shutdown", "generalize"),
            id="a snapshot first when the source is preserved",
        ),
        pytest.param(
            {**MINIMAL, "source": "Copy", "copy": {"stopSourceFirst": False}},
            ("validate", "snapshot", "copy", "deprovision", "shutdown", "generalize", "deleteCopy"),
            id="a copy without stopping the source",
        ),
    ],
)
def test_the_steps_of_a_job(body: dict[str, Any], steps: tuple[str, ...]) -> None:
    assert Spec.from_body(body).steps == tuple(StepName(s) for s in steps)


@pytest.mark.parametrize(
    ("body", "policy"),
    [
        pytest.param(MINIMAL, capture_spec.DeletionPolicy.RETAIN, id="by default what the job made is kept"),
        pytest.param(
            {**MINIMAL, "deletionPolicy": "Delete"}, capture_spec.DeletionPolicy.DELETE, id="Delete"
        ),
    ],
)
def test_the_deletion_policy_is_read(body: dict[str, Any], policy: capture_spec.DeletionPolicy) -> None:
    assert Spec.from_body(body).deletion_policy is policy


def test_a_copy_reached_at_a_host_of_its_own_keeps_that_host() -> None:
    spec = Spec.from_body({**MINIMAL, "source": "Copy"})

    assert spec.ssh == SshSpec("10.0.0.4", 22, "azureuser", "web-01-ssh", ())
