"""One error tree for the whole operator, and the table that sorts Azure's error codes.

    VmgenError
    ├── TransientError            retry with backoff (honour retry_after when known)
    │   ├── AzureThrottled        429, with or without Retry-After
    │   ├── AzureUnavailable      5xx, connection errors, timeouts
    │   ├── AzureConflict         AnotherOperationInProgress, OperationPreempted, ...
    │   ├── AzureOperationLost    a saved LRO that cannot be resumed: read the VM and begin again
    │   ├── GuestUnreachable      SSH/WinRM connect failed before anything ran
    │   └── KubernetesUnavailable the API server did not answer (or answered 429/5xx)
    ├── PermanentError            the resource ends Failed with `reason` and a message a person can act on
    │   ├── InvalidSpec
    │   ├── SecretNotFound / SecretKeyMissing
    │   ├── KubernetesForbidden         RBAC refused the operator (e.g. reading a Secret)
    │   ├── AzureAuthenticationFailed   the credential was refused (Entra invalid_client, 401, 403)
    │   ├── VmNotFound
    │   ├── AzureOperationNotAllowed    Azure refused a transition (OperationNotAllowed, ...)
    │   ├── AzureOperationFailed        an LRO ended Failed with a non-retryable code
    │   ├── HostKeyMismatch             the guest presented a key we do not trust
    │   ├── HostKeysUnavailable         no pinned host keys and Run Command returned none
    │   ├── AuthenticationRefused       the guest refused our SSH credentials
    │   └── DeprovisionFailed           waagent exited non-zero (nothing irreversible is assumed)
    └── UncertainError            neither success nor failure: wait or ask a person
        └── DeprovisionOutcomeUnknown   connection lost while deprovision may have been running

Adapters raise only these; `classify_azure_code` is the explicit table (after Azure Service
Operator's classifier) from an ARM `error.code` to retry or give up. kopf never sees these: the
workflow turns them into status, Events and the delay before the next pass.
"""

from __future__ import annotations

import enum


class VmgenError(Exception):
    """Base of every error the core understands. `reason` is a PascalCase condition reason."""

    reason: str = "Error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class TransientError(VmgenError):
    reason = "TransientError"

    def __init__(self, message: str, *, reason: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class AzureThrottled(TransientError):
    reason = "AzureThrottled"


class AzureUnavailable(TransientError):
    reason = "AzureUnavailable"


class AzureConflict(TransientError):
    reason = "AzureOperationInProgress"


class AzureOperationLost(TransientError):
    """A saved long-running operation cannot be followed any more (failed, or its token is unusable)."""

    reason = "AzureOperationLost"


class GuestUnreachable(TransientError):
    reason = "GuestUnreachable"


class KubernetesUnavailable(TransientError):
    reason = "KubernetesUnavailable"


class PermanentError(VmgenError):
    reason = "Failed"


class InvalidSpec(PermanentError):
    reason = "InvalidSpec"


class SecretNotFound(PermanentError):
    reason = "SecretNotFound"


class SecretKeyMissing(PermanentError):
    reason = "SecretKeyMissing"


class KubernetesForbidden(PermanentError):
    reason = "KubernetesForbidden"


class AzureAuthenticationFailed(PermanentError):
    reason = "AzureAuthenticationFailed"


class VmNotFound(PermanentError):
    reason = "VMNotFound"


class AzureOperationNotAllowed(PermanentError):
    reason = "AzureOperationNotAllowed"


class AzureOperationFailed(PermanentError):
    reason = "AzureOperationFailed"


class HostKeyMismatch(PermanentError):
    reason = "HostKeyMismatch"


class HostKeysUnavailable(PermanentError):
    reason = "HostKeysUnavailable"


class AuthenticationRefused(PermanentError):
    reason = "SSHAuthenticationRefused"


class DeprovisionFailed(PermanentError):
    reason = "DeprovisionFailed"


class UncertainError(VmgenError):
    reason = "OutcomeUnknown"


class DeprovisionOutcomeUnknown(UncertainError):
    reason = "DeprovisionOutcomeUnknown"


class Disposition(enum.Enum):
    RETRY = "retry"
    GIVE_UP = "give-up"


# ARM error codes (the `error.code` of a response or of a failed async operation) -> what to do.
# Unknown codes default by HTTP status in `classify_azure_code`: 408/429/5xx retry, other 4xx give up.
AZURE_CODES: dict[str, Disposition] = {
    "AnotherOperationInProgress": Disposition.RETRY,
    "OperationPreempted": Disposition.RETRY,
    "RetryableError": Disposition.RETRY,
    "TooManyRequests": Disposition.RETRY,
    "SubscriptionRequestsThrottled": Disposition.RETRY,
    "ResourceGroupRequestsThrottled": Disposition.RETRY,
    "InternalServerError": Disposition.RETRY,
    "InternalExecutionError": Disposition.RETRY,
    "ServiceUnavailable": Disposition.RETRY,
    "GatewayTimeout": Disposition.RETRY,
    "BadGateway": Disposition.RETRY,
    "VMAgentStatusCommunicationError": Disposition.RETRY,  # Run Command: the agent may still be starting
    "OperationNotAllowed": Disposition.GIVE_UP,
    "ResourceNotFound": Disposition.GIVE_UP,
    "NotFound": Disposition.GIVE_UP,
    "ResourceGroupNotFound": Disposition.GIVE_UP,
    "SubscriptionNotFound": Disposition.GIVE_UP,
    "AuthorizationFailed": Disposition.GIVE_UP,
    "AuthenticationFailed": Disposition.GIVE_UP,
    "InvalidAuthenticationToken": Disposition.GIVE_UP,
    "InvalidParameter": Disposition.GIVE_UP,
    "BadRequest": Disposition.GIVE_UP,
    "Conflict": Disposition.GIVE_UP,
}


def classify_azure_code(code: str | None, status: int | None) -> Disposition:
    """Retry or give up, by ARM error code first and HTTP status second."""
    if code and code in AZURE_CODES:
        return AZURE_CODES[code]
    if status is not None and (status in (408, 429) or status >= 500):
        return Disposition.RETRY
    return Disposition.GIVE_UP
