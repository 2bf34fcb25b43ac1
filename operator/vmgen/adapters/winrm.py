"""PowerShell over WinRM (pypsrp), with verified TLS, NTLM by default and an honest account of failures.

`WinRmClient.run(target, script)` opens a runspace pool, runs one script, and returns its output lines;
the scripts and their parsers are in `vmgen.domain.windows`.

Traps it avoids:
- pypsrp is synchronous: every call runs in `asyncio.to_thread`, so a slow guest never blocks the
  operator's other jobs on the event loop.
- TLS is verified by default, against the CA PEM from `spec.winrm.caSecretRef` (written to a private
  temporary file, as pypsrp wants a path) or else the system's trust store; `insecure_skip_tls_verify`
  only by explicit opt-in.
- Basic over plain HTTP would send the password in the clear (and pypsrp refuses it with an opaque
  `ValueError` under `encryption="auto"`): it is refused here with a clear reason before any connection.
  NTLM over plain HTTP always uses WinRM message encryption.
- pypsrp's `had_errors` is true only when the pipeline Failed (a terminating error); a Write-Error leaves
  it false and fills `streams.error`. Both count as failure.
- Uncertain is its own outcome: a connection that fails while the pool opens proves nothing ran
  (GuestUnreachable); once the command was sent, a lost connection or a read timeout may have left the
  script running (sysprep!), so it is DeprovisionOutcomeUnknown, never success and never failure.
- The password never appears in a message or a repr (`WinRmTarget` hides it; messages name the user).
- pypsrp needs the read timeout above the operation timeout (a Receive may legally wait that long):
  `WinRmTimeouts` enforces it.

Errors raised, each with a reason a person can act on: InvalidSpec (refused configuration; Basic over
plain HTTP with reason WinRMBasicOverHTTP), GuestUnreachable, AuthenticationRefused (401, reason
WinRMAuthenticationRefused), PermanentError (the certificate is not trusted, reason
WinRMCertificateUntrusted), DeprovisionFailed (the script failed: its PowerShell errors in the message,
reason WindowsScriptFailed), DeprovisionOutcomeUnknown.

`WinRmGuests` is the `ports.WindowsGuests` side of this transport: `winrm(connection)` gives a
`ports.WindowsGuest` for one pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from vmgen.domain import errors, windows_spec
from vmgen.domain.reasons import Reason

__all__ = ["ScriptOutput", "WinRmClient", "WinRmGuest", "WinRmGuests", "WinRmTarget", "WinRmTimeouts"]

_AUTHS = ("ntlm", "negotiate", "kerberos", "basic")
_ERROR_LINES = 10


@dataclass(frozen=True)
class WinRmTimeouts:
    connect: float = 10.0
    operation: int = 20  # WS-Management OperationTimeout of each Receive, seconds
    read: float = 30.0

    def __post_init__(self) -> None:
        if self.read <= self.operation:
            raise errors.InvalidSpec(
                f"the WinRM read timeout ({self.read:g} s) must exceed the operation timeout "
                f"({self.operation} s): a Receive may wait that long before it answers"
            )


@dataclass(frozen=True)
class WinRmTarget:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    tls: bool = True
    auth: str = "ntlm"
    ca_pem: str | None = field(default=None, repr=False)  # PEM text of the CA that signed the listener
    insecure_skip_tls_verify: bool = False
    timeouts: WinRmTimeouts = field(default_factory=WinRmTimeouts)

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/wsman"


@dataclass(frozen=True)
class ScriptOutput:
    output: tuple[str, ...]


class WinRmClient:
    async def run(self, target: WinRmTarget, script: str) -> ScriptOutput:
        refuse_insecure(target)
        return await asyncio.to_thread(_run, target, script)


class WinRmGuest:
    """`ports.WindowsGuest` over WinRM for one target."""

    def __init__(self, client: WinRmClient, target: WinRmTarget) -> None:
        self._client = client
        self._target = target

    async def run(self, script: str, *, timeout: float) -> str:  # noqa: ASYNC109 (the port's bound)
        # pypsrp bounds each Receive by the read timeout; a script's own bound is the operation's
        # repetition, which the scripts keep short (sysprep itself is started detached, never awaited).
        result = await self._client.run(self._target, script)
        return "\n".join(result.output)


class WinRmGuests:
    """The WinRM half of `ports.WindowsGuests`; `run_command` is provided by adapters/azure_runcommand."""

    def __init__(self, client: WinRmClient | None = None, timeouts: WinRmTimeouts | None = None) -> None:
        self._client = client or WinRmClient()
        self._timeouts = timeouts or WinRmTimeouts()

    def winrm(self, connection: windows_spec.WinRmConnection) -> WinRmGuest:
        return WinRmGuest(
            self._client,
            WinRmTarget(
                host=connection.host,
                port=connection.port,
                username=connection.username,
                password=connection.password,
                tls=connection.tls,
                auth=connection.auth,
                ca_pem=connection.ca_pem,
                insecure_skip_tls_verify=connection.insecure_skip_tls_verify,
                timeouts=self._timeouts,
            ),
        )


def refuse_insecure(target: WinRmTarget) -> None:
    """Configuration that must never reach the network."""
    if target.auth not in _AUTHS:
        raise errors.InvalidSpec(f"spec.winrm.auth must be one of {', '.join(_AUTHS)}, not {target.auth!r}")
    if target.auth == "basic" and not target.tls:
        raise errors.InvalidSpec(
            f"WinRM Basic authentication over plain HTTP to {target.endpoint} would send the password of "
            f"{target.username} in the clear: refused. Use tls: true (an HTTPS listener on port 5986) or "
            "auth: ntlm (messages are then encrypted)",
            reason=Reason.WINRM_BASIC_OVER_HTTP,
        )
    if target.insecure_skip_tls_verify and target.ca_pem:
        raise errors.InvalidSpec("spec.winrm sets both caSecretRef and insecureSkipTLSVerify: choose one")


@contextlib.contextmanager
def _ca_file(target: WinRmTarget) -> Iterator[bool | str]:
    """What pypsrp's `cert_validation` wants: a CA bundle path, True (system trust) or False."""
    if target.insecure_skip_tls_verify:
        yield False
        return
    if not target.ca_pem:
        yield True
        return
    descriptor, path = tempfile.mkstemp(prefix="vmgen-winrm-ca-", suffix=".pem")
    try:
        with os.fdopen(descriptor, "w") as bundle:
            bundle.write(target.ca_pem)
        yield path
    finally:
        os.unlink(path)


def _run(target: WinRmTarget, script: str) -> ScriptOutput:
    where = f"WinRM {target.endpoint} as {target.username}"
    with _ca_file(target) as cert_validation:
        connection = WSMan(
            target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            ssl=target.tls,
            auth=target.auth,
            cert_validation=cert_validation,  # type: ignore[arg-type]  # pypsrp also takes a CA path
            connection_timeout=int(target.timeouts.connect),
            read_timeout=int(target.timeouts.read),
            operation_timeout=target.timeouts.operation,
            encryption="auto",  # TLS on HTTPS; WinRM message encryption on HTTP (NTLM/Negotiate/Kerberos)
            no_proxy=True,
        )
        pool = RunspacePool(connection)
        try:
            try:
                pool.open()
            except AuthenticationError:
                raise errors.AuthenticationRefused(
                    f"{where}: the guest refused the credentials (401). Check the user and password in "
                    "spec.winrm.credentialsSecretRef",
                    reason=Reason.WINRM_AUTHENTICATION_REFUSED,
                ) from None
            except requests.exceptions.SSLError as error:
                raise errors.PermanentError(
                    f"{where}: the listener's TLS certificate is not trusted ({_reason(error)}). Put the CA "
                    "that signed it in spec.winrm.caSecretRef",
                    reason=Reason.WINRM_CERTIFICATE_UNTRUSTED,
                ) from None
            except (requests.exceptions.RequestException, WinRMError, OSError) as error:
                raise errors.GuestUnreachable(
                    f"{where}: could not open a session: {_reason(error)}"
                ) from None
            shell = PowerShell(pool)
            shell.add_script(script)
            try:
                shell.begin_invoke()
                while shell.state == PSInvocationState.RUNNING:
                    shell.poll_invoke()
            except (requests.exceptions.RequestException, WinRMError, OSError) as error:
                raise errors.DeprovisionOutcomeUnknown(
                    f"{where}: the connection was lost after the script was sent ({_reason(error)}); it may "
                    "still be running in the guest"
                ) from None
        finally:
            with contextlib.suppress(Exception):  # a lost or rebooting guest cannot close the pool
                pool.close()
            with contextlib.suppress(Exception):
                connection.close()
    failures = [str(record) for record in shell.streams.error]
    if shell.had_errors or failures:
        shown = " | ".join(failures[-_ERROR_LINES:]) or "the pipeline failed without an error record"
        raise errors.DeprovisionFailed(
            f"{where}: the PowerShell script failed: {shown}", reason=Reason.WINDOWS_SCRIPT_FAILED
        )
    return ScriptOutput(tuple(str(item) for item in shell.output))


def _reason(error: BaseException) -> str:
    """A short cause without anything secret (pypsrp and requests put URLs and users there, never the
    password)."""
    if isinstance(error, WSManFaultError):
        return f"WSMan fault {error.code}: {error.reason}"
    if isinstance(error, WinRMTransportError):
        return f"HTTP {error.code}"
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:300] + "..."
