"""The composition root: builds the adapters from `config.Config` and hands the kopf edge what it needs.

Nothing else constructs an adapter. The kopf edge (handlers.py) asks this module for the Runtime (the
workflow's ports plus per-resource status writers) and for the Kubernetes connection kopf should use;
it never imports an adapter itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vmgen import config, workflow
from vmgen.adapters import (
    azure,
    azure_runcommand,
    kube,
    leader,
    metrics,
    namespaces,
    pacing,
    probes,
    shared_azure,
    ssh,
)
from vmgen.domain import model, windows_spec
from vmgen.domain import ports as domain_ports

if TYPE_CHECKING:
    from vmgen.adapters import winrm

__all__ = [
    "KubeConnection",
    "Runtime",
    "SystemClock",
    "build",
    "check_startup",
    "elector",
    "kube_connection",
    "serve_metrics",
    "standby_probe",
]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class WindowsGuests:
    """`ports.WindowsGuests`: the WinRM adapter and the managed Run Command adapter, side by side.

    The WinRM adapter (pypsrp, requests: about 30 MiB of RSS) is imported by the first WinRM job, not
    at start: a fleet of Linux VMs never loads it."""

    def __init__(self, *, poll_interval: float) -> None:
        self._winrm: winrm.WinRmGuests | None = None
        self._poll_interval = poll_interval

    def winrm(self, connection: windows_spec.WinRmConnection) -> domain_ports.WindowsGuest:
        if self._winrm is None:
            from vmgen.adapters import winrm  # lazily, see the docstring

            self._winrm = winrm.WinRmGuests()
        return self._winrm.winrm(connection)

    def run_command(
        self, compute: domain_ports.Compute, vm: model.VmRef, *, location: str
    ) -> domain_ports.WindowsGuest:
        return azure_runcommand.RunCommandGuest(
            compute, vm, location=location, poll_interval=self._poll_interval
        )


@dataclass(frozen=True)
class Runtime:
    ports: workflow.Ports
    api: kube.KubeApi
    prometheus: metrics.PrometheusMetrics

    def status_writer(
        self, *, namespace: str, name: str, stored: Mapping[str, Any] | None
    ) -> metrics.CountingStatusWriter:
        """The status subresource of one resource, counted for Prometheus; `stop()` it when done."""
        return metrics.CountingStatusWriter(
            kube.StatusWriter(self.api, namespace=namespace, name=name),
            self.prometheus,
            resource=f"{namespace}/{name}",
            stored=stored,
        )

    def close(self) -> None:
        self.api.close()


def check_startup(settings: config.Config) -> None:
    """Raise config.StartupError (one line) unless the API server and the ARM endpoint answer."""
    probes.check_kubernetes(settings.namespaces)
    probes.check_arm(settings.arm_endpoint, ca_bundle=settings.ca_bundle)


def build(settings: config.Config) -> Runtime:
    api = kube.KubeApi(kube.load_configuration())
    counted = metrics.PrometheusMetrics()
    return Runtime(
        ports=workflow.Ports(
            compute=shared_azure.SharedAccounts(
                azure.AzureSettings(
                    arm_endpoint=settings.arm_endpoint,
                    credential_scope=settings.credential_scope,
                    authority=settings.authority,
                    ca_bundle=settings.ca_bundle,
                    poll_interval=settings.poll_interval,
                    max_connections=settings.max_requests_in_flight,
                    request_policies=(counted.azure_policy(),),
                ),
                pacing.Pacer(
                    max_requests_in_flight=settings.max_requests_in_flight,
                    max_subscription_requests_in_flight=settings.max_subscription_requests_in_flight,
                ),
            ),
            deprovisioner=ssh.SshDeprovisioner(),
            secrets=kube.SecretReader(api),
            locks=kube.LeaseLocks(api, settings.operator_namespace),
            clock=SystemClock(),
            policy=namespaces.NamespacePolicyReader(api, identity_namespaces=settings.identity_namespaces),
            windows=WindowsGuests(poll_interval=settings.poll_interval),
        ),
        api=api,
        prometheus=counted,
    )


def serve_metrics(runtime: Runtime, port: int) -> None:
    metrics.serve(runtime.prometheus, port)


def elector(settings: config.Config, runtime: Runtime) -> leader.LeaderElector:
    return leader.LeaderElector(
        runtime.api,
        namespace=settings.operator_namespace,
        name=settings.leader_lease,
        duration=settings.lease_duration,
    )


def standby_probe(settings: config.Config) -> leader.StandbyProbe:
    return leader.StandbyProbe(settings.liveness_endpoint)


@dataclass(frozen=True)
class KubeConnection:
    """How to reach the API server, read from KUBECONFIG or the in-cluster ServiceAccount at login."""

    server: str
    ca_path: str | None
    insecure: bool
    username: str | None
    password: str | None
    scheme: str | None
    token: str | None
    certificate_path: str | None
    private_key_path: str | None


def kube_connection() -> KubeConnection:
    cfg = kube.load_configuration()
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
    scheme, _space, token = (header or "").rpartition(" ")
    return KubeConnection(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        username=cfg.username or None,
        password=cfg.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )
