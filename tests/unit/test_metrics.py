"""What the operator counts for Prometheus: job results, step durations, phases in flight, ARM requests
(adapters/metrics.py, fed by the stored status through domain/telemetry.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import prometheus_client.parser

from tests.unit import fakes
from tests.unit.test_workflow import World
from vmgen.adapters import metrics
from vmgen.domain import errors, ports
from vmgen_testbed.paths import REPO_ROOT


class CountedWorld(World):
    def __init__(self, **kwargs: Any) -> None:
        self.metrics = fakes.FakeMetrics()
        super().__init__(**kwargs)

    def wrap(self, writer: fakes.FakeStatusWriter) -> ports.StatusWriter:
        return metrics.CountingStatusWriter(
            writer, self.metrics, resource="images/web-golden", stored=writer.body
        )


def samples(registry: Any, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = prometheus_client.generate_latest(registry).decode()
    found = {}
    for family in prometheus_client.parser.text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


class TestJobsAndSteps:
    async def test_a_finished_job_is_counted_once_with_each_step_duration(self) -> None:
        world = CountedWorld()

        await world.run()
        world.restart()  # a new process reading the finished status counts nothing again
        await world.run()

        assert world.metrics.jobs == [("Succeeded", "Linux", "Succeeded")]
        assert [step for step, _ in world.metrics.steps] == [
            "validate",
            "deprovision",
            "shutdown",
            "generalize",
        ]
        assert all(seconds >= 0 for _, seconds in world.metrics.steps)
        assert world.metrics.phases == {}, "a finished job is no longer in flight"

    async def test_a_failed_job_is_counted_with_its_reason(self) -> None:
        world = CountedWorld(azure={})  # the operator identity, refused by the default policy

        await world.run()

        assert world.metrics.jobs == [("Failed", "", "OperatorIdentityNotAllowed")]

    async def test_a_job_in_progress_is_in_flight_in_its_phase(self) -> None:
        world = CountedWorld()

        await world.step()

        assert world.metrics.phases == {"images/web-golden": world.status["phase"]}


class TestGuestConnections:
    async def test_a_refused_guest_connection_is_counted_once_per_retry(self) -> None:
        world = CountedWorld()
        world.deprovisioner.faults.add(
            "deprovision", errors.GuestUnreachable("connection refused"), errors.GuestUnreachable("reset")
        )

        await world.run()

        assert world.metrics.guest_errors == ["ssh", "ssh"]
        assert world.status["phase"] == "Succeeded"


class TestPrometheus:
    def test_phases_in_flight_move_between_gauges(self) -> None:
        counted = metrics.PrometheusMetrics()
        counted.in_flight("a/one", "Validating")
        counted.in_flight("a/two", "Validating")
        counted.in_flight("a/one", "Deprovisioning")
        counted.in_flight("a/two", None)

        assert samples(counted.registry, "vmgen_jobs_in_flight") == {
            (("phase", "Validating"),): 0.0,
            (("phase", "Deprovisioning"),): 1.0,
        }

    def test_arm_answers_are_counted_by_action_and_code_with_the_lowest_remaining_budget(self) -> None:
        counted = metrics.PrometheusMetrics()
        vm = "https://arm/subscriptions/ABC/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v"
        headers = {
            "x-ms-ratelimit-remaining-subscription-reads": "11999",
            "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/GetVM3Min;238,"
            "Microsoft.Compute/GetVM30Min;1185",
        }
        counted.azure_answered(method="GET", url=vm, code=200, headers=headers)
        counted.azure_answered(method="POST", url=vm + "/deallocate", code=429, headers={})
        counted.azure_answered(method="POST", url=vm + "/deallocate", code=None, headers=None)

        assert samples(counted.registry, "vmgen_azure_requests_total") == {
            (("code", "200"), ("operation", "Microsoft.Compute/virtualMachines/read")): 1.0,
            (("code", "429"), ("operation", "Microsoft.Compute/virtualMachines/deallocate/action")): 1.0,
            (("code", "none"), ("operation", "Microsoft.Compute/virtualMachines/deallocate/action")): 1.0,
        }
        assert samples(counted.registry, "vmgen_azure_throttled_total") == {(): 1.0}
        assert samples(counted.registry, "vmgen_azure_remaining_budget") == {
            (("subscription", "abc"),): 238.0
        }


def test_the_grafana_dashboard_queries_only_metrics_the_operator_serves() -> None:
    counted = metrics.PrometheusMetrics()
    counted.job_finished(result="Succeeded", os="Linux", reason="Succeeded")
    counted.step_finished(step="validate", seconds=1)
    counted.in_flight("a/b", "Validating")
    counted.azure_answered(method="GET", url="https://arm/subscriptions/s/x", code=200, headers={})
    counted.azure_answered(method="GET", url="https://arm/subscriptions/s/x", code=429, headers={})
    counted.azure_answered(
        method="GET",
        url="https://arm/subscriptions/s/x",
        code=200,
        headers={"x-ms-ratelimit-remaining-x": "1"},
    )
    counted.guest_connection_error(transport="ssh")
    served = {
        sample.name
        for family in prometheus_client.parser.text_string_to_metric_families(
            prometheus_client.generate_latest(counted.registry).decode()
        )
        for sample in family.samples
    }
    dashboard = json.loads((REPO_ROOT / "docs/grafana-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bvmgen_[a-z_]+", target["expr"])
    }

    assert queried, "the dashboard queries vmgen metrics"
    assert queried <= served, f"the dashboard queries metrics nobody serves: {sorted(queried - served)}"
    assert {"vmgen_jobs_total", "vmgen_azure_requests_total", "vmgen_step_duration_seconds_bucket"} <= queried
