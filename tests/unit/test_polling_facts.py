"""The edges of the poll schedule (domain/polling.py) that the behaviour table does not reach: a Retry-After
below a second, the very moment the tail begins, and durations below a second or below zero."""

from __future__ import annotations

import pytest

from vmgen.domain import polling


class TestTheEdgesOfTheNextPoll:
    @pytest.mark.parametrize(
        ("elapsed", "retry_after", "expected"),
        [
            pytest.param(0.0, 0.5, 0.5, id="a_retry_after_below_a_second_is_still_azures_word"),
            pytest.param(9.499999, None, 0.1, id="a_microsecond_before_the_early_mark_it_waits_for_it"),
            pytest.param(9.5, None, 0.2, id="exactly_at_the_early_mark_the_tail_begins"),
        ],
    )
    def test_the_wait(self, elapsed: float, retry_after: float | None, expected: float) -> None:
        # typical 10 s: the early mark is 9.5 s exactly and a tail step is 0.2 s, both above the floor.
        got = polling.next_poll(elapsed=elapsed, typical=10.0, retry_after=retry_after, interval=5.0)
        assert got == pytest.approx(expected, abs=1e-9)


class TestTheEdgesOfLearntDurations:
    @pytest.mark.parametrize(
        ("seconds", "expected"),
        [
            pytest.param(0.5, 0.5, id="a_sub_second_duration_is_remembered_as_it_was"),
            pytest.param(-2.0, 0.0, id="a_negative_duration_after_a_clock_step_counts_as_zero"),
        ],
    )
    def test_the_remembered_duration(self, seconds: float, expected: float) -> None:
        latencies = polling.Latencies()
        latencies.observe("deallocate", seconds)
        assert latencies.typical("deallocate") == expected
