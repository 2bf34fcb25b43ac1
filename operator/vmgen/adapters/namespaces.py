"""`ports.NamespacePolicy`: reads the cluster admin's annotation on a Namespace for domain/policy.py.

The annotation lives on the Namespace object because namespace users (who may create
VMGeneralizations and Secrets) cannot edit their Namespace; the operator needs `get` on namespaces
(the chart's ClusterRole grants it). The Namespace is read on every pass that would reach Azure, so a
cluster admin's change takes effect at once and a removed permission is never served from a cache.

Traps avoided: a 404 (the namespace is being deleted) is read as "no annotation", which only ever
refuses more, never less; a 403 becomes KubernetesForbidden (the chart's RBAC is missing), which ends
the resource Failed with a message naming the RBAC gap instead of silently skipping the policy.
"""

from __future__ import annotations

from collections.abc import Collection

from kubernetes.client.exceptions import ApiException

from vmgen.adapters import kube
from vmgen.domain import errors, policy


class NamespacePolicyReader:
    def __init__(self, api: kube.KubeApi, *, identity_namespaces: Collection[str]) -> None:
        self._api = api
        self._identity_namespaces = frozenset(identity_namespaces)

    async def rules(self, namespace: str) -> policy.NamespaceRules:
        try:
            found = await self._api.call(
                f"get Namespace {namespace}", self._api.core.read_namespace, namespace
            )
            annotations = dict(found.metadata.annotations or {}) if found.metadata else {}
        except ApiException as exc:
            if exc.status != 404:
                raise errors.KubernetesUnavailable(
                    f"Reading Namespace {namespace} failed ({exc.status})."
                ) from None
            annotations = {}
        return policy.rules(
            namespace,
            annotation=annotations.get(policy.ALLOWED_SCOPES_ANNOTATION),
            identity_namespaces=self._identity_namespaces,
        )
