"""The Prometheus endpoint, scraped while and after a job runs, tells the same story as the job's status
and as the ARM simulator's request log: jobs by result, step durations, phases in flight, and every
ARM request by RBAC action and status code."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import prometheus_client.parser

from tests.e2e.conftest import World, slow_counting_waagent
from vmgen.domain import azure_actions

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(world: World) -> Samples:
    found: Samples = {}
    for family in prometheus_client.parser.text_string_to_metric_families(world.operator.scrape()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def delta(after: Samples, before: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        labels: value - before.get((n, labels), 0.0)
        for (n, labels), value in after.items()
        if n == name and value - before.get((n, labels), 0.0) != 0
    }


def test_the_metrics_match_the_job_and_the_arm_request_log(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    slow_counting_waagent(vm, seconds=3)
    before = scrape(world)
    started = time.time()
    world.linux_job("measured", vm, host_keys=list(vm.sandbox.host_keys))

    world.wait_for(
        "measured",
        lambda b: b.get("status", {}).get("phase") == "Deprovisioning",
        timeout=60,
        what="phase Deprovisioning",
    )
    during = scrape(world)
    assert during[("vmgen_jobs_in_flight", (("phase", "Deprovisioning"),))] >= 1
    body = world.wait_ready("measured")
    time.sleep(0.5)  # the status patch that finished the job is counted right after the API server took it
    after = scrape(world)

    assert delta(after, before, "vmgen_jobs_total") == {
        (("os", "Linux"), ("reason", "Succeeded"), ("result", "Succeeded")): 1.0
    }
    counted_steps = delta(after, before, "vmgen_step_duration_seconds_count")
    assert counted_steps == {
        (("step", s),): 1.0 for s in ("validate", "deprovision", "shutdown", "generalize")
    }
    deprovision = delta(after, before, "vmgen_step_duration_seconds_sum")[(("step", "deprovision"),)]
    assert deprovision >= 2.0, (
        "the 3 s waagent shows in the deprovision duration (status times are whole seconds)"
    )
    assert (
        body["status"]["steps"]["deprovision"]["finishedAt"]
        >= body["status"]["steps"]["deprovision"]["startedAt"]
    )

    logged = Counter(
        (azure_actions.action_for(r.method, r.path), str(r.status) if r.status is not None else "none")
        for r in world.arm.requests()
        if r.api == "arm" and r.timestamp >= started and r.path.startswith("/subscriptions")
    )
    counted = {
        (dict(labels)["operation"], dict(labels)["code"]): value
        for labels, value in delta(after, before, "vmgen_azure_requests_total").items()
    }
    assert counted == dict(logged), "the operator counted exactly the requests the simulator logged"
    assert counted[("Microsoft.Compute/virtualMachines/deallocate/action", "202")] == 1
    assert counted[("Microsoft.Compute/virtualMachines/generalize/action", "200")] == 1
    budget = [v for (n, labels), v in after.items() if n == "vmgen_azure_remaining_budget"]
    assert budget and all(v >= 0 for v in budget), "the remaining ARM budget is reported"
