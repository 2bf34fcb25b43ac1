"""When to look at a long-running Azure operation again: follow what Azure says and what it did before.

A fixed poll interval makes every operation end, on average, half an interval late and up to a whole
one: with the shipped 5 s and a deallocate of 15 s, the job learns of the end at 15-20 s. Azure Compute
sends no Retry-After on its operations, but operations of one kind take about as long as the last few
did. So the next poll is (pure, decided here; the adapter only sleeps):
- after Retry-After when the answer has one (Azure's word wins, as in azure-core),
- else, when nothing of that kind has been seen to end yet, after the configured interval,
- else at the interval until shortly before the typical duration (`EARLY_SHARE` of it), then every
  `TAIL_SHARE` of it, the step growing by `TAIL_GROWTH` of the time already spent in that tail (never
  more often than `FLOOR_SECONDS`, never less often than the interval).
The typical duration is the median of the last `REMEMBERED` durations seen for the kind; each duration
is `observed(...)`: the middle of the last answer "still running" and the first answer "done".

Traps avoided:
- Learning when the end was *seen* drifts upwards: each estimate is the true duration plus the last
  one's lateness, and the median keeps it there (a 7.5 s Run Command was seen 1.1 s late for ever).
  Learning the last "running" answer instead errs low by up to a whole interval the first time, and a
  tail of 2 % steps from there cost 30 polls, enough to empty the VM's GetOperation bucket (the Pacer
  then held every request for 4 s). The middle of the two errs by at most half their distance, which
  shrinks to half a tail step from the second operation on.
- A tail that started too early must not become a flood: its step grows with the time spent in it, so
  an estimate that is wrong by a factor costs a few polls more, not a poll every 2 % until the end.
- The median, not the mean: one operation resumed after a restart (seen for a moment only) or one
  that hung for minutes moves it little.
- A poll is never later than the configured interval: a stale estimate costs at most what a fixed
  interval would have cost.
"""

from __future__ import annotations

import statistics
from collections import deque

__all__ = [
    "EARLY_SHARE",
    "FLOOR_SECONDS",
    "REMEMBERED",
    "TAIL_GROWTH",
    "TAIL_SHARE",
    "Latencies",
    "next_poll",
    "observed",
]

EARLY_SHARE = 0.95
"""The tail of quick polls starts at this share of the typical duration."""
TAIL_SHARE = 0.02
"""In the tail, one poll every this share of the typical duration at first."""
TAIL_GROWTH = 0.25
"""In the tail, the step is at least this share of the time already spent in the tail."""
FLOOR_SECONDS = 0.1
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
    return min(interval, max(FLOOR_SECONDS, TAIL_SHARE * typical, TAIL_GROWTH * (elapsed - early)))


def observed(*, running: float | None, done: float) -> float:
    """The duration to learn from an operation last seen running `running` seconds after its start
    (None: never) and first seen done at `done`: the middle of the two, else `done`."""
    return done if running is None else (running + done) / 2


class Latencies:
    """The durations seen lately, per kind of operation ("deallocate", "runCommand"), in one process."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}

    def observe(self, kind: str, seconds: float) -> None:
        self._seen.setdefault(kind, deque(maxlen=REMEMBERED)).append(max(0.0, seconds))

    def typical(self, kind: str) -> float | None:
        seen = self._seen.get(kind)
        return statistics.median(seen) if seen else None
