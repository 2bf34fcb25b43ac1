"""What the Azure CLI needs before its first Compute call: cloud metadata, subscriptions, tenants.

`az cloud register --endpoint-resource-manager <simulator>` reads `/metadata/endpoints?api-version=2022-09-01`
(one cloud object: `authentication.loginEndpoint` becomes the authority, `audiences[0]` the token audience)
and `az login --service-principal` then lists `GET /subscriptions?api-version=2022-12-01` to build its
profile; `az account` commands read `GET /subscriptions/{id}` and `GET /tenants`. The SDK never calls them,
so before this module the simulator answered them with a bare aiohttp 404 and never logged them.

Shapes follow Azure's: a subscription is `{id, authorizationSource, managedByTenants, subscriptionId,
tenantId, displayName, state, subscriptionPolicies}`; lists carry `value` and `count` (the CLI ignores a
`nextLink` it does not get). Metadata comes in the three forms ARM serves: 2015-01-01 (the flat legacy
object the CLI's own `_populate_from_metadata_endpoint` read before 2.40), 2019-05-01 (a list of clouds,
what `ARM_CLOUD_METADATA_URL` points at) and 2020-06-01/2022-09-01 (one cloud object).

Traps avoided: the metadata endpoint is anonymous on Azure (the CLI calls it before any login), so it
skips the bearer-token check; every URL in it is built from the request's own host, like the LRO URLs;
`loginEndpoint` and `audiences[0]` carry a trailing slash as Azure's do, because the CLI concatenates
`loginEndpoint.rstrip('/') + '/' + tenant` but uses the audience verbatim in `{audience}/.default`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

__all__ = ["ANONYMOUS", "TENANT_LEVEL", "CliSupport"]

TENANT_LEVEL = frozenset({"listSubscriptions", "getSubscription", "listTenants"})
ANONYMOUS = frozenset({"metadataEndpoints"})
CLOUD_NAME = "VmgenTestbed"


class CliSupport:
    def __init__(self, *, tenant_id: str, subscriptions: Callable[[], list[str]]) -> None:
        self._tenant_id = tenant_id
        self._subscriptions = subscriptions

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/metadata/endpoints", self._metadata, name="metadataEndpoints")
        app.router.add_get("/subscriptions", self._list_subscriptions, name="listSubscriptions")
        app.router.add_get("/subscriptions/{subscription}", self._get_subscription, name="getSubscription")
        app.router.add_get("/tenants", self._list_tenants, name="listTenants")

    async def _metadata(self, request: web.Request) -> web.Response:
        base = f"https://{request.host}/"
        version = request.query.get("api-version", "")
        if version == "2015-01-01":
            return web.json_response(
                {
                    "galleryEndpoint": base,
                    "graphEndpoint": base,
                    "portalEndpoint": base,
                    "authentication": {"loginEndpoint": base, "audiences": [base]},
                }
            )
        cloud = _cloud(base)
        return web.json_response([cloud] if version == "2019-05-01" else cloud)

    async def _list_subscriptions(self, request: web.Request) -> web.Response:
        subscriptions = [self._subscription(sub) for sub in sorted(self._subscriptions())]
        return web.json_response(
            {"value": subscriptions, "count": {"type": "Total", "value": len(subscriptions)}}
        )

    async def _get_subscription(self, request: web.Request) -> web.Response:
        return web.json_response(self._subscription(request.match_info["subscription"]))

    async def _list_tenants(self, request: web.Request) -> web.Response:
        tenant = {
            "id": f"/tenants/{self._tenant_id}",
            "tenantId": self._tenant_id,
            "countryCode": "NL",
            "displayName": "vmgen testbed",
            "domains": ["vmgen.test"],
            "tenantCategory": "Home",
            "defaultDomain": "vmgen.test",
            "tenantType": "AAD",
        }
        return web.json_response({"value": [tenant], "count": {"type": "Total", "value": 1}})

    def _subscription(self, subscription_id: str) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{subscription_id}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": subscription_id,
            "tenantId": self._tenant_id,
            "displayName": f"vmgen testbed {subscription_id[:8]}",
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
        }


def _cloud(base: str) -> dict[str, Any]:
    """One cloud in the 2020-06-01/2022-09-01 shape, every endpoint on the simulator."""
    return {
        "name": CLOUD_NAME,
        "portal": base,
        "authentication": {
            "loginEndpoint": base,
            "audiences": [base],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "resourceManager": base,
        "gallery": base,
        "graph": base,
        "graphAudience": base,
        "microsoftGraphResourceId": base,
        "media": base,
        "batch": base,
        "sqlManagement": base,
        "activeDirectoryDataLake": base,
        "vmImageAliasDoc": f"{base}metadata/vm-image-aliases",
        "suffixes": {
            "storage": "core.vmgen.test",
            "keyVaultDns": "vault.vmgen.test",
            "sqlServerHostname": "database.vmgen.test",
            "acrLoginServer": "azurecr.vmgen.test",
        },
    }
