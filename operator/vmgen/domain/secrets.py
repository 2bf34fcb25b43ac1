"""What vmgen needs from a Secret's data, and the message a person gets when it is not there.

The adapters read Secrets (kubernetes client); these pure functions turn the decoded data into typed
values, so the Kubernetes adapter and the unit-test fakes give the same errors with the same words.
Messages name the Secret and the key, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping

from vmgen.domain import errors, ports

SSH_KEY = "ssh-privatekey"
AZURE_KEYS = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
BASIC_AUTH_KEYS = ("username", "password")
CA_KEY = "ca.crt"


def ssh_private_key(data: Mapping[str, bytes], *, namespace: str, name: str) -> bytes:
    key = data.get(SSH_KEY)
    if not key:
        raise errors.SecretKeyMissing(
            f"Secret {namespace}/{name} has no key {SSH_KEY}; create it"
            " with: kubectl create secret generic NAME --type=kubernetes.io/ssh-auth"
            " --from-file=ssh-privatekey=PATH"
        )
    return key


def azure_credentials(data: Mapping[str, bytes], *, namespace: str, name: str) -> ports.AzureCredentials:
    values = {key: _text(data, key, namespace=namespace, name=name) for key in AZURE_KEYS}
    return ports.AzureCredentials(
        tenant_id=values["AZURE_TENANT_ID"],
        client_id=values["AZURE_CLIENT_ID"],
        client_secret=values["AZURE_CLIENT_SECRET"],
    )


def basic_auth(data: Mapping[str, bytes], *, namespace: str, name: str) -> tuple[str, str]:
    """(username, password) of a kubernetes.io/basic-auth Secret; the password is kept as it is (no
    strip: spaces may be part of it)."""
    username = _text(data, "username", namespace=namespace, name=name)
    password = data.get("password", b"").decode("utf-8", errors="replace")
    if not password:
        raise errors.SecretKeyMissing(
            f"Secret {namespace}/{name} has no key password (or it is empty); create it with: kubectl"
            " create secret generic NAME --type=kubernetes.io/basic-auth --from-literal=username=USER"
            " --from-literal=password=..."
        )
    return username, password


def ca_bundle(data: Mapping[str, bytes], *, namespace: str, name: str) -> str:
    pem = _text(data, CA_KEY, namespace=namespace, name=name)
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise errors.SecretKeyMissing(
            f"Secret {namespace}/{name} key {CA_KEY} holds no PEM certificate (-----BEGIN CERTIFICATE-----)."
        )
    return pem


def _text(data: Mapping[str, bytes], key: str, *, namespace: str, name: str) -> str:
    value = data.get(key, b"").decode("utf-8", errors="replace").strip()
    if not value:
        raise errors.SecretKeyMissing(f"Secret {namespace}/{name} has no key {key} (or it is empty).")
    return value


def credential_hint(*, namespace: str, secret: str | None) -> str:
    """Appended to AzureAuthenticationFailed: which credential to fix, and where."""
    if secret:
        return (
            f" The credential comes from Secret {namespace}/{secret} (keys {', '.join(AZURE_KEYS)}):"
            " fix it there."
        )
    return (
        " spec.azure.credentialsSecretRef is not set, so the operator's own identity (workload identity)"
        " was used: fix that identity, or name a Secret in spec.azure.credentialsSecretRef."
    )
