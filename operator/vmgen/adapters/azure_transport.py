"""The one aiohttp session an `azure.AzureSession` shares between its clients and its credential.

Why: azure-core given `connection_verify=<a CA file>` builds a new `ssl.SSLContext` for every request,
and aiohttp pools connections by SSLContext identity, so no connection was ever reused: each request
paid a TLS handshake and left an idle connection with a 128 KiB read buffer for 15 s. With 100 jobs in
flight that was most of the operator's memory (docs/benchmarks.md, "Memory per job").
"""

from __future__ import annotations

import ssl

import aiohttp
from azure.core.pipeline.transport._aiohttp import AioHttpTransport  # typed; the package re-exports it lazily

__all__ = ["SharedTransport"]


class SharedTransport(AioHttpTransport):
    """One aiohttp session for every client and the credential of an `AzureSession`.

    Its connector holds the session's SSLContext (so azure-core never passes one per request: every
    request is sent with `connection_verify` left True, which means "the connector's") and at most
    `limit` connections. The clients' and the credential's `close()` leave it open; `shut()` (the
    session's `aclose`, after theirs) closes it. Made by the first request (aiohttp wants a running loop;
    an unreadable CA bundle then fails that request as any TLS failure does, `translate`).
    """

    def __init__(self, ca_bundle: str | None, *, limit: int) -> None:
        super().__init__()
        self._ca_bundle, self._limit = ca_bundle, limit

    async def open(self) -> None:
        if self.session is None:
            if self._has_been_opened:
                raise ValueError("the Azure session was closed; a closed account is never used again")
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=_ssl_context(self._ca_bundle), limit=self._limit),
                trust_env=True,  # HTTPS_PROXY and friends, as azure-core's own session reads them
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,  # azure-core decompresses itself
            )
            self._has_been_opened = True

    async def close(self) -> None:
        """Shared: a client or credential closing does not close the session (`shut` does)."""

    async def shut(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
        self._has_been_opened = True  # a closed session is not opened again


def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The session's one TLS context: the CA bundle, else the system's trust store; always verifying."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
