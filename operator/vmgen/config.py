"""The operator's settings: defaults, then `VMGEN_*` environment variables, then command-line flags.

One frozen value built once at start and handed to the adapters. Sovereign clouds need the ARM
endpoint, the credential scope and the Entra authority set together (a custom endpoint alone still
asks Entra for the public cloud's scope). The LRO poll interval is ours to set because azure-core
waits 30 s between polls by default. Secrets never pass through here: they live in Kubernetes Secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ENV_PREFIX = "VMGEN_"
PUBLIC_ARM_ENDPOINT = "https://management.azure.com"
PUBLIC_CREDENTIAL_SCOPE = "https://management.azure.com/.default"
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_REQUESTS_IN_FLIGHT = 64
DEFAULT_MAX_SUBSCRIPTION_REQUESTS_IN_FLIGHT = 16


@dataclass(frozen=True)
class Config:
    arm_endpoint: str = PUBLIC_ARM_ENDPOINT
    credential_scope: str = PUBLIC_CREDENTIAL_SCOPE
    authority: str = PUBLIC_AUTHORITY
    ca_bundle: str | None = None
    """PEM file trusted for ARM and Entra; None means the system trust store (never unverified)."""
    poll_interval: float = DEFAULT_POLL_INTERVAL
    """Seconds between polls of Azure long-running operations."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means all namespaces."""
    operator_namespace: str = "default"
    """Where the per-VM Leases live (the operator's own namespace)."""
    liveness_endpoint: str | None = None
    """e.g. http://0.0.0.0:8080/healthz for the Deployment's liveness probe; None: no endpoint."""
    verbose: bool = False
    max_requests_in_flight: int = DEFAULT_MAX_REQUESTS_IN_FLIGHT
    """ARM requests in flight at once, all jobs and subscriptions together (adapters/pacing.py)."""
    max_subscription_requests_in_flight: int = DEFAULT_MAX_SUBSCRIPTION_REQUESTS_IN_FLIGHT
    """ARM requests in flight at once to one subscription."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Defaults overridden by VMGEN_* variables (POD_NAMESPACE is the operator namespace's fallback)."""
        defaults = cls()

        def value(name: str) -> str | None:
            text = env.get(ENV_PREFIX + name, "").strip()
            return text or None

        return cls(
            arm_endpoint=value("ARM_ENDPOINT") or defaults.arm_endpoint,
            credential_scope=value("CREDENTIAL_SCOPE") or defaults.credential_scope,
            authority=value("AUTHORITY") or defaults.authority,
            ca_bundle=value("CA_BUNDLE"),
            poll_interval=parse_interval(value("POLL_INTERVAL") or str(defaults.poll_interval)),
            namespaces=tuple(n.strip() for n in (value("NAMESPACES") or "").split(",") if n.strip()),
            operator_namespace=value("OPERATOR_NAMESPACE") or env.get("POD_NAMESPACE") or "default",
            liveness_endpoint=value("LIVENESS_ENDPOINT"),
            verbose=(value("VERBOSE") or "").lower() in ("1", "true", "yes", "on"),
            max_requests_in_flight=parse_limit(
                value("MAX_REQUESTS_IN_FLIGHT") or str(defaults.max_requests_in_flight)
            ),
            max_subscription_requests_in_flight=parse_limit(
                value("MAX_SUBSCRIPTION_REQUESTS_IN_FLIGHT")
                or str(defaults.max_subscription_requests_in_flight)
            ),
        )


def parse_interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"the poll interval must be a number of seconds, not {text!r}") from None
    if not 0 < seconds <= 300:
        raise ValueError(f"the poll interval must be more than 0 and at most 300 seconds, not {seconds:g}")
    return seconds


def parse_limit(text: str) -> int:
    try:
        limit = int(text)
    except ValueError:
        raise ValueError(f"a request limit must be a whole number, not {text!r}") from None
    if not 1 <= limit <= 10000:
        raise ValueError(f"a request limit must be between 1 and 10000, not {limit}")
    return limit
