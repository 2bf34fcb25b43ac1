"""`spec.winrm` and `spec.windows` as frozen values, and the WinRM target a step builds from them.

Parsed once per pass like the rest of the spec (domain/spec.py holds one field of this module's
`WindowsSpec`). The CRD already rejects most nonsense at admission (Basic without TLS unless
`allowUnencrypted`, `insecureSkipTLSVerify` without TLS or beside `caSecretRef`), but objects written
before a schema change, or by clients that skip defaults, reach the operator too: parsing fills the
documented defaults and names the offending field in `InvalidSpec`.

Trap avoided: `allowUnencrypted` only lets an object past admission. Basic over plain HTTP would send
the password in the clear, so the operator refuses it in any case (`basic_over_http`), with its own
reason, before any connection (docs/windows.md).
Only Secret names live here; the password and the CA arrive in `WinRmConnection` (reprs hide them).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from vmgen.domain import errors

__all__ = ["AUTHS", "Transport", "WinRmConnection", "WinRmSpec", "WindowsSpec", "parse"]

AUTHS = ("ntlm", "negotiate", "kerberos", "basic")


class Transport(enum.StrEnum):
    WINRM = "WinRM"
    RUN_COMMAND = "RunCommand"


@dataclass(frozen=True)
class WinRmSpec:
    host: str
    port: int
    tls: bool
    auth: str
    credentials_secret: str
    """kubernetes.io/basic-auth Secret: keys username and password."""
    ca_secret: str | None
    """Secret whose key ca.crt holds the PEM CA of the listener's certificate; None: system trust."""
    insecure_skip_tls_verify: bool = False
    allow_unencrypted: bool = False

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/wsman"

    @property
    def basic_over_http(self) -> bool:
        return self.auth == "basic" and not self.tls


@dataclass(frozen=True)
class WindowsSpec:
    transport: Transport = Transport.WINRM
    sysprep_timeout: timedelta = timedelta(minutes=30)
    winrm: WinRmSpec | None = None


@dataclass(frozen=True)
class WinRmConnection:
    """Everything the WinRM adapter needs for one call; built by the step from the spec and Secrets."""

    host: str
    port: int
    tls: bool
    auth: str
    username: str
    password: str = field(repr=False)
    ca_pem: str | None = field(default=None, repr=False)
    insecure_skip_tls_verify: bool = False


def parse(spec: Mapping[str, Any], *, duration: Any) -> WindowsSpec:
    """`duration` is spec.parse_duration (passed in: spec.py imports this module, not the reverse)."""
    windows = _mapping(spec, "windows")
    transports = {t.value: t for t in Transport}
    transport_text = windows.get("transport", Transport.WINRM.value)
    if transport_text not in transports:
        raise errors.InvalidSpec(
            f"spec.windows.transport must be WinRM or RunCommand, not {transport_text!r}"
        )
    timeout = windows.get("sysprepTimeout")
    return WindowsSpec(
        transport=transports[transport_text],
        sysprep_timeout=WindowsSpec.sysprep_timeout
        if timeout is None
        else duration(str(timeout), field="spec.windows.sysprepTimeout"),
        winrm=_winrm(spec),
    )


def _winrm(spec: Mapping[str, Any]) -> WinRmSpec | None:
    winrm = _mapping(spec, "winrm")
    if not winrm:
        return None
    host = winrm.get("host")
    if not isinstance(host, str) or not host:
        raise errors.InvalidSpec("spec.winrm.host is required")
    tls = winrm.get("tls", True)
    port = winrm.get("port", 5986 if tls else 5985)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise errors.InvalidSpec(f"spec.winrm.port must be between 1 and 65535, not {port!r}")
    auth = str(winrm.get("auth", "ntlm"))
    if auth not in AUTHS:
        raise errors.InvalidSpec(f"spec.winrm.auth must be one of {', '.join(AUTHS)}, not {auth!r}")
    credentials = _secret_name(winrm, "credentialsSecretRef")
    if credentials is None:
        raise errors.InvalidSpec("spec.winrm.credentialsSecretRef.name is required")
    parsed = WinRmSpec(
        host=host,
        port=port,
        tls=bool(tls),
        auth=auth,
        credentials_secret=credentials,
        ca_secret=_secret_name(winrm, "caSecretRef"),
        insecure_skip_tls_verify=bool(winrm.get("insecureSkipTLSVerify", False)),
        allow_unencrypted=bool(winrm.get("allowUnencrypted", False)),
    )
    if parsed.insecure_skip_tls_verify and parsed.ca_secret:
        raise errors.InvalidSpec("spec.winrm sets both caSecretRef and insecureSkipTLSVerify: choose one")
    if parsed.insecure_skip_tls_verify and not parsed.tls:
        raise errors.InvalidSpec("spec.winrm.insecureSkipTLSVerify needs tls: true")
    return parsed


def _mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise errors.InvalidSpec(f"spec.{key} must be an object")
    return value


def _secret_name(parent: Mapping[str, Any], key: str) -> str | None:
    ref = parent.get(key)
    if ref is None:
        return None
    if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str) or not ref["name"]:
        raise errors.InvalidSpec(f"spec.winrm.{key}.name is required")
    return str(ref["name"])
