"""Which Azure RBAC action an ARM request needs, read from its method and path.

One vocabulary for two readers: the `operation` label of `vmgen_azure_requests_total`, and the custom
role in docs/azure-role.md, which a test compares with what the e2e jobs really sent. Naming requests
by their action (rather than the SDK method that sent them) lets a person match a metric, an Azure
activity log entry and a role definition without a translation table.

ARM paths are `/subscriptions/<id>[/resourceGroups/<g>]/providers/<Namespace>/<type>/<name>[/<type>/
<name>...][/<action>]`. A trailing segment without a name is an action (`POST .../deallocate` ->
`virtualMachines/deallocate/action`) or, for GET, a child view read with the parent's type
(`.../instanceView` -> `virtualMachines/instanceView/read`). Polls of an asynchronous operation
(`/providers/Microsoft.Compute/locations/<l>/operations/<id>`) are `locations/operations/read`.
"""

from __future__ import annotations

from urllib.parse import urlparse

__all__ = ["action_for"]

_VERBS = {
    "GET": "read",
    "HEAD": "read",
    "PUT": "write",
    "PATCH": "write",
    "DELETE": "delete",
    "POST": "action",
}


def action_for(method: str, url: str) -> str:
    """`Microsoft.Compute/virtualMachines/read` and the like; `other` for what is not an ARM path."""
    path = urlparse(url).path.rstrip("/")
    verb = _VERBS.get(method.upper(), "action")
    _, found, tail = path.rpartition("/providers/")
    if not found:
        segments = [s for s in path.split("/") if s]
        if segments and segments[0].lower() in ("subscriptions", "tenants"):
            types = segments[0::2]
            return "Microsoft.Resources/" + "/".join(types) + f"/{verb}"
        return "other"
    segments = [s for s in tail.split("/") if s]
    if len(segments) < 2:
        return "other"
    namespace, rest = segments[0], segments[1:]
    # a trailing action (`.../deallocate`) is a type segment without a name: it joins the types as such
    types = rest[0::2]
    return f"{namespace}/{'/'.join(types)}/{verb}"
