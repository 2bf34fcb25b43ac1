"""Parsing spec.winrm and spec.windows, and the WinRM Secrets: defaults filled, offenders named."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from vmgen.domain import errors, secrets
from vmgen.domain.spec import Spec
from vmgen.domain.windows_spec import Transport, WinRmConnection

VM = {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "name": "win-01"}


def spec(**fields: Any) -> Spec:
    return Spec.from_body({"vm": VM, "osType": "Windows", **fields})


class TestParsing:
    def test_defaults_are_winrm_thirty_minutes_https_and_ntlm(self) -> None:
        parsed = spec(winrm={"host": "10.0.0.5", "credentialsSecretRef": {"name": "admin"}})
        assert parsed.windows.transport is Transport.WINRM
        assert parsed.windows.sysprep_timeout == timedelta(minutes=30)
        winrm = parsed.windows.winrm
        assert winrm is not None
        assert (winrm.port, winrm.tls, winrm.auth, winrm.ca_secret) == (5986, True, "ntlm", None)
        assert winrm.endpoint == "https://10.0.0.5:5986/wsman"

    def test_plain_http_defaults_to_port_5985(self) -> None:
        parsed = spec(winrm={"host": "h", "tls": False, "credentialsSecretRef": {"name": "admin"}})
        assert parsed.windows.winrm is not None and parsed.windows.winrm.port == 5985

    def test_run_command_and_a_timeout_are_read(self) -> None:
        parsed = spec(windows={"transport": "RunCommand", "sysprepTimeout": "1h30m"})
        assert parsed.windows.transport is Transport.RUN_COMMAND
        assert parsed.windows.sysprep_timeout == timedelta(minutes=90)

    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            pytest.param({"windows": {"transport": "SSH"}}, "spec.windows.transport", id="transport"),
            pytest.param(
                {"windows": {"sysprepTimeout": "soon"}}, "spec.windows.sysprepTimeout", id="timeout"
            ),
            pytest.param({"winrm": {"credentialsSecretRef": {"name": "a"}}}, "spec.winrm.host", id="host"),
            pytest.param({"winrm": {"host": "h"}}, "credentialsSecretRef", id="credentials"),
            pytest.param(
                {"winrm": {"host": "h", "auth": "digest", "credentialsSecretRef": {"name": "a"}}},
                "spec.winrm.auth",
                id="auth",
            ),
            pytest.param(
                {
                    "winrm": {
                        "host": "h",
                        "credentialsSecretRef": {"name": "a"},
                        "caSecretRef": {"name": "ca"},
                        "insecureSkipTLSVerify": True,
                    }
                },
                "choose one",
                id="ca-and-skip",
            ),
        ],
    )
    def test_an_unusable_field_is_named(self, fields: dict[str, Any], named: str) -> None:
        with pytest.raises(errors.InvalidSpec, match=named):
            spec(**fields)


class TestSecrets:
    def test_basic_auth_keeps_the_password_as_it_is(self) -> None:
        data = {"username": b"azureadmin", "password": b" p a s s "}
        assert secrets.basic_auth(data, namespace="ns", name="admin") == ("azureadmin", " p a s s ")

    def test_a_missing_password_is_named_without_any_value(self) -> None:
        with pytest.raises(errors.SecretKeyMissing, match="no key password") as raised:
            secrets.basic_auth({"username": b"azureadmin"}, namespace="ns", name="admin")
        assert "azureadmin" not in raised.value.message

    def test_a_ca_secret_must_hold_a_pem_certificate(self) -> None:
        with pytest.raises(errors.SecretKeyMissing, match=r"ca\.crt"):
            secrets.ca_bundle({"ca.crt": b"not a pem"}, namespace="ns", name="ca")

    def test_the_connection_repr_hides_the_password_and_the_ca(self) -> None:
        connection = WinRmConnection(
            host="h", port=5986, tls=True, auth="ntlm", username="u", password="hunter2", ca_pem="PEMDATA"
        )
        assert "hunter2" not in repr(connection) and "PEMDATA" not in repr(connection)
