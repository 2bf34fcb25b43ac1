"""A 403 from the Kubernetes API: a restarted API server refuses everyone until its RBAC caches have
synced (seen in tests/e2e/test_control_plane_faults.py right after the outage), so one refusal is
retried; a refusal that lasts is a real RBAC gap and ends the job Failed with KubernetesForbidden.
While the API server does not answer at all, passes are retried at most half a minute apart."""

from __future__ import annotations

import pytest

from tests.unit.test_workflow import World
from vmgen.domain import errors, retry
from vmgen.domain.reasons import Reason


def forbidden() -> errors.KubernetesForbidden:
    return errors.KubernetesForbidden(
        "The Kubernetes API refused to let the operator get Namespace images (403)."
    )


class TestTheDecision:
    @pytest.mark.parametrize("retries", range(retry.FORBIDDEN_RETRIES))
    def test_a_refusal_with_fewer_retries_in_a_row_than_the_bound_is_retried(self, retries: int) -> None:
        assert not retry.forbidden_is_final(retries)

    def test_a_refusal_after_the_bound_of_retries_in_a_row_is_final(self) -> None:
        assert retry.forbidden_is_final(retry.FORBIDDEN_RETRIES)

    def test_the_refusals_before_giving_up_span_about_half_a_minute(self) -> None:
        waited = sum(retry.backoff(n) for n in range(1, retry.FORBIDDEN_RETRIES + 1))
        assert 15 <= waited <= 60

    @pytest.mark.parametrize(("failures", "delay"), [(1, 1.0), (5, 16.0), (6, 30.0), (20, 30.0)])
    def test_an_api_server_that_does_not_answer_is_tried_again_at_most_30_seconds_apart(
        self, failures: int, delay: float
    ) -> None:
        assert retry.kubernetes_backoff(failures) == delay


class TestInTheWorkflow:
    async def test_a_refusal_right_after_an_api_server_start_is_retried_and_the_job_ends_ready(self) -> None:
        world = World()
        world.policy.faults.add("rules", forbidden(), forbidden())

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert Reason.KUBERNETES_FORBIDDEN in world.events.reasons("Warning")

    async def test_a_refusal_that_lasts_ends_the_job_failed_with_kubernetes_forbidden(self) -> None:
        world = World()
        world.policy.faults.add("rules", *(forbidden() for _ in range(retry.FORBIDDEN_RETRIES + 1)))

        await world.run()

        assert world.status["phase"] == "Failed"
        assert world.condition("Ready")["reason"] == Reason.KUBERNETES_FORBIDDEN
        assert "403" in world.condition("Ready")["message"]
        assert world.azure.operations() == [], "a refused job never reached Azure"
