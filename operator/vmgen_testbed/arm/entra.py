"""A fake Microsoft Entra ID token endpoint, served by the simulator itself (authority = its base URL).

The operator authenticates with a service principal (client credentials), through the real
`azure.identity` credentials, so the simulator needs what they call: OIDC discovery
(`/{tenant}/v2.0/.well-known/openid-configuration`, used by MSAL in the sync credentials) and the token
endpoint (`/{tenant}/oauth2/v2.0/token`, used directly by the async `ClientSecretCredential`). Tokens are
opaque random strings that only this simulator accepts; ARM answers any other bearer token with
`InvalidAuthenticationToken`.

Traps avoided: azure-identity refuses a non-https authority, hence TLS; MSAL wants instance discovery
at `/common/discovery/instance`, which `disable_instance_discovery=True` skips; a wrong secret must be
Entra's 401 `invalid_client` / AADSTS7000215 so that it surfaces as `ClientAuthenticationError`;
secrets never enter the request log.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from aiohttp import web

from vmgen_testbed.arm.errors import entra_error

__all__ = ["Entra", "redacted"]

TOKEN_SECONDS = 3599


class Entra:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[tuple[str, str], str] = {}  # (tenant, client id) -> secret
        self._tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds)

    def add_service_principal(self, tenant_id: str, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._secrets[(tenant_id.lower(), client_id.lower())] = client_secret

    def accepts(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.time()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(
            "/{tenant}/v2.0/.well-known/openid-configuration", self._discovery, name="openidConfiguration"
        )
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token, name="token")

    async def _discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"https://{request.host}/{tenant}"
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"].lower()
        form = await request.post()
        client_id = str(form.get("client_id", "")).lower()
        with self._lock:
            known_tenant = any(t == tenant for t, _ in self._secrets)
            expected = self._secrets.get((tenant, client_id))
        if form.get("grant_type") != "client_credentials":
            return _refuse(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        if not known_tenant:
            return _refuse(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )
        if expected is None:
            return _refuse(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may "
                "have sent your authentication request to the wrong tenant.",
            )
        if not secrets.compare_digest(str(form.get("client_secret", "")), expected):
            return _refuse(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )
        if not str(form.get("scope", "")).endswith("/.default"):
            return _refuse(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope', '')} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = time.time() + TOKEN_SECONDS
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "ext_expires_in": TOKEN_SECONDS,
                "access_token": token,
            }
        )


def redacted(body: Any) -> Any:
    """A token response as the request log keeps it: without the token."""
    if isinstance(body, dict) and "access_token" in body:
        return {**body, "access_token": "<redacted>"}
    return body


def _refuse(status: int, error: str, aadsts: int, description: str) -> web.Response:
    return web.json_response(entra_error(error, aadsts, description), status=status)
