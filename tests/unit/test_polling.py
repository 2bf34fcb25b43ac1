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
            pytest.param(10.0, 15.0, None, 3.5, id="it_wakes_shortly_before_the_typical_end"),
            pytest.param(7.0, 7.5, None, 0.25, id="once_the_typical_end_is_near_it_polls_at_the_floor"),
            pytest.param(14.0, 15.0, None, 0.45, id="past_the_early_mark_it_polls_every_few_percent"),
            pytest.param(300.0, 15.0, None, 0.45, id="an_operation_far_past_its_typical_end_keeps_the_tail"),
            pytest.param(0.0, 400.0, None, 5.0, id="a_long_typical_duration_still_polls_every_interval"),
            pytest.param(1.0, 0.5, None, 0.25, id="a_sub_second_kind_never_becomes_a_busy_loop"),
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
