"""When to look at a long-running Azure operation again: follow what Azure says and what it did before.

A fixed poll interval makes every operation end, on average, half an interval late and up to a whole
one: with the shipped 5 s and a deallocate of 15 s, the job learns of the end at 15-20 s. Azure Compute
sends no Retry-After on its operations, but operations of one kind take about as long as the last few
did. So the next poll is (pure, decided here; the adapter only sleeps):
- after Retry-After when the answer has one (Azure's word wins, as in azure-core),
- else, when nothing of that kind has been seen to end yet, after the configured interval,
- else at the interval until shortly before the typical duration (`EARLY_SHARE` of it), then every
  `TAIL_SHARE` of it (never more often than `FLOOR_SECONDS`, never less often than the interval).
The typical duration is the median of the last `REMEMBERED` durations seen for the kind.

Traps avoided:
- A duration is observed only when the operator saw the end, so it is the true one rounded up by at
  most a tail step; starting the tail before the typical end (not at it) lets the estimate come down
  again when Azure gets faster, instead of sticking to an old, long one.
- The median, not the mean: one operation resumed after a restart (seen for a moment only) or one
  that hung for minutes moves it little.
- A poll is never later than the configured interval: a stale estimate costs at most what a fixed
  interval would have cost.
"""

from __future__ import annotations

import statistics
from collections import deque

__all__ = ["EARLY_SHARE", "FLOOR_SECONDS", "REMEMBERED", "TAIL_SHARE", "Latencies", "next_poll"]

EARLY_SHARE = 0.9
"""The tail of quick polls starts at this share of the typical duration."""
TAIL_SHARE = 0.03
"""In the tail, one poll every this share of the typical duration."""
FLOOR_SECONDS = 0.25
"""Never poll more often than this (a typical duration of a second must not become a busy loop)."""
REMEMBERED = 16


def next_poll(*, elapsed: float, typical: float | None, retry_after: float | None, interval: float) -> float:
    """Seconds until the next poll of an operation begun `elapsed` seconds ago."""
    if retry_after is not None and retry_after > 0:
        return retry_after
    if typical is None:
        return interval
    early = EARLY_SHARE * typical
    if elapsed < early:
        return min(interval, max(FLOOR_SECONDS, early - elapsed))
    return min(interval, max(FLOOR_SECONDS, TAIL_SHARE * typical))


class Latencies:
    """The durations seen lately, per kind of operation ("deallocate", "runCommand"), in one process."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}

    def observe(self, kind: str, seconds: float) -> None:
        self._seen.setdefault(kind, deque(maxlen=REMEMBERED)).append(max(0.0, seconds))

    def typical(self, kind: str) -> float | None:
        seen = self._seen.get(kind)
        return statistics.median(seen) if seen else None
