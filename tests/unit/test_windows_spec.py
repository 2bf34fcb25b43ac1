"""Parsing spec.winrm and spec.windows, and the WinRM Secrets: defaults filled, offenders named."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from vmgen.domain import errors, secrets
from vmgen.domain.spec import Spec
from vmgen.domain.windows_spec import Transport, WinRmConnection, WinRmSpec

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


WINRM = {"host": "h", "credentialsSecretRef": {"name": "admin"}}


def winrm(**fields: Any) -> WinRmSpec | None:
    return spec(winrm={**WINRM, **fields}).windows.winrm


class TestEveryWinRmField:
    def test_the_defaults_whole(self) -> None:
        assert winrm() == WinRmSpec(
            host="h",
            port=5986,
            tls=True,
            auth="ntlm",
            credentials_secret="admin",
            ca_secret=None,
            insecure_skip_tls_verify=False,
            allow_unencrypted=False,
        )

    def test_every_field_set_is_read(self) -> None:
        fields = {"port": 8080, "tls": False, "auth": "basic", "allowUnencrypted": True}
        assert winrm(**fields, caSecretRef={"name": "ca"}) == WinRmSpec(
            host="h",
            port=8080,
            tls=False,
            auth="basic",
            credentials_secret="admin",
            ca_secret="ca",
            insecure_skip_tls_verify=False,
            allow_unencrypted=True,
        )

    def test_skipping_tls_verification_over_tls_without_a_ca_is_allowed(self) -> None:
        parsed = winrm(insecureSkipTLSVerify=True)
        assert parsed is not None and parsed.insecure_skip_tls_verify

    @pytest.mark.parametrize("port", [1, 5986, 65535])
    def test_a_port_in_range_is_kept(self, port: int) -> None:
        parsed = winrm(port=port)
        assert parsed is not None and parsed.port == port


class TestEachUnusableWinRmFieldIsNamedExactly:
    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            pytest.param({"host": ""}, "spec.winrm.host is required", id="an empty host"),
            pytest.param({"host": 5}, "spec.winrm.host is required", id="a host that is not text"),
            pytest.param({"port": 0}, "spec.winrm.port must be between 1 and 65535, not 0", id="port 0"),
            pytest.param(
                {"port": 65536}, "spec.winrm.port must be between 1 and 65535, not 65536", id="65536"
            ),
            pytest.param(
                {"port": "5986"},
                "spec.winrm.port must be between 1 and 65535, not '5986'",
                id="a port as text",
            ),
            pytest.param(
                {"auth": "digest"},
                "spec.winrm.auth must be one of ntlm, negotiate, kerberos, basic, not 'digest'",
                id="an unknown auth",
            ),
            pytest.param(
                {"credentialsSecretRef": None},
                "spec.winrm.credentialsSecretRef.name is required",
                id="no Secret",
            ),
            pytest.param(
                {"credentialsSecretRef": "admin"},
                "spec.winrm.credentialsSecretRef.name is required",
                id="a Secret reference that is not an object",
            ),
            pytest.param(
                {"credentialsSecretRef": {"name": 5}},
                "spec.winrm.credentialsSecretRef.name is required",
                id="a Secret name that is not text",
            ),
            pytest.param(
                {"credentialsSecretRef": {}},
                "spec.winrm.credentialsSecretRef.name is required",
                id="a Secret reference without a name",
            ),
            pytest.param(
                {"caSecretRef": {"name": ""}},
                "spec.winrm.caSecretRef.name is required",
                id="an empty CA name",
            ),
            pytest.param(
                {"caSecretRef": {"name": "ca"}, "insecureSkipTLSVerify": True},
                "spec.winrm sets both caSecretRef and insecureSkipTLSVerify: choose one",
                id="a CA and skipping verification",
            ),
            pytest.param(
                {"tls": False, "insecureSkipTLSVerify": True},
                "spec.winrm.insecureSkipTLSVerify needs tls: true",
                id="skipping verification without TLS",
            ),
        ],
    )
    def test_the_message(self, fields: dict[str, Any], message: str) -> None:
        with pytest.raises(errors.InvalidSpec) as raised:
            winrm(**fields)
        assert raised.value.message == message

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            pytest.param({"winrm": "h"}, "spec.winrm must be an object", id="winrm"),
            pytest.param({"windows": ["WinRM"]}, "spec.windows must be an object", id="windows"),
            pytest.param(
                {"windows": {"sysprepTimeout": "soon"}},
                "spec.windows.sysprepTimeout must be a duration such as 90s, 15m or 1h30m, not 'soon'",
                id="the sysprep timeout",
            ),
        ],
    )
    def test_the_blocks(self, fields: dict[str, Any], message: str) -> None:
        with pytest.raises(errors.InvalidSpec) as raised:
            spec(**fields)
        assert raised.value.message == message
