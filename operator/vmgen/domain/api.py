"""The names vmgen shares with the Kubernetes API: one place, so code, docs and the CRD cannot drift.

The CRD (crds/vmgeneralization.yaml) uses these; so do the kopf edge (which resources to watch, where kopf
keeps its own bookkeeping), the Lease adapter and the messages that tell a person which annotation to set.
"""

from __future__ import annotations

GROUP = "vmgen.io"
VERSION = "v1alpha1"
PLURAL = "vmgeneralizations"
KIND = "VMGeneralization"

CONFIRM_ANNOTATION = "vmgen.io/confirm-deprovisioned"
"""Set to "true" by a person who checked that a guest was deprovisioned when vmgen cannot tell."""
APPROVE_ANNOTATION = "vmgen.io/approve"
"""Set to "true" by a person to let a `spec.approval: Manual` job take its first irreversible step."""
VM_ID_ANNOTATION = "vmgen.io/vm-id"
"""On a per-VM Lease: the full ARM id of the VM it claims (the Lease name is only a hash of it)."""
FINALIZER = "vmgen.io/finalizer"
KOPF_PREFIX = "vmgen.io"
"""kopf keeps its progress and diff-base in annotations under this prefix (our state lives in status)."""
LAST_HANDLED_KEY = "last-handled-configuration"
LEASE_PREFIX = "vmgen-"

__all__ = [
    "APPROVE_ANNOTATION",
    "CONFIRM_ANNOTATION",
    "FINALIZER",
    "GROUP",
    "KIND",
    "KOPF_PREFIX",
    "LAST_HANDLED_KEY",
    "LEASE_PREFIX",
    "PLURAL",
    "VERSION",
    "VM_ID_ANNOTATION",
]
