"""Leader election (domain/election.py): one replica acts; a standby takes over only after a whole lease
duration without change by its own clock, or at once when the leader released the Lease."""

from __future__ import annotations

import pytest

from vmgen.domain import election
from vmgen.domain.election import Decision, LeaseRecord, Seen

ME, OTHER = "pod-a_1", "pod-b_2"
HELD = LeaseRecord(holder=OTHER, renew_time="t1", duration=15)

ROWS = [
    pytest.param(None, None, 0.0, Decision.CREATE, id="no Lease yet: create it"),
    pytest.param(LeaseRecord(ME, "t1", 15), None, 0.0, Decision.RENEW, id="our own Lease is renewed"),
    pytest.param(
        LeaseRecord(None, "t1", 15), None, 0.0, Decision.TAKE_OVER, id="a released Lease is taken at once"
    ),
    pytest.param(
        HELD, None, 100.0, Decision.WAIT, id="a Lease seen for the first time starts its duration now"
    ),
    pytest.param(HELD, Seen(HELD, 90.0), 100.0, Decision.WAIT, id="a held Lease within its duration waits"),
    pytest.param(
        HELD,
        Seen(HELD, 85.0),
        100.0,
        Decision.TAKE_OVER,
        id="a Lease unchanged for its duration is taken over",
    ),
    pytest.param(
        HELD,
        Seen(LeaseRecord(OTHER, "t0", 15), 0.0),
        100.0,
        Decision.WAIT,
        id="a renewed Lease restarts the wait",
    ),
]


@pytest.mark.parametrize(("current", "seen", "now", "expected"), ROWS)
def test_the_election_decides(
    current: LeaseRecord | None, seen: Seen | None, now: float, expected: Decision
) -> None:
    assert election.decide(ME, current, seen, now=now) is expected


def test_the_observation_keeps_the_first_sight_of_an_unchanged_record() -> None:
    first = election.observe(HELD, None, now=10.0)
    assert first == Seen(HELD, 10.0)
    assert election.observe(HELD, first, now=20.0) == first
    renewed = LeaseRecord(OTHER, "t2", 15)
    assert election.observe(renewed, first, now=30.0) == Seen(renewed, 30.0)


def test_a_leader_gives_up_before_a_standby_may_take_over() -> None:
    assert election.renew_deadline(15) < 15
