"""Who may make the operator act on which Azure VM: the cluster admin's policy, decided purely.

The problem (a confused deputy): the operator holds its own Azure identity (workload identity, used
when `spec.azure.credentialsSecretRef` is absent). Without a policy, anyone allowed to create a
VMGeneralization in any served namespace could make that identity generalize any VM it reaches, an
irreversible act on someone else's machine. Two rules, both owned by the cluster admin and both out of
reach of namespace users:

- The operator's own identity is used only for namespaces listed in `--identity-namespaces`
  (chart value `operator.identityNamespaces`; default: none). Others get `OperatorIdentityNotAllowed`.
- The annotation `vmgen.io/allowed-scopes` on the Namespace object (namespace users cannot edit their
  Namespace) lists the ARM scopes its resources may target, comma-separated:
  `/subscriptions/<id>` or `/subscriptions/<id>/resourceGroups/<name>`. A VM outside them gets
  `ScopeNotAllowed`; an entry that is neither form makes the whole annotation `InvalidNamespacePolicy`
  (a typo must not widen or silently narrow what the admin meant).

The default without the annotation, chosen to be safe and to keep Secret-based jobs working:
- a resource that brings its own credentials (a Secret in its namespace) is not scope-restricted: it acts
  with its own authority, and Azure RBAC on that principal decides, exactly as `az` with that principal
  would; an admin who wants more adds the annotation, which then restricts those resources too;
- a resource that uses the operator's identity needs the annotation: an identity namespace without it is
  refused with `ScopeNotAllowed`, so the operator's identity never reaches "everything it can".

ARM ids are case-insensitive, so scopes are compared lower-cased; a resource group scope matches only
that group (`rg-a` does not cover `rg-ab`). Everything here is pure: the adapter
(`adapters/namespaces.py`) reads the annotation, the workflow calls `check()` before any Azure call.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from vmgen.domain import errors, model
from vmgen.domain.reasons import Reason

__all__ = [
    "ALLOWED_SCOPES_ANNOTATION",
    "InvalidNamespacePolicy",
    "NamespaceRules",
    "OperatorIdentityNotAllowed",
    "ScopeNotAllowed",
    "check",
    "rules",
]

ALLOWED_SCOPES_ANNOTATION = "vmgen.io/allowed-scopes"
_SCOPE = re.compile(r"^/subscriptions/(?P<sub>[^/\s]+)(?:/resourceGroups/(?P<rg>[^/\s]+))?/?$", re.IGNORECASE)


class OperatorIdentityNotAllowed(errors.PermanentError):
    reason = Reason.OPERATOR_IDENTITY_NOT_ALLOWED


class ScopeNotAllowed(errors.PermanentError):
    reason = Reason.SCOPE_NOT_ALLOWED


class InvalidNamespacePolicy(errors.PermanentError):
    reason = Reason.INVALID_NAMESPACE_POLICY


@dataclass(frozen=True)
class Scope:
    subscription_id: str
    resource_group: str | None = None

    def covers(self, vm: model.VmRef) -> bool:
        if self.subscription_id != vm.subscription_id.lower():
            return False
        return self.resource_group is None or self.resource_group == vm.resource_group.lower()

    def __str__(self) -> str:
        text = f"/subscriptions/{self.subscription_id}"
        return text + (f"/resourceGroups/{self.resource_group}" if self.resource_group else "")


@dataclass(frozen=True)
class NamespaceRules:
    """The policy for one namespace, as the cluster admin wrote it."""

    namespace: str
    identity_allowed: bool
    scopes: tuple[Scope, ...] | None
    """None: no annotation on the Namespace."""
    invalid: str | None = None
    """The annotation's offending entry, when it could not be read."""


def rules(namespace: str, *, annotation: str | None, identity_namespaces: Collection[str]) -> NamespaceRules:
    """Read the annotation's text (None when absent) and the operator's identity-namespaces setting."""
    allowed = namespace in identity_namespaces
    if annotation is None:
        return NamespaceRules(namespace=namespace, identity_allowed=allowed, scopes=None)
    scopes: list[Scope] = []
    for entry in (e.strip() for e in annotation.split(",")):
        if not entry:
            continue
        found = _SCOPE.match(entry)
        if found is None:
            return NamespaceRules(namespace=namespace, identity_allowed=allowed, scopes=(), invalid=entry)
        rg = found["rg"]
        scopes.append(Scope(found["sub"].lower(), rg.lower() if rg else None))
    return NamespaceRules(namespace=namespace, identity_allowed=allowed, scopes=tuple(scopes))


def check(rules: NamespaceRules, vm: model.VmRef, *, uses_operator_identity: bool) -> None:
    """Raise the refusal for `vm` under `rules`, or return when the resource may go on."""
    ns = rules.namespace
    annotate = (
        f"A cluster admin sets it with `kubectl annotate namespace {ns} --overwrite"
        f" {ALLOWED_SCOPES_ANNOTATION}=/subscriptions/<id>/resourceGroups/<group>`."
    )
    if rules.invalid is not None:
        raise InvalidNamespacePolicy(
            f"The annotation {ALLOWED_SCOPES_ANNOTATION} on namespace {ns} has the entry {rules.invalid!r},"
            " which is neither /subscriptions/<id> nor /subscriptions/<id>/resourceGroups/<group>; nothing"
            f" in this namespace runs until it is fixed. {annotate}"
        )
    if uses_operator_identity and not rules.identity_allowed:
        raise OperatorIdentityNotAllowed(
            f"Namespace {ns} may not use the operator's own Azure identity (it is not in the operator's"
            " --identity-namespaces); give the resource spec.azure.credentialsSecretRef naming a Secret"
            " with a service principal of your own, or ask a cluster admin to allow the namespace."
        )
    target = f"/subscriptions/{vm.subscription_id}/resourceGroups/{vm.resource_group}"
    if rules.scopes is None:
        if uses_operator_identity:
            raise ScopeNotAllowed(
                f"Namespace {ns} has no {ALLOWED_SCOPES_ANNOTATION} annotation, so the operator's own"
                f" identity may not target {target} (nor anything else). {annotate}"
            )
        return
    if not any(scope.covers(vm) for scope in rules.scopes):
        allowed = ", ".join(str(s) for s in rules.scopes) or "nothing"
        raise ScopeNotAllowed(
            f"VM {vm.name} in {target} is outside the scopes namespace {ns} may target ({allowed});"
            f" nothing was done. {annotate}"
        )
