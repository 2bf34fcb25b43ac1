"""The words vmgen writes where people and tools read them: condition types and reasons.

Kubernetes conditions and Events carry a machine-readable, PascalCase `reason`. Scattering string
literals makes the vocabulary drift between status, Events, docs and the CRD; every reason the
operator can write is therefore a member of `Reason` (the error classes in `errors` use the same
words, and a unit test keeps the two in step). Docs and Argo CD health checks can rely on this list.
"""

from __future__ import annotations

import enum


class ConditionType(enum.StrEnum):
    READY = "Ready"
    """True once the VM is a generalized image source; False with the current step, wait or failure."""
    DEPROVISIONED = "Deprovisioned"
    DEALLOCATED = "Deallocated"
    GENERALIZED = "Generalized"
    SOURCE_PRESERVED = "SourcePreserved"
    """True once the VM's disks are snapshotted (spec.preserveSource), before anything irreversible."""
    AWAITING_APPROVAL = "AwaitingApproval"
    """True while `spec.approval: Manual` waits for the annotation vmgen.io/approve: "true"."""
    CAPTURED = "Captured"
    """True once the managed image exists (spec.capture.managedImage)."""
    PUBLISHED = "Published"
    """True once the gallery image version exists and has replicated to every target region."""
    PREFLIGHT_PASSED = "PreflightPassed"
    """The outcome of the read-only checks: True when nothing blocks generalization."""
    DEPROVISION_OUTCOME_UNKNOWN = "DeprovisionOutcomeUnknown"
    """True while the operator cannot tell whether deprovision finished and waits for a person."""


class Reason(enum.StrEnum):
    # Progress (Ready=False while working; also step condition reasons).
    PENDING = "Pending"
    VALIDATING = "Validating"
    DEPROVISIONING = "Deprovisioning"
    SHUTTING_DOWN = "ShuttingDown"
    GENERALIZING = "Generalizing"
    PREFLIGHT = "Preflight"
    SNAPSHOTTING = "Snapshotting"
    CAPTURING = "Capturing"
    REPLICATING = "Replicating"
    # Waits (Ready=False; nothing is wrong, the operator checks again later).
    VM_CLAIMED_BY_ANOTHER = "VMClaimedByAnother"
    AGENT_NOT_READY = "AgentNotReady"
    VM_TRANSITIONING = "VMTransitioning"
    DEPROVISION_IN_PROGRESS = "DeprovisionInProgress"
    DEPROVISION_OUTCOME_UNKNOWN = "DeprovisionOutcomeUnknown"
    AWAITING_APPROVAL = "AwaitingApproval"
    # Retries after transient errors (Warning events; Ready=False).
    TRANSIENT_ERROR = "TransientError"
    AZURE_THROTTLED = "AzureThrottled"
    AZURE_UNAVAILABLE = "AzureUnavailable"
    AZURE_OPERATION_IN_PROGRESS = "AzureOperationInProgress"
    AZURE_OPERATION_LOST = "AzureOperationLost"
    GUEST_UNREACHABLE = "GuestUnreachable"
    GUEST_HOST_UNRESOLVABLE = "GuestHostUnresolvable"
    KUBERNETES_UNAVAILABLE = "KubernetesUnavailable"
    # Step starts and finishes (Events; True reasons of step conditions).
    VALIDATION_STARTED = "ValidationStarted"
    VALIDATION_SUCCEEDED = "ValidationSucceeded"
    DEPROVISION_STARTED = "DeprovisionStarted"
    DEPROVISION_SUCCEEDED = "DeprovisionSucceeded"
    DEPROVISION_VERIFIED = "DeprovisionVerified"
    DEPROVISION_CONFIRMED = "DeprovisionConfirmed"
    DEPROVISION_NOT_STARTED = "DeprovisionNotStarted"
    SHUTDOWN_STARTED = "ShutdownStarted"
    VM_DEALLOCATED = "VMDeallocated"
    GENERALIZE_STARTED = "GeneralizeStarted"
    VM_GENERALIZED = "VMGeneralized"
    SNAPSHOTS_TAKEN = "SnapshotsTaken"
    APPROVED = "Approved"
    MANAGED_IMAGE_CREATED = "ManagedImageCreated"
    IMAGE_VERSION_PUBLISHED = "ImageVersionPublished"
    PREFLIGHT_PASSED = "PreflightPassed"
    RESOURCES_DELETED = "ResourcesDeleted"
    SUCCEEDED = "Succeeded"
    ADOPTED_GENERALIZED_VM = "AdoptedGeneralizedVM"
    # Failures (Ready=False, phase Failed; Warning events).
    FAILED = "Failed"
    INVALID_SPEC = "InvalidSpec"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_KEY_MISSING = "SecretKeyMissing"
    KUBERNETES_FORBIDDEN = "KubernetesForbidden"
    AZURE_AUTHENTICATION_FAILED = "AzureAuthenticationFailed"
    VM_NOT_FOUND = "VMNotFound"
    AZURE_OPERATION_NOT_ALLOWED = "AzureOperationNotAllowed"
    AZURE_OPERATION_FAILED = "AzureOperationFailed"
    HOST_KEY_MISMATCH = "HostKeyMismatch"
    HOST_KEYS_UNAVAILABLE = "HostKeysUnavailable"
    SSH_AUTHENTICATION_REFUSED = "SSHAuthenticationRefused"
    DEPROVISION_FAILED = "DeprovisionFailed"
    OS_NOT_SUPPORTED = "OSNotSupported"
    OS_TYPE_MISMATCH = "OSTypeMismatch"
    VM_NOT_RUNNING = "VMNotRunning"
    VM_NOT_DEALLOCATED = "VMNotDeallocated"
    TIMEOUT = "Timeout"
    PREFLIGHT_FAILED = "PreflightFailed"
    IMAGE_DEFINITION_NOT_FOUND = "ImageDefinitionNotFound"
    IMAGE_DEFINITION_MISMATCH = "ImageDefinitionMismatch"
    IMAGE_VERSION_EXISTS = "ImageVersionExists"
    MANAGED_IMAGE_NOT_SUPPORTED = "ManagedImageNotSupported"
    CAPTURE_FAILED = "CaptureFailed"
    # Uncertain outcomes (the error tree's third branch).
    OUTCOME_UNKNOWN = "OutcomeUnknown"
    # Generic error base reasons.
    ERROR = "Error"
