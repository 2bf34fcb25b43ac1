"""Leader election over one coordination.k8s.io/v1 Lease: which replica acts, decided purely.

Only the leader runs kopf (and so the per-resource daemons); the others wait. The rules, after
client-go's leaderelection package:
- no Lease yet: create it, holding it;
- we hold it: renew it (every `duration / 3`);
- its holder is empty (a leader that stopped cleanly released it): take it over at once;
- someone else holds it: take it over only once the record has not changed for a whole
  `leaseDurationSeconds` **as measured by our own monotonic clock** since we first saw that record.
  The Lease's `renewTime` is the other machine's wall clock; comparing it with ours would make a clock
  skew of seconds hand leadership to two replicas at once.
A leader that cannot renew within `renew_deadline` (two thirds of the duration) of its last success
stops acting before any standby can take over (the adapter then exits the process). Every write
carries the resourceVersion read, so two standbys racing cannot both win.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Decision", "LeaseRecord", "Seen", "decide", "observe", "renew_deadline"]


class Decision(enum.Enum):
    CREATE = "create"
    RENEW = "renew"
    TAKE_OVER = "take over"
    WAIT = "wait"


@dataclass(frozen=True)
class LeaseRecord:
    """What identifies one version of the Lease's holder record."""

    holder: str | None
    renew_time: str | None
    duration: float
    transitions: int = 0


@dataclass(frozen=True)
class Seen:
    """A record, and when (our monotonic seconds) we first saw it unchanged."""

    record: LeaseRecord
    since: float


def decide(me: str, current: LeaseRecord | None, seen: Seen | None, *, now: float) -> Decision:
    if current is None:
        return Decision.CREATE
    if current.holder == me:
        return Decision.RENEW
    if not current.holder:
        return Decision.TAKE_OVER
    if seen is None or seen.record != current:
        return Decision.WAIT  # a new record: its lease starts now, by our clock
    return Decision.TAKE_OVER if now - seen.since >= current.duration else Decision.WAIT


def observe(current: LeaseRecord | None, seen: Seen | None, *, now: float) -> Seen | None:
    """The `Seen` to keep after reading `current`."""
    if current is None:
        return None
    if seen is not None and seen.record == current:
        return seen
    return Seen(record=current, since=now)


def renew_deadline(duration: float) -> float:
    """Seconds after its last successful renewal a leader gives up: before any standby may take over."""
    return duration * 2 / 3
