"""Prometheus metrics: `ports.Metrics` for the workflow, an azure-core policy for ARM requests, and the
HTTP endpoint (`vmgen run --metrics-port`).

| metric | type | labels | counted |
| --- | --- | --- | --- |
| vmgen_jobs_total | counter | result, os, reason | a resource reached Succeeded/Failed in this process |
| vmgen_step_duration_seconds | histogram | step | a step checkpointed (startedAt -> finishedAt) |
| vmgen_jobs_in_flight | gauge | phase | resources this process drives, by phase |
| vmgen_azure_requests_total | counter | operation, code | every ARM request attempt (retries too) |
| vmgen_azure_throttled_total | counter | | ARM answered 429 |
| vmgen_azure_remaining_budget | gauge | subscription | lowest x-ms-ratelimit-remaining-* value seen last |
| vmgen_guest_connection_errors_total | counter | transport | SSH/WinRM connect failed before anything ran |

Traps avoided:
- The ARM policy sits after azure-core's retry policy (`per_retry_policies`), so each attempt is counted
  once, as Azure (and the testbed's request log) sees it; a request that got no answer counts with
  code "none".
- `operation` is the RBAC action (`domain/azure_actions.py`), never the URL: URLs carry VM names and
  operation ids, and a label per VM would grow without bound.
- A registry per process object (not prometheus_client's global one), so tests can build several; the
  process and platform collectors are added to it so the usual `process_*` series stay.
- Metrics never raise into the workflow: a metrics bug must not stop a job.
- Job, step and phase metrics come from the stored status (`CountingStatusWriter` + domain/telemetry.py):
  every code path that finishes a step or a job writes status, so none can be missed or counted twice.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any

import prometheus_client
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

from vmgen.domain import azure_actions, ports, telemetry
from vmgen.domain.status import Status

__all__ = ["AzureRequestCounter", "CountingStatusWriter", "PrometheusMetrics", "serve"]

_log = logging.getLogger("vmgen.metrics")
_STEP_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_SUBSCRIPTION = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)
_NUMBER = re.compile(r"(?:^|[;,\s])(\d+)(?=$|[,\s])")


class PrometheusMetrics:
    """`ports.Metrics` plus the Azure counters, all in one registry."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        prometheus_client.ProcessCollector(registry=self.registry)
        prometheus_client.PlatformCollector(registry=self.registry)
        r = self.registry
        self.jobs = prometheus_client.Counter(
            "vmgen_jobs",
            "VMGeneralizations finished, by result, OS and reason",
            ["result", "os", "reason"],
            registry=r,
        )
        self.step_duration = prometheus_client.Histogram(
            "vmgen_step_duration_seconds",
            "Step durations, startedAt to finishedAt",
            ["step"],
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.jobs_in_flight = prometheus_client.Gauge(
            "vmgen_jobs_in_flight",
            "Unfinished VMGeneralizations this process drives, by phase",
            ["phase"],
            registry=r,
        )
        self.azure_requests = prometheus_client.Counter(
            "vmgen_azure_requests",
            "ARM request attempts, by RBAC action and HTTP status",
            ["operation", "code"],
            registry=r,
        )
        self.azure_throttled = prometheus_client.Counter(
            "vmgen_azure_throttled", "ARM requests answered 429", registry=r
        )
        self.azure_remaining = prometheus_client.Gauge(
            "vmgen_azure_remaining_budget",
            "Lowest x-ms-ratelimit-remaining-* value in the last ARM answer",
            ["subscription"],
            registry=r,
        )
        self.guest_errors = prometheus_client.Counter(
            "vmgen_guest_connection_errors",
            "Guest connections that failed before anything ran",
            ["transport"],
            registry=r,
        )
        self._phases: dict[str, str] = {}

    # ports.Metrics
    def job_finished(self, *, result: str, os: str, reason: str) -> None:
        self.jobs.labels(result=result, os=os or "Unknown", reason=reason).inc()

    def step_finished(self, *, step: str, seconds: float) -> None:
        self.step_duration.labels(step=step).observe(seconds)

    def in_flight(self, resource: str, phase: str | None) -> None:
        old = self._phases.pop(resource, None)
        if phase is not None:
            self._phases[resource] = phase
        if old == phase:
            return
        if old is not None:
            self.jobs_in_flight.labels(phase=old).dec()
        if phase is not None:
            self.jobs_in_flight.labels(phase=phase).inc()

    def guest_connection_error(self, *, transport: str) -> None:
        self.guest_errors.labels(transport=transport).inc()

    # the Azure policy's side
    def azure_answered(self, *, method: str, url: str, code: int | None, headers: Any) -> None:
        self.azure_requests.labels(
            operation=azure_actions.action_for(method, url), code=str(code) if code is not None else "none"
        ).inc()
        if code == 429:
            self.azure_throttled.inc()
        remaining = _remaining(headers)
        subscription = _SUBSCRIPTION.search(url)
        if remaining is not None and subscription is not None:
            self.azure_remaining.labels(subscription=subscription.group(1).lower()).set(remaining)

    def azure_policy(self) -> AzureRequestCounter:
        return AzureRequestCounter(self)


class AzureRequestCounter(SansIOHTTPPolicy[Any, Any]):
    """azure-core policy placed after the retry policy: counts every ARM attempt and its answer."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        try:
            http = response.http_response
            self._metrics.azure_answered(
                method=request.http_request.method,
                url=request.http_request.url,
                code=http.status_code,
                headers=http.headers,
            )
        except Exception:  # never let counting break a request
            _log.exception("Counting an ARM response failed")

    def on_exception(self, request: PipelineRequest[Any]) -> None:
        try:
            self._metrics.azure_answered(
                method=request.http_request.method, url=request.http_request.url, code=None, headers=None
            )
        except Exception:
            _log.exception("Counting an ARM request without answer failed")


def _remaining(headers: Any) -> float | None:
    """The lowest number in any x-ms-ratelimit-remaining-* header (subscription reads/writes, or the
    resource policies' `Microsoft.Compute/GetVM3Min;238,...`), None when there is none."""
    if not headers:
        return None
    values = []
    for name, value in headers.items():
        if str(name).lower().startswith("x-ms-ratelimit-remaining-"):
            values += [int(n) for n in _NUMBER.findall(str(value))]
    return float(min(values)) if values else None


def serve(metrics: PrometheusMetrics, port: int) -> None:
    """Serve /metrics on every address at `port` from a daemon thread (the scrape never waits on the loop)."""
    prometheus_client.start_http_server(port, registry=metrics.registry)


class CountingStatusWriter:
    """`ports.StatusWriter` that tells `ports.Metrics` what each stored status change means.

    Wrapping the writer (rather than instrumenting the workflow and every step) counts each transition
    where it becomes true, once: only after the API server took the patch."""

    def __init__(
        self,
        inner: ports.StatusWriter,
        metrics: ports.Metrics,
        *,
        resource: str,
        stored: Mapping[str, Any] | None,
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._resource = resource
        self._body: dict[str, Any] = copy.deepcopy(dict(stored or {}))
        self._track(Status.from_body(self._body))

    async def patch_status(self, patch: Mapping[str, Any]) -> None:
        await self._inner.patch_status(patch)
        before = Status.from_body(self._body)
        self._body = _apply(self._body, patch)
        after = Status.from_body(self._body)
        try:
            found = telemetry.changes(before, after)
            for step in found.finished:
                self._metrics.step_finished(step=step.step.value, seconds=step.seconds)
            if found.ended is not None:
                self._metrics.job_finished(
                    result=found.ended.result, os=found.ended.os, reason=found.ended.reason
                )
            if found.guest_unreachable:
                windows = after.vm is not None and after.vm.os_type == "Windows"
                self._metrics.guest_connection_error(transport="winrm" if windows else "ssh")
            self._track(after)
        except Exception:  # never let counting fail a stored status
            _log.exception("Counting a status change failed")

    def stop(self) -> None:
        """The daemon stopped driving the resource (deleted, or the operator stops)."""
        self._metrics.in_flight(self._resource, None)

    def _track(self, status: Status) -> None:
        self._metrics.in_flight(self._resource, None if status.phase.terminal else status.phase.value)


def _apply(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386: what the API server's status holds after a merge patch."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            before = result.get(key)
            result[key] = _apply(before if isinstance(before, Mapping) else {}, value)
        else:
            result[key] = value
    return result
