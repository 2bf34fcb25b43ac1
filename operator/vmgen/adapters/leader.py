"""Lease-based leader election for `vmgen run` with more than one replica (domain/election.py decides).

`LeaderElector.acquire()` returns once this process holds the Lease `<operator namespace>/<name>`;
`keep()` renews it every `duration / 3` and returns only when leadership is lost (renewal refused, or
not confirmed within the renew deadline); `release()` empties the holder on a clean stop so a standby
takes over at once instead of after a lease duration. A standby answers its liveness probe with a
small aiohttp endpoint (`StandbyProbe`) on the address kopf's probe will use once it leads, so a
waiting replica is alive, not restarted in a loop.

Traps avoided:
- Every write carries the resourceVersion read: a lost race is a 409, read again, decide again.
- Times in the Lease are RFC 3339 with microseconds (MicroTime); `leaseDurationSeconds` is an integer.
- Leadership is judged by our monotonic clock, never by comparing another machine's renewTime.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from kubernetes.client.exceptions import ApiException

from vmgen.adapters import kube
from vmgen.domain import election, errors

__all__ = ["LeaderElector", "StandbyProbe", "identity"]

_log = logging.getLogger("vmgen.leader")


def identity() -> str:
    """Unique per process: the pod (or host) name plus a random suffix, as client-go does."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LeadershipLost(Exception):
    pass


class LeaderElector:
    def __init__(
        self, api: kube.KubeApi, *, namespace: str, name: str, duration: float, me: str | None = None
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self._duration = duration
        self.me = me or identity()
        self._seen: election.Seen | None = None
        self._renewed_at = 0.0

    @property
    def retry_period(self) -> float:
        return max(0.2, self._duration / 3)

    async def acquire(self) -> None:
        announced = False
        while True:
            try:
                if await self._try():
                    _log.info("Leading: holding Lease %s/%s as %s", self._namespace, self._name, self.me)
                    return
            except errors.VmgenError as exc:
                _log.warning("Leader election: %s", exc.message)
            if not announced and self._seen is not None:
                _log.info(
                    "Standing by: Lease %s/%s is held by %s",
                    self._namespace,
                    self._name,
                    self._seen.record.holder,
                )
                announced = True
            await asyncio.sleep(self.retry_period)

    async def keep(self) -> None:
        """Renew until leadership is lost; then return (the caller must stop acting at once)."""
        deadline = election.renew_deadline(self._duration)
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                if not await self._try():
                    _log.error(
                        "Leadership lost: Lease %s/%s is held by another replica", self._namespace, self._name
                    )
                    return
            except errors.VmgenError as exc:
                _log.warning("Renewing the leader Lease failed: %s", exc.message)
            if time.monotonic() - self._renewed_at > deadline:
                _log.error("Leadership lost: the leader Lease was not renewed for %.1fs", deadline)
                return

    async def release(self) -> None:
        try:
            lease = await self._read()
            if lease is None or (lease.spec and lease.spec.holder_identity) != self.me:
                return
            body = self._body(lease, holder=None)
            await self._write(body, replace=True)
            _log.info("Released the leader Lease %s/%s", self._namespace, self._name)
        except (errors.VmgenError, ApiException) as exc:  # best effort: it expires anyway
            _log.warning("Releasing the leader Lease failed: %s", getattr(exc, "message", exc))

    async def _try(self) -> bool:
        """One read and at most one write; True when we hold the Lease afterwards."""
        now = time.monotonic()
        lease = await self._read()
        current = _record(lease)
        self._seen = election.observe(current, self._seen, now=now)
        decision = election.decide(self.me, current, self._seen, now=now)
        if decision is election.Decision.WAIT:
            return False
        try:
            if decision is election.Decision.CREATE:
                await self._write(self._body(None, holder=self.me), replace=False)
            else:
                await self._write(self._body(lease, holder=self.me), replace=True)
        except ApiException as exc:
            if exc.status in (404, 409):  # another replica wrote first: decide again next round
                return False
            raise errors.KubernetesUnavailable(f"Writing the leader Lease failed ({exc.status}).") from None
        self._renewed_at = now
        return True

    async def _read(self) -> Any:
        try:
            return await self._api.call(
                f"read Lease {self._namespace}/{self._name}",
                self._api.coordination.read_namespaced_lease,
                self._name,
                self._namespace,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise errors.KubernetesUnavailable(f"Reading the leader Lease failed ({exc.status}).") from None

    async def _write(self, body: dict[str, Any], *, replace: bool) -> None:
        what = f"write Lease {self._namespace}/{self._name}"
        if replace:
            await self._api.call(
                what, self._api.coordination.replace_namespaced_lease, self._name, self._namespace, body
            )
        else:
            await self._api.call(what, self._api.coordination.create_namespaced_lease, self._namespace, body)

    def _body(self, lease: Any, *, holder: str | None) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = lease.spec if lease is not None else None
        previous = spec.holder_identity if spec else None
        transitions = (spec.lease_transitions or 0) if spec else 0
        acquire = spec.acquire_time if spec else None
        if holder is not None and previous != holder:
            transitions, acquire = transitions + (1 if lease is not None else 0), now
        metadata: dict[str, Any] = {
            "name": self._name,
            "namespace": self._namespace,
            "labels": {"app.kubernetes.io/managed-by": "vmgen"},
        }
        if lease is not None:
            metadata["resourceVersion"] = lease.metadata.resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": max(1, math.ceil(self._duration)),
                "acquireTime": _time(acquire) if acquire is not None else now,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _record(lease: Any) -> election.LeaseRecord | None:
    if lease is None:
        return None
    spec = lease.spec
    return election.LeaseRecord(
        holder=(spec.holder_identity or None) if spec else None,
        renew_time=_time(spec.renew_time) if spec and spec.renew_time else None,
        duration=float(spec.lease_duration_seconds or 15) if spec else 15.0,
        transitions=(spec.lease_transitions or 0) if spec else 0,
    )


class StandbyProbe:
    """Answers GET <path> with 200 while this replica stands by (kopf serves the probe once it leads)."""

    def __init__(self, url: str | None) -> None:
        self._url = urlparse(url) if url else None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if self._url is None:
            return
        app = web.Application()
        app.router.add_get(self._url.path or "/", self._healthy)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._url.hostname or "0.0.0.0", self._url.port or 80)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthy(self, _request: web.Request) -> web.Response:
        return web.json_response({"standby": True})
