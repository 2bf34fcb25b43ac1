"""One error tree for the whole operator, and the table that sorts Azure's error codes.

    VmgenError
    ├── TransientError            retry with backoff (honour retry_after when known)
    │   ├── AzureThrottled        429, with or without Retry-After
    │   ├── AzureUnavailable      5xx, connection errors, timeouts
    │   ├── AzureConflict         AnotherOperationInProgress, OperationPreempted, ...
    │   ├── AzureOperationLost    a saved LRO that cannot be resumed: read the VM and begin again
    │   ├── GuestUnreachable      SSH/WinRM connect refused or timed out before anything ran
    │   │   └── GuestHostUnresolvable  the guest's host name does not resolve (DNS)
    │   └── KubernetesUnavailable the API server did not answer (or answered 429/5xx)
    ├── PermanentError            the resource ends Failed with `reason` and a message a person can act on
    │   ├── InvalidSpec
    │   ├── SecretNotFound / SecretKeyMissing
    │   ├── KubernetesForbidden         RBAC refused the operator (retried a few times first)
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

Adapters raise only these; `AZURE_CODES` is the explicit table (after Azure Service Operator's
classifier) from an ARM `error.code` to the error it becomes, and so to retry or give up. kopf never
sees these: the workflow turns them into status, Events and the delay before the next pass.
"""

from __future__ import annotations

from vmgen.domain.reasons import Reason


class VmgenError(Exception):
    """Base of every error the core understands. `reason` is a PascalCase condition reason."""

    reason: str = Reason.ERROR

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class TransientError(VmgenError):
    reason = Reason.TRANSIENT_ERROR

    def __init__(self, message: str, *, reason: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class AzureThrottled(TransientError):
    reason = Reason.AZURE_THROTTLED


class AzureUnavailable(TransientError):
    reason = Reason.AZURE_UNAVAILABLE


class AzureConflict(TransientError):
    reason = Reason.AZURE_OPERATION_IN_PROGRESS


class AzureOperationLost(TransientError):
    """A saved long-running operation cannot be followed any more (failed, or its token is unusable)."""

    reason = Reason.AZURE_OPERATION_LOST


class GuestUnreachable(TransientError):
    reason = Reason.GUEST_UNREACHABLE


class GuestHostUnresolvable(GuestUnreachable):
    """DNS has no address for the guest's host name: a typo, or a record not created yet."""

    reason = Reason.GUEST_HOST_UNRESOLVABLE


class KubernetesUnavailable(TransientError):
    reason = Reason.KUBERNETES_UNAVAILABLE


class PermanentError(VmgenError):
    reason = Reason.FAILED


class InvalidSpec(PermanentError):
    reason = Reason.INVALID_SPEC


class SecretNotFound(PermanentError):
    reason = Reason.SECRET_NOT_FOUND


class SecretKeyMissing(PermanentError):
    reason = Reason.SECRET_KEY_MISSING


class KubernetesForbidden(PermanentError):
    reason = Reason.KUBERNETES_FORBIDDEN


class AzureAuthenticationFailed(PermanentError):
    reason = Reason.AZURE_AUTHENTICATION_FAILED


class VmNotFound(PermanentError):
    reason = Reason.VM_NOT_FOUND


class AzureOperationNotAllowed(PermanentError):
    reason = Reason.AZURE_OPERATION_NOT_ALLOWED


class AzureOperationFailed(PermanentError):
    reason = Reason.AZURE_OPERATION_FAILED


class HostKeyMismatch(PermanentError):
    reason = Reason.HOST_KEY_MISMATCH


class HostKeysUnavailable(PermanentError):
    reason = Reason.HOST_KEYS_UNAVAILABLE


class AuthenticationRefused(PermanentError):
    reason = Reason.SSH_AUTHENTICATION_REFUSED


class DeprovisionFailed(PermanentError):
    reason = Reason.DEPROVISION_FAILED


class UncertainError(VmgenError):
    reason = Reason.OUTCOME_UNKNOWN


class DeprovisionOutcomeUnknown(UncertainError):
    reason = Reason.DEPROVISION_OUTCOME_UNKNOWN


# ARM error codes (the `error.code` of a response, or of an async operation that ended Failed) -> the
# error they become. Codes not listed are sorted by HTTP status in `classify_azure`.
AZURE_CODES: dict[str, type[VmgenError]] = {
    # retry
    "AnotherOperationInProgress": AzureConflict,
    "OperationPreempted": AzureConflict,
    "Conflict": AzureConflict,  # e.g. a Run Command while another one runs
    "TooManyRequests": AzureThrottled,
    "SubscriptionRequestsThrottled": AzureThrottled,
    "ResourceGroupRequestsThrottled": AzureThrottled,
    "RetryableError": AzureUnavailable,
    "InternalServerError": AzureUnavailable,
    "InternalExecutionError": AzureUnavailable,
    "ServiceUnavailable": AzureUnavailable,
    "GatewayTimeout": AzureUnavailable,
    "BadGateway": AzureUnavailable,
    "VMAgentStatusCommunicationError": AzureUnavailable,  # Run Command: the agent may still be starting
    # give up
    "OperationNotAllowed": AzureOperationNotAllowed,
    "ScopeLocked": AzureOperationNotAllowed,  # a ReadOnly lock; a person must remove it
    "ResourceNotFound": VmNotFound,
    "NotFound": VmNotFound,
    "ResourceGroupNotFound": VmNotFound,
    "SubscriptionNotFound": VmNotFound,
    "AuthorizationFailed": AzureAuthenticationFailed,
    "AuthenticationFailed": AzureAuthenticationFailed,
    "InvalidAuthenticationToken": AzureAuthenticationFailed,
}


def classify_azure(code: str | None, status: int | None) -> type[VmgenError]:
    """The error an ARM answer becomes: by `error.code` first, by HTTP status second."""
    if code and code in AZURE_CODES:
        return AZURE_CODES[code]
    if status == 429:
        return AzureThrottled
    if status in (401, 403):
        return AzureAuthenticationFailed
    if status == 404:
        return VmNotFound
    if status is not None and (status == 408 or status >= 500):
        return AzureUnavailable
    if status is not None and status < 400:  # an async operation that ended Failed with another code
        return AzureOperationFailed
    return AzureOperationNotAllowed
