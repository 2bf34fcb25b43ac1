"""When the operator looks at a long-running operation again (domain/polling.py)."""

from __future__ import annotations

import pytest

from vmgen.domain import polling


class TestTheNextPoll:
    @pytest.mark.parametrize(
        ("elapsed", "typical", "retry_after", "expected"),
        [
            pytest.param(0.0, 15.0, 2.0, 2.0, id="retry_after_from_azure_wins_over_what_was_learnt"),
            pytest.param(0.0, None, None, 5.0, id="an_operation_of_a_kind_never_seen_waits_the_interval"),
            pytest.param(0.0, 15.0, None, 5.0, id="long_before_the_typical_end_it_waits_the_interval"),
            pytest.param(10.0, 15.0, None, 4.25, id="it_wakes_shortly_before_the_typical_end"),
            pytest.param(3.8, 4.0, None, 0.1, id="once_the_typical_end_is_near_it_polls_at_the_floor"),
            pytest.param(14.5, 15.0, None, 0.3, id="past_the_early_mark_it_polls_every_few_percent"),
            pytest.param(16.25, 15.0, None, 0.5, id="a_tail_begun_too_early_grows_its_step"),
            pytest.param(300.0, 15.0, None, 5.0, id="far_past_its_typical_end_it_is_back_at_the_interval"),
            pytest.param(0.0, 400.0, None, 5.0, id="a_long_typical_duration_still_polls_every_interval"),
            pytest.param(0.5, 0.5, None, 0.1, id="a_sub_second_kind_never_becomes_a_busy_loop"),
            pytest.param(0.0, 15.0, 0.0, 5.0, id="retry_after_zero_is_no_advice"),
        ],
    )
    def test_the_wait(
        self, elapsed: float, typical: float | None, retry_after: float | None, expected: float
    ) -> None:
        got = polling.next_poll(elapsed=elapsed, typical=typical, retry_after=retry_after, interval=5.0)
        assert got == pytest.approx(expected)

    def test_a_learnt_operation_is_seen_ending_within_a_tail_step_of_its_end(self) -> None:
        typical, end, elapsed = 15.0, 15.2, 0.0
        while elapsed < end:
            elapsed += polling.next_poll(elapsed=elapsed, typical=typical, retry_after=None, interval=5.0)
        assert end <= elapsed <= end + polling.TAIL_SHARE * typical + 1e-9

    def test_an_estimate_far_too_short_costs_a_few_polls_more_not_a_flood(self) -> None:
        # learnt 5 s (an interval's error), the operation takes 7.5 s: steps of 2 % (0.1 s) from the early
        # mark at 4.75 s would be 28 polls
        typical, end, elapsed, polls = 5.0, 7.5, 0.0, 0
        while elapsed < end:
            elapsed += polling.next_poll(elapsed=elapsed, typical=typical, retry_after=None, interval=5.0)
            polls += 1
        assert polls <= 14
        assert elapsed - end <= polling.TAIL_GROWTH * (end - polling.EARLY_SHARE * typical)


class TestTheDurationObserved:
    @pytest.mark.parametrize(
        ("running", "done", "expected"),
        [
            pytest.param(5.0, 10.0, 7.5, id="between_the_last_running_and_the_first_done_answer"),
            pytest.param(7.4, 7.5, 7.45, id="a_tail_step_apart_it_is_within_half_a_step"),
            pytest.param(None, 0.3, 0.3, id="never_seen_running_it_is_when_it_was_seen_done"),
        ],
    )
    def test_the_duration(self, running: float | None, done: float, expected: float) -> None:
        assert polling.observed(running=running, done=done) == pytest.approx(expected)


class TestLearntDurations:
    def test_nothing_seen_means_no_typical_duration(self) -> None:
        assert polling.Latencies().typical("deallocate") is None

    def test_the_typical_duration_is_the_median_of_the_kind(self) -> None:
        latencies = polling.Latencies()
        for seconds in (14.0, 15.0, 300.0):
            latencies.observe("deallocate", seconds)
        latencies.observe("runCommand", 7.5)
        assert latencies.typical("deallocate") == 15.0
        assert latencies.typical("runCommand") == 7.5

    def test_only_the_latest_durations_count(self) -> None:
        latencies = polling.Latencies()
        for _ in range(polling.REMEMBERED):
            latencies.observe("deallocate", 60.0)
        for _ in range(polling.REMEMBERED):
            latencies.observe("deallocate", 15.0)
        assert latencies.typical("deallocate") == 15.0
