"""Authentication and WinRM message encryption for the Windows endpoint: NTLM through pyspnego's acceptor,
and Basic.

NTLM, as WinRM does it: the client's first request gets 401 `WWW-Authenticate: Negotiate`; the NEGOTIATE
and CHALLENGE tokens travel in 401s; the AUTHENTICATE token completes the context. pyspnego's NTLM
acceptor checks the answer against `NTLM_USER_FILE` (`DOMAIN:user:password` lines): its path is read from
the environment when a context is made, so `CredentialFile` keeps one file per process and every
endpoint adds its users to it. Over plain HTTP the client then wraps every SOAP message with
`wrap_winrm` in a `multipart/encrypted` body; we unwrap with the same context and wrap the answer.

Traps avoided:
- The NTLM context belongs to one keep-alive TCP connection (WinRM authenticates connections, not
  requests): `ConnectionAuth` lives on the aiohttp connection and dies with it. A request on another
  connection without a token starts over with 401.
- Over HTTPS the client binds the NTLM answer to the server certificate (channel binding token,
  `tls-server-end-point` = SHA-256 of the certificate): the acceptor gets the same binding, so a client
  talking through a TLS-terminating man in the middle is refused.
- A wrong password is a plain 401 with no token, which pypsrp reports as AuthenticationError.
- Basic is accepted over HTTPS, and over HTTP only when the endpoint is told to (so that a test can prove
  the operator refuses it before sending anything).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import spnego
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

__all__ = ["ConnectionAuth", "CredentialFile", "tls_channel_bindings", "unwrap_message", "wrap_message"]

_BOUNDARY = b"--Encrypted Boundary"
_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
_LENGTH = re.compile(rb"Length=(\d+)")


class CredentialFile:
    """The process's NTLM_USER_FILE: created on first use under `directory` unless the environment
    already names one; users are appended, never removed while an endpoint may still need them.

    pyspnego takes the first line whose user matches (the client sends no domain), so a user has one
    password per process: adding a user that is already there keeps, and returns, its first password."""

    _lock = threading.Lock()

    @classmethod
    def add(cls, directory: Path, domain: str, username: str, password: str) -> str:
        with cls._lock:
            existing = os.environ.get("NTLM_USER_FILE")
            path = Path(existing) if existing else directory / "ntlm-users.txt"
            if not existing:
                directory.mkdir(parents=True, exist_ok=True)
                os.environ["NTLM_USER_FILE"] = str(path)
            for line in path.read_text().splitlines() if path.exists() else []:
                parts = line.split(":", 2)
                if len(parts) == 3 and parts[1].lower() == username.lower():
                    return parts[2]
            with path.open("a") as users:
                users.write(f"{domain}:{username}:{password}\n")
            path.chmod(0o600)
            return password

    @classmethod
    def basic_matches(cls, username: str, password: str) -> bool:
        path = os.environ.get("NTLM_USER_FILE")
        if not path:
            return False
        _, _, user = username.rpartition("\\")
        for line in Path(path).read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3 and parts[1].lower() == user.lower() and parts[2] == password:
                return True
        return False


def tls_channel_bindings(certificate_der: bytes) -> GssChannelBindings:
    """RFC 5929 tls-server-end-point for a certificate signed with SHA-256 (trustme's)."""
    return GssChannelBindings(
        application_data=b"tls-server-end-point:" + hashlib.sha256(certificate_der).digest()
    )


@dataclass
class AuthResult:
    authenticated: bool
    challenge: str | None = None  # WWW-Authenticate value of a 401


class ConnectionAuth:
    """The authentication state of one TCP connection."""

    def __init__(self, *, https: bool, basic_allowed: bool, bindings: GssChannelBindings | None) -> None:
        self.https = https
        self.basic_allowed = basic_allowed
        self.bindings = bindings
        self.context: spnego.ContextProxy | None = None
        self.authenticated = False

    def offers(self) -> str:
        return 'Negotiate, Basic realm="WSMAN"' if self.basic_allowed else "Negotiate"

    def authenticate(self, authorization: str | None) -> AuthResult:
        if authorization is None:
            if self.authenticated and self.context is not None:
                return AuthResult(True)
            return AuthResult(False, self.offers())
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            return self._basic(value.strip())
        if scheme.lower() in ("negotiate", "ntlm"):
            return self._negotiate(scheme, value.strip())
        return AuthResult(False, self.offers())

    def _basic(self, value: str) -> AuthResult:
        if not self.basic_allowed:
            return AuthResult(False, self.offers())
        try:
            username, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return AuthResult(False, self.offers())
        if CredentialFile.basic_matches(username, password):
            return AuthResult(True)
        return AuthResult(False, self.offers())

    def _negotiate(self, scheme: str, value: str) -> AuthResult:
        try:
            token = base64.b64decode(value)
        except binascii.Error:
            return AuthResult(False, self.offers())
        if self.context is None or self.authenticated or token.startswith(b"NTLMSSP\x00\x01"):
            # A NEGOTIATE message (or a new handshake on an authenticated connection) starts a context.
            protocol = "ntlm" if token.startswith(b"NTLMSSP\x00") else "negotiate"
            self.context = spnego.server(
                protocol=protocol,
                channel_bindings=self.bindings,
                options=spnego.NegotiateOptions.use_ntlm,
            )
            self.authenticated = False
        try:
            answer = self.context.step(token)
        except SpnegoError:
            self.context, self.authenticated = None, False
            return AuthResult(False, self.offers())
        if self.context.complete:
            self.authenticated = True
            return AuthResult(True)
        encoded = base64.b64encode(answer or b"").decode()
        return AuthResult(False, f"{scheme} {encoded}")

    # ---- message encryption ----------------------------------------------------------------------

    def unwrap(self, body: bytes) -> bytes:
        if self.context is None or not self.authenticated:
            raise ValueError("an encrypted message on a connection that is not authenticated")
        return unwrap_message(self.context, body)

    def wrap(self, message: bytes) -> tuple[str, bytes]:
        if self.context is None:
            raise ValueError("cannot encrypt without a security context")
        return wrap_message(self.context, message)


def unwrap_message(context: spnego.ContextProxy, body: bytes) -> bytes:
    """The SOAP message inside a `multipart/encrypted` WinRM body (one or more encrypted parts)."""
    parts = [part for part in body.split(_BOUNDARY) if part.strip(b"-\r\n")]
    message = b""
    for header_part, payload_part in zip(parts[::2], parts[1::2], strict=True):
        length = _LENGTH.search(header_part)
        if length is None:
            raise ValueError("an encrypted part without its original length")
        payload = payload_part.split(b"application/octet-stream\r\n", 1)[1]
        (header_length,) = struct.unpack("<i", payload[:4])
        header, data = payload[4 : 4 + header_length], payload[4 + header_length :]
        plain = context.unwrap_winrm(header, data)
        if len(plain) != int(length.group(1)):
            raise ValueError("the decrypted length does not match the announced one")
        message += plain
    return message


def wrap_message(context: spnego.ContextProxy, message: bytes) -> tuple[str, bytes]:
    """(Content-Type, body) of a WinRM-encrypted answer."""
    result = context.wrap_winrm(message)
    length = len(message) + result.padding_length
    body = b"\r\n".join(
        [
            _BOUNDARY,
            f"\tContent-Type: {_PROTOCOL}".encode(),
            f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={length}".encode(),
            _BOUNDARY,
            b"\tContent-Type: application/octet-stream",
            struct.pack("<i", len(result.header)) + result.header + result.data + _BOUNDARY + b"--\r\n",
        ]
    )
    return f'multipart/encrypted;protocol="{_PROTOCOL}";boundary="Encrypted Boundary"', body
