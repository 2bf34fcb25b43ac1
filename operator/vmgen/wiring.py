"""The composition root: builds the adapters from `config.Config` and hands the kopf edge what it needs.

Nothing else constructs an adapter. The kopf edge (handlers.py) asks this module for the Runtime (the
workflow's ports plus per-resource status writers) and for the Kubernetes connection kopf should use;
it never imports an adapter itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from vmgen import config, workflow
from vmgen.adapters import azure, kube, pacing, shared_azure, ssh
from vmgen.domain import ports as domain_ports

__all__ = ["KubeConnection", "Runtime", "SystemClock", "build", "kube_connection"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class Runtime:
    ports: workflow.Ports
    api: kube.KubeApi

    def status_writer(self, *, namespace: str, name: str) -> domain_ports.StatusWriter:
        return kube.StatusWriter(self.api, namespace=namespace, name=name)

    def close(self) -> None:
        self.api.close()


def build(settings: config.Config) -> Runtime:
    api = kube.KubeApi(kube.load_configuration())
    return Runtime(
        ports=workflow.Ports(
            compute=shared_azure.SharedAccounts(
                azure.AzureSettings(
                    arm_endpoint=settings.arm_endpoint,
                    credential_scope=settings.credential_scope,
                    authority=settings.authority,
                    ca_bundle=settings.ca_bundle,
                    poll_interval=settings.poll_interval,
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
        ),
        api=api,
    )


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
