"""The Kubernetes API as the workflow needs it: Secrets, per-VM Leases, the status subresource.

Implements `ports.SecretReader`, `ports.VmLocks` and `ports.StatusWriter` with the official
(synchronous) `kubernetes` client, each call run in one of its `WORKERS` threads (the event loop never
blocks).
Errors leave this module only as `vmgen.domain.errors` classes: 403 -> KubernetesForbidden (an RBAC
gap a person must fix), 429/5xx/connection errors -> KubernetesUnavailable (retried).

Traps avoided:
- The client reads KUBECONFIG when it is imported; `load_configuration()` reads the variable when it
  is called and fills a private `Configuration` (in-cluster service account first), shared by kopf's
  login and these adapters, never the client's global default.
- `ApiException.__str__` carries HTTP headers and the whole response body; messages here use only the
  status code and the API server's `message`, so nothing of a Secret can reach status or logs.
- A Lease whose holder no longer exists (deleted VMGeneralization) or has finished (Succeeded/Failed)
  is stale: the next claimant takes it over, so a crash between the final status write and the
  release, or a deletion while the operator was down, never blocks a VM forever. All Lease writes
  carry the resourceVersion read, so two claimants racing cannot both win.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import kubernetes.client
import kubernetes.config
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from vmgen.domain import api, errors, model, ports, secrets

GROUP = api.GROUP
VERSION = api.VERSION
PLURAL = api.PLURAL
REQUEST_TIMEOUT = (5, 30)
"""Seconds to connect and to read for every Kubernetes API call the operator makes itself."""
WORKERS = 16
"""Threads (and pooled connections) for the Kubernetes client's blocking calls. asyncio's default pool
has cpu_count + 4 threads (6 on 2 cores) and urllib3 keeps cpu_count * 5 connections: with hundreds of
jobs, every pass's Lease, Secret and status calls queued there for seconds (docs/benchmarks.md)."""
LEASE_PREFIX = api.LEASE_PREFIX
VM_ID_ANNOTATION = api.VM_ID_ANNOTATION
_FINISHED = ("Succeeded", "Failed")

T = TypeVar("T")


def load_configuration() -> kubernetes.client.Configuration:
    """In-cluster service account when running in a pod, else the kubeconfig named by KUBECONFIG now."""
    configuration = kubernetes.client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubernetes.config.load_incluster_config(client_configuration=configuration)
        return configuration
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    kubernetes.config.load_kube_config(
        config_file=paths[0] if paths else None, client_configuration=configuration, persist_config=False
    )
    return configuration


def lease_name(vm: model.VmResourceId) -> str:
    """ARM ids are case-insensitive; Lease names are short DNS labels."""
    return LEASE_PREFIX + hashlib.sha256(vm.lower().encode()).hexdigest()[:16]


class KubeApi:
    """One API client shared by the adapters; blocking calls go to worker threads."""

    def __init__(self, configuration: kubernetes.client.Configuration) -> None:
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, WORKERS)
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="vmgen-kube")
        self.client = kubernetes.client.ApiClient(configuration)
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.coordination = kubernetes.client.CoordinationV1Api(self.client)
        self.custom = kubernetes.client.CustomObjectsApi(self.client)

    async def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` in a thread; translate transport failures and 401/403/429/5xx. Other statuses
        (404, 409) are re-raised as ApiException for the caller to interpret."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)  # a hung call must not stall the pass
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, functools.partial(fn, *args, **kwargs)
            )
        except ApiException as exc:
            if exc.status in (401, 403):
                raise errors.KubernetesForbidden(
                    f"The Kubernetes API refused to let the operator {what} ({exc.status}: {_message(exc)});"
                    " check the operator's RBAC (Role/ClusterRole of its ServiceAccount)."
                ) from None
            if exc.status in (404, 409, 422):
                raise
            raise errors.KubernetesUnavailable(
                f"The Kubernetes API failed to {what} ({exc.status}: {_message(exc)})."
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.KubernetesUnavailable(
                f"The Kubernetes API is unreachable ({what}): {type(exc).__name__}."
            ) from None

    def close(self) -> None:
        self.client.close()
        self._pool.shutdown(wait=False)


class SecretReader:
    """`ports.SecretReader`: data of a Secret in the resource's own namespace, base64-decoded."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api

    async def ssh_private_key(self, namespace: str, name: str) -> bytes:
        return secrets.ssh_private_key(await self.read(namespace, name), namespace=namespace, name=name)

    async def azure_credentials(self, namespace: str, name: str) -> ports.AzureCredentials:
        return secrets.azure_credentials(await self.read(namespace, name), namespace=namespace, name=name)

    async def basic_auth(self, namespace: str, name: str) -> tuple[str, str]:
        return secrets.basic_auth(await self.read(namespace, name), namespace=namespace, name=name)

    async def ca_bundle(self, namespace: str, name: str) -> str:
        return secrets.ca_bundle(await self.read(namespace, name), namespace=namespace, name=name)

    async def read(self, namespace: str, name: str) -> Mapping[str, bytes]:
        try:
            secret = await self._api.call(
                f"read Secret {namespace}/{name}", self._api.core.read_namespaced_secret, name, namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                raise errors.SecretNotFound(
                    f"Secret {namespace}/{name} does not exist; create it in the namespace of this"
                    " VMGeneralization."
                ) from None
            raise errors.KubernetesUnavailable(
                f"Reading Secret {namespace}/{name} failed ({exc.status})."
            ) from None
        return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}


class LeaseLocks:
    """`ports.VmLocks`: one coordination.k8s.io/v1 Lease per VM in the operator's namespace."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self._api = api
        self._namespace = namespace

    async def acquire(self, vm: model.VmResourceId, holder: str) -> str | None:
        for _ in range(3):  # a lost race re-reads and decides again
            try:
                return await self._try_acquire(vm, holder)
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise errors.KubernetesUnavailable(
                        f"Claiming the Lease for {vm} failed ({exc.status})."
                    ) from None
        raise errors.KubernetesUnavailable(f"The Lease for {vm} keeps changing; trying again later.")

    async def _try_acquire(self, vm: model.VmResourceId, holder: str) -> str | None:
        name = lease_name(vm)
        lease = await self._read(name)
        if lease is None:
            await self._api.call(
                f"create Lease {self._namespace}/{name}",
                self._api.coordination.create_namespaced_lease,
                self._namespace,
                self._body(name, vm, holder),
            )
            return None
        current = lease.spec.holder_identity if lease.spec else None
        if current == holder:
            return None
        if current and not await self._stale(current):
            return str(current)
        body = self._body(name, vm, holder)
        body["metadata"]["resourceVersion"] = lease.metadata.resource_version
        await self._api.call(
            f"take over Lease {self._namespace}/{name}",
            self._api.coordination.replace_namespaced_lease,
            name,
            self._namespace,
            body,
        )
        return None

    async def release(self, vm: model.VmResourceId, holder: str) -> None:
        name = lease_name(vm)
        try:
            lease = await self._read(name)
            if lease is None or (lease.spec.holder_identity if lease.spec else None) != holder:
                return
            await self._api.call(
                f"delete Lease {self._namespace}/{name}",
                self._api.coordination.delete_namespaced_lease,
                name,
                self._namespace,
                body=kubernetes.client.V1DeleteOptions(
                    preconditions=kubernetes.client.V1Preconditions(
                        resource_version=lease.metadata.resource_version
                    )
                ),
            )
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone, or already someone else's: nothing to give up
                raise errors.KubernetesUnavailable(
                    f"Releasing the Lease for {vm} failed ({exc.status})."
                ) from None

    async def _read(self, name: str) -> Any:
        try:
            return await self._api.call(
                f"read Lease {self._namespace}/{name}",
                self._api.coordination.read_namespaced_lease,
                name,
                self._namespace,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def _stale(self, holder: str) -> bool:
        """The holding VMGeneralization is gone or finished (it would have released the Lease)."""
        namespace, _, name = holder.partition("/")
        try:
            body = await self._api.call(
                f"read VMGeneralization {holder}",
                self._api.custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
            )
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return bool((body.get("status") or {}).get("phase") in _FINISHED)

    def _body(self, name: str, vm: model.VmResourceId, holder: str) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": self._namespace,
                "labels": {"app.kubernetes.io/managed-by": "vmgen"},
                "annotations": {VM_ID_ANNOTATION: vm},
            },
            "spec": {"holderIdentity": holder, "acquireTime": now, "renewTime": now},
        }


class StatusWriter:
    """`ports.StatusWriter` for one VMGeneralization: JSON merge patch to its status subresource."""

    def __init__(self, api: KubeApi, *, namespace: str, name: str) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name

    async def patch_status(self, patch: Mapping[str, Any]) -> None:
        try:
            await self._api.call(
                f"patch the status of VMGeneralization {self._namespace}/{self._name}",
                self._api.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                self._namespace,
                PLURAL,
                self._name,
                {"status": dict(patch)},
            )
        except ApiException as exc:
            raise errors.KubernetesUnavailable(
                f"Patching the status of {self._namespace}/{self._name} failed"
                f" ({exc.status}: {_message(exc)})."
            ) from None


def _message(exc: ApiException) -> str:
    """The API server's own `message` from a Status body; never headers or other body content."""
    try:
        body = json.loads(exc.body or b"{}")
    except (TypeError, ValueError):
        return str(exc.reason or "")
    return str(body.get("message") or exc.reason or "") if isinstance(body, dict) else str(exc.reason or "")
