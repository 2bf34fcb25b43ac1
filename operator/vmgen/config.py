"""The operator's settings: defaults, then `VMGEN_*` environment variables, then command-line flags.

One frozen value built once at start and handed to the adapters. Sovereign clouds need the ARM
endpoint, the credential scope and the Entra authority set together (a custom endpoint alone still
asks Entra for the public cloud's scope). The LRO poll interval is ours to set because azure-core
waits 30 s between polls by default. Secrets never pass through here: they live in Kubernetes Secrets.

`StartupError` is what `vmgen run` prints as one line (and exits non-zero) when the operator cannot
start: an unreadable kubeconfig, an unreachable API server or ARM endpoint, a missing RBAC grant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

ENV_PREFIX = "VMGEN_"
PUBLIC_ARM_ENDPOINT = "https://management.azure.com"
PUBLIC_CREDENTIAL_SCOPE = "https://management.azure.com/.default"
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_LEASE_DURATION = 15.0
DEFAULT_LEADER_LEASE = "vmgen-leader"
DEFAULT_MAX_REQUESTS_IN_FLIGHT = 64
DEFAULT_MAX_SUBSCRIPTION_REQUESTS_IN_FLIGHT = 16


class StartupError(Exception):
    """The operator cannot start; the message is one line a person can act on (no traceback)."""


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
    metrics_port: int = 0
    """Port of the Prometheus endpoint (/metrics on every address); 0: no endpoint."""
    identity_namespaces: tuple[str, ...] = ()
    """Namespaces whose VMGeneralizations may use the operator's own Azure identity; empty: none."""
    leader_election: bool = True
    """Only the holder of the leader Lease (in operator_namespace) acts; the others wait (HA)."""
    leader_lease: str = DEFAULT_LEADER_LEASE
    lease_duration: float = DEFAULT_LEASE_DURATION
    """Seconds a leader Lease lasts without renewal before a standby takes over."""
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
            namespaces=_names(value("NAMESPACES")),
            operator_namespace=value("OPERATOR_NAMESPACE") or env.get("POD_NAMESPACE") or "default",
            liveness_endpoint=value("LIVENESS_ENDPOINT"),
            verbose=_flag(value("VERBOSE"), default=False),
            metrics_port=parse_port(value("METRICS_PORT") or "0"),
            identity_namespaces=_names(value("IDENTITY_NAMESPACES")),
            leader_election=_flag(value("LEADER_ELECTION"), default=True),
            leader_lease=value("LEADER_LEASE") or defaults.leader_lease,
            lease_duration=parse_lease_duration(value("LEASE_DURATION") or str(defaults.lease_duration)),
            max_requests_in_flight=parse_limit(
                value("MAX_REQUESTS_IN_FLIGHT") or str(defaults.max_requests_in_flight)
            ),
            max_subscription_requests_in_flight=parse_limit(
                value("MAX_SUBSCRIPTION_REQUESTS_IN_FLIGHT")
                or str(defaults.max_subscription_requests_in_flight)
            ),
        )


def _flag(text: str | None, *, default: bool) -> bool:
    if text is None:
        return default
    return text.lower() in ("1", "true", "yes", "on")


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


_N = TypeVar("_N", int, float)


def _number(text: str, kind: type[_N], what: str, unit: str, within: tuple[_N, _N], *, span: str) -> _N:
    """One numeric setting: `what` names it in both errors; `within` is inclusive except that a float
    range starting at 0 is open there (an interval of 0 seconds would spin)."""
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{what} must be {unit}, not {text!r}") from None
    low, high = within
    if not (low < value if kind is float and low == 0 else low <= value) or value > high:
        raise ValueError(f"{what} must be {span}, not {value:g}")
    return value


def parse_port(text: str) -> int:
    return _number(text, int, "the metrics port", "a number", (0, 65535), span="between 0 (off) and 65535")


def parse_lease_duration(text: str) -> float:
    return _number(
        text,
        float,
        "the lease duration",
        "a number of seconds",
        (1.0, 300.0),
        span="between 1 and 300 seconds",
    )


def parse_interval(text: str) -> float:
    return _number(
        text, float, "the poll interval", "a number of seconds", (0.0, 300.0),
        span="more than 0 and at most 300 seconds",
    )  # fmt: skip


def parse_limit(text: str) -> int:
    return _number(text, int, "a request limit", "a whole number", (1, 10000), span="between 1 and 10000")
