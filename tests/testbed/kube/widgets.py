"""A small CRD (`Widget`) with a CEL rule, a transition rule and a status subresource."""

from __future__ import annotations

import uuid
from typing import Any

GROUP = "testbed.vmgen.io"
VERSION = "v1"
PLURAL = "widgets"
RANGE_MESSAGE = "minReplicas must not exceed maxReplicas"
IMMUTABLE_MESSAGE = "owner is immutable"

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["owner", "minReplicas", "maxReplicas"],
                                "x-kubernetes-validations": [
                                    {"rule": "self.minReplicas <= self.maxReplicas", "message": RANGE_MESSAGE}
                                ],
                                "properties": {
                                    "owner": {
                                        "type": "string",
                                        "x-kubernetes-validations": [
                                            {"rule": "self == oldSelf", "message": IMMUTABLE_MESSAGE}
                                        ],
                                    },
                                    "minReplicas": {"type": "integer"},
                                    "maxReplicas": {"type": "integer"},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def widget_manifest(*, owner: str = "team-a", min_replicas: int = 1, max_replicas: int = 3) -> dict[str, Any]:
    """A Widget with a unique name in `default` (no namespace garbage collection without controllers)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": f"widget-{uuid.uuid4().hex[:8]}", "namespace": "default"},
        "spec": {"owner": owner, "minReplicas": min_replicas, "maxReplicas": max_replicas},
    }
