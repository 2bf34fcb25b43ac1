"""azure-core's ARM polling, with each wait decided by `domain.polling` instead of a fixed interval.

`learned(settings, "deallocate")` (a `LearnedPolling` on the settings' one `polling.Latencies`,
shared by every client of the process) is passed as `polling=` to a `begin_*` call, also when
resuming from a continuation token. Between polls it sleeps for `polling.next_poll(...)` (Retry-After
first, then what operations of that kind took lately); when the operation has ended it tells the
latencies when it was last seen running and first seen done (counted from the poller's creation).

Traps avoided:
- Only the delay is replaced (`_extract_delay`, the one hook azure-core polls through); the status
  links, the final GET and failure handling stay azure-core's own.
- A failed or abandoned operation teaches nothing: only a success is observed.
- The duration learnt is `polling.observed`: between the last answer "still running" and the first
  answer "done" (why not either one alone: domain/polling.py).
- A poller resumed after a restart has not seen the beginning; its (short) duration is one sample of
  a median and moves it little (domain/polling.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from azure.core.pipeline.policies._utils import get_retry_after
from azure.mgmt.core.polling.async_arm_polling import AsyncARMPolling

from vmgen.domain import polling

__all__ = ["LearnedPolling", "learned"]


class Settings(Protocol):
    """What of `azure.AzureSettings` the polling needs."""

    @property
    def latencies(self) -> polling.Latencies: ...
    @property
    def poll_interval(self) -> float: ...
    @property
    def arm_endpoint(self) -> str: ...


def learned(settings: Settings, kind: str) -> LearnedPolling:
    """The polling method for one `begin_*` call of this kind ("deallocate", "runCommand", "start")."""
    return LearnedPolling(
        settings.latencies, kind, interval=settings.poll_interval, endpoint=settings.arm_endpoint
    )


class LearnedPolling(AsyncARMPolling):
    def __init__(
        self,
        latencies: polling.Latencies,
        kind: str,
        *,
        interval: float,
        endpoint: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(timeout=interval, path_format_arguments={"endpoint": endpoint})
        self._latencies = latencies
        self._kind = kind
        self._clock = clock
        self._began = clock()
        self._running: float | None = None  # seconds after `_began` of the last answer "still running"

    def _extract_delay(self) -> float:
        # azure-core asks for the delay right after each answer that says the operation is running
        self._running = elapsed = self._clock() - self._began
        return polling.next_poll(
            elapsed=elapsed,
            typical=self._latencies.typical(self._kind),
            retry_after=get_retry_after(self._pipeline_response),
            interval=float(self._timeout),
        )

    async def run(self) -> None:
        await super().run()
        done = self._clock() - self._began
        self._latencies.observe(self._kind, polling.observed(running=self._running, done=done))
