"""The chart's high-availability and metrics values, rendered by the pinned helm: more than one replica
rolls and keeps a PodDisruptionBudget, the metrics port reaches the container, a Service and (optionally)
a ServiceMonitor, and nothing of it appears while the values leave it off. The Grafana dashboard in docs/
charts exactly the metrics the operator documents."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from vmgen_testbed.helm import render_chart
from vmgen_testbed.paths import REPO_ROOT

METRICS = {
    "vmgen_jobs_total": {"result", "os", "reason"},
    "vmgen_step_duration_seconds": {"step"},
    "vmgen_jobs_in_flight": {"phase"},
    "vmgen_azure_requests_total": {"operation", "code"},
    "vmgen_azure_throttled_total": set(),
    "vmgen_azure_remaining_budget": {"subscription"},
    "vmgen_guest_connection_errors_total": {"transport"},
}
"""The operator's metric names and labels (docs/operations.md)."""


def _kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {doc["kind"] for doc in objects}


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in objects if doc["kind"] == kind]
    return found


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


class TestHighAvailability:
    def test_more_than_one_replica_rolls_one_new_pod_in_before_an_old_one_goes(self) -> None:
        deployment = _one(
            render_chart(release="vmgen", namespace="ops", values=["--set", "replicas=2"]), "Deployment"
        )

        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }

    def test_more_than_one_replica_gets_a_disruption_budget_over_the_operator_pods(self) -> None:
        objects = render_chart(release="vmgen", namespace="ops", values=["--set", "replicas=3"])
        budget, deployment = _one(objects, "PodDisruptionBudget"), _one(objects, "Deployment")

        assert budget["metadata"]["namespace"] == "ops"
        assert budget["spec"]["minAvailable"] == 1
        assert budget["spec"]["selector"] == deployment["spec"]["selector"]

    def test_the_release_namespace_grants_the_leases_leader_election_needs(self) -> None:
        objects = render_chart(release="vmgen", namespace="ops", values=["--set", "replicas=2"])
        (role,) = [
            doc for doc in objects if doc["kind"] == "Role" and doc["metadata"]["name"].endswith("-leases")
        ]

        assert role["metadata"]["namespace"] == "ops"
        assert role["rules"] == [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "create", "update", "delete"],
            }
        ]


class TestMetrics:
    def test_metrics_stay_off_by_default(self) -> None:
        objects = render_chart(release="vmgen", namespace="ops")
        container = _container(objects)

        assert not [arg for arg in container["args"] if arg.startswith("--metrics-port")]
        assert [port["name"] for port in container["ports"]] == ["health"]
        assert "Service" not in _kinds(objects)
        assert "ServiceMonitor" not in _kinds(objects)

    def test_enabled_metrics_pass_the_port_and_expose_it_through_a_service(self) -> None:
        objects = render_chart(release="vmgen", namespace="ops", values=["--set", "metrics.enabled=true"])
        container, service = _container(objects), _one(objects, "Service")

        assert "--metrics-port=8080" in container["args"]
        assert {"name": "metrics", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
        assert service["metadata"]["name"] == "vmgen-metrics"
        assert service["spec"]["ports"] == [
            {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
        ]
        pod_labels = _one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()

    def test_another_metrics_port_moves_the_argument_the_container_port_and_the_service(self) -> None:
        objects = render_chart(
            release="vmgen",
            namespace="ops",
            values=["--set", "metrics.enabled=true", "--set", "metrics.port=9400"],
        )

        assert "--metrics-port=9400" in _container(objects)["args"]
        assert _one(objects, "Service")["spec"]["ports"][0]["port"] == 9400

    def test_a_service_monitor_selects_the_metrics_service_and_carries_prometheus_labels(self) -> None:
        objects = render_chart(
            release="vmgen", namespace="ops",
            values=["--set", "metrics.enabled=true", "--set", "metrics.serviceMonitor.enabled=true",
                    "--set", "metrics.serviceMonitor.labels.release=kube-prometheus-stack"],
        )  # fmt: skip
        monitor, service = _one(objects, "ServiceMonitor"), _one(objects, "Service")

        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}
        assert monitor["spec"]["endpoints"] == [
            {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
        ]

    def test_a_service_monitor_without_metrics_is_refused(self) -> None:
        with pytest.raises(AssertionError, match=r"metrics\.serviceMonitor\.enabled needs metrics\.enabled"):
            render_chart(
                release="vmgen", namespace="ops", values=["--set", "metrics.serviceMonitor.enabled=true"]
            )

    def test_a_metrics_port_equal_to_the_health_port_is_refused(self) -> None:
        values = ["--set", "metrics.enabled=true", "--set", "metrics.port=8081"]
        with pytest.raises(AssertionError, match=r"metrics\.port and operator\.healthPort must differ"):
            render_chart(release="vmgen", namespace="ops", values=values)


class TestTheGrafanaDashboard:
    @staticmethod
    def _expressions() -> list[str]:
        dashboard = json.loads((REPO_ROOT / "docs" / "grafana-dashboard.json").read_text())
        return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]

    def test_it_charts_every_metric_of_the_operator(self) -> None:
        used = {name for expr in self._expressions() for name in re.findall(r"\bvmgen_[a-z_]+", expr)}
        # A histogram is queried through its _bucket series.
        used = {re.sub(r"_bucket$", "", name) for name in used}

        assert used == set(METRICS)

    def test_it_groups_only_by_labels_the_metrics_carry(self) -> None:
        for expr in self._expressions():
            names = {re.sub(r"_bucket$", "", n) for n in re.findall(r"\bvmgen_[a-z_]+", expr)}
            labels = set().union(*(METRICS[name] for name in names)) | {"le"}
            for group in re.findall(r"by \(([^)]*)\)", expr):
                assert {label.strip() for label in group.split(",")} <= labels, expr
