"""Azure clients shared by every job: one `AzureAccount` per credential, for as long as a job uses it.

Before, each VMGeneralization opened its own account: its own credential (and token cache), its own
Compute and Network clients, each with its own aiohttp session, connection pool and TLS context (the CA
bundle parsed again), about a megabyte per job in flight. Jobs that use the same credential (the
operator's own identity, or the same Secret's service principal) now share one account, and through it
one client per subscription (`azure.AzureSession` keeps them per subscription), so per (credential,
subscription) there is one set of clients, one token and one TLS context. Every client carries a
`pacing.PacingPolicy` on the one process-wide `pacing.Pacer`, so they all spend the same budget.

Traps avoided:
- Reference-counted, not closed by a job: the account is closed when the last job using it lets go
  (a job closes its lease when it stops or its Secret's credentials change), so a job's end never
  pulls clients from under another job's in-flight request.
- Keyed by the credentials' values (tenant, client id and secret): a rotated Secret gets a new account
  and the old one closes once its last job lets go; the key lives only in memory, never in a log.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from vmgen.adapters import azure, azure_account, pacing
from vmgen.domain import ports

__all__ = ["SharedAccounts"]


@dataclass
class _Entry:
    account: azure_account.AzureAccount
    users: int = 0


class SharedAccounts:
    """`ports.ComputeFactory`: `async with shared(credentials) as compute` lends the shared account."""

    def __init__(self, settings: azure.AzureSettings, pacer: pacing.Pacer) -> None:
        self._settings = replace(settings, per_retry_policies=(*settings.per_retry_policies, pacer.policy))
        self.pacer = pacer
        self._entries: dict[ports.AzureCredentials | None, _Entry] = {}

    @property
    def open_accounts(self) -> int:
        return len(self._entries)

    def __call__(
        self, credentials: ports.AzureCredentials | None
    ) -> contextlib.AbstractAsyncContextManager[ports.Compute]:
        return self._lease(credentials)

    @contextlib.asynccontextmanager
    async def _lease(self, credentials: ports.AzureCredentials | None) -> AsyncIterator[ports.Compute]:
        entry = self._entries.get(credentials)
        if entry is None:
            entry = self._entries[credentials] = _Entry(
                azure_account.AzureAccount(self._settings, credentials)
            )
        entry.users += 1
        try:
            yield entry.account
        finally:
            entry.users -= 1
            if entry.users == 0 and self._entries.get(credentials) is entry:
                del self._entries[credentials]
                await entry.account.aclose()
