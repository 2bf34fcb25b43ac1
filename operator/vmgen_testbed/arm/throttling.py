"""Azure Compute's request throttling: token buckets per resource and per subscription per region.

Source: learn.microsoft.com "Compute throttling limits" (MicrosoftDocs/azure-docs,
articles/virtual-machines/compute-throttling-limits.md, ms.date 05/27/2024) and "Troubleshooting API
throttling errors". Compute keeps one bucket per policy for each resource and one per subscription and
region. A bucket starts full (its maximum capacity), each request takes one token from both, and both
refill continuously at the policy's rate, never above capacity. A request that finds either bucket empty
is refused and takes no token. The numbers, tokens per minute (refill rate / maximum capacity):

| policy (header name) | operations of vmgen                         | resource  | subscription |
|----------------------|---------------------------------------------|-----------|--------------|
| PutVM                | (create VM; images, galleries: see below)   | 4 / 12    | 500 / 1500   |
| UpdateVM             | powerOff, start, generalize, runCommand     | 4 / 12    | 500 / 1500   |
| DeleteVM             | deallocate                                  | 4 / 12    | 500 / 1500   |
| LowCostGet           | get VM, instance view                       | 12 / 36   | 8000 / 24000 |
| HighCostGet          | (list VMs; not served)                      | -         | 300 / 900    |
| GetOperation         | status and result of async operations       | 15 / 45   | 5000 / 15000 |
| GuestPatch           | (assess / install patches; not served)      | 2 / 6     | 200 / 600    |

Images, snapshots and galleries are not in the published tables (snapshots are the Disk RP's, galleries the
Gallery RP's, whose recorded headers, e.g. `Microsoft.Compute/CreateUpdateDisks3Min;999`, show limits of
their own and larger). The simulator puts their PUTs under PutVM and their GETs under LowCostGet: stricter
than Azure, so a client that stays under these stays under Azure's.

Every answer of a throttled operation carries `x-ms-ratelimit-remaining-resource` with the tokens left,
resource bucket first, in Compute's format `Microsoft.Compute/<policy>;<count>` comma-separated. Azure
named the buckets of its older fixed-window policy by window (`LowCostGet3Min;3994,LowCostGet30Min;31982`
in azure-sdk-for-python's sdk/compute/azure-mgmt-compute/tests/recordings/
test_mgmt_compute.test_virtual_machines_operations.yaml); for the token buckets the simulator names them
`<policy>Resource` and `<policy>SubscriptionMaximum`. An empty bucket answers 429 with `Retry-After`
(whole seconds until a token is back) and Compute's body: code `OperationNotAllowed`, one detail
`TooManyRequests` whose target is the empty bucket and whose message is a JSON string.

Throttling is OFF by default (existing tests make hundreds of calls to one VM). `time_scale` makes a
simulated minute pass in 60/time_scale seconds, for fast tests; the clock is injected so a test can step
time exactly instead of sleeping. Operation-status polls count against the resource whose operation they
poll (`note_operation`), as Compute's per-resource GetOperation bucket does.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vmgen_testbed.arm import errors
from vmgen_testbed.arm.scope import Scope

__all__ = ["OPERATION_POLICY", "POLICIES", "Bucket", "Policy", "Throttle", "Throttled"]

Clock = Callable[[], float]
PROVIDER = "Microsoft.Compute"


@dataclass(frozen=True)
class Bucket:
    refill_per_minute: float
    capacity: int


@dataclass(frozen=True)
class Policy:
    name: str
    resource: Bucket | None  # None: only the subscription bucket applies (HighCostGet)
    subscription: Bucket


POLICIES = {
    policy.name: policy
    for policy in (
        Policy("PutVM", Bucket(4, 12), Bucket(500, 1500)),
        Policy("UpdateVM", Bucket(4, 12), Bucket(500, 1500)),
        Policy("DeleteVM", Bucket(4, 12), Bucket(500, 1500)),
        Policy("LowCostGet", Bucket(12, 36), Bucket(8000, 24000)),
        Policy("HighCostGet", None, Bucket(300, 900)),
        Policy("GetOperation", Bucket(15, 45), Bucket(5000, 15000)),
        Policy("GuestPatch", Bucket(2, 6), Bucket(200, 600)),
    )
}
OPERATION_POLICY = {
    "get": "LowCostGet",
    "instanceView": "LowCostGet",
    "powerOff": "UpdateVM",
    "start": "UpdateVM",
    "generalize": "UpdateVM",
    "runCommand": "UpdateVM",
    "deallocate": "DeleteVM",
    "operationStatus": "GetOperation",
    "operationResult": "GetOperation",
    **{
        f"create{kind}": "PutVM"
        for kind in ("Image", "Snapshot", "Gallery", "GalleryImage", "GalleryImageVersion")
    },
    **{
        f"get{kind}": "LowCostGet"
        for kind in ("Image", "Snapshot", "Gallery", "GalleryImage", "GalleryImageVersion")
    },
}


class Throttled(errors.ArmError):
    """Compute's 429: OperationNotAllowed with a TooManyRequests detail naming the empty bucket."""

    def __init__(
        self, *, bucket: str, capacity: int, retry_after: int, remaining: str, now: datetime
    ) -> None:
        super().__init__(
            429,
            "OperationNotAllowed",
            "The server rejected the request because too many requests have been received for this "
            "subscription.",
            headers={"Retry-After": str(retry_after), "x-ms-ratelimit-remaining-resource": remaining},
        )
        self.bucket = bucket
        self.violation = {
            "operationGroup": bucket,
            "startTime": now.isoformat(),
            "endTime": (now + timedelta(seconds=retry_after)).isoformat(),
            "allowedRequestCount": capacity,
            "measuredRequestCount": capacity + 1,
        }

    def detail(self) -> dict[str, Any]:
        return {
            **super().detail(),
            "details": [
                {"code": "TooManyRequests", "target": self.bucket, "message": json.dumps(self.violation)}
            ],
        }


@dataclass
class _Level:
    tokens: float
    updated: float


class Throttle:
    """Thread-safe: the simulator's handlers and the Python control surface share it."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.enabled = False
        self.time_scale = 1.0
        self._levels: dict[tuple[str, ...], _Level] = {}
        self._polled: dict[str, str] = {}  # operation URL path (lower) -> resource whose operation it is

    def configure(
        self, *, enabled: bool | None = None, time_scale: float | None = None, clock: Clock | None = None
    ) -> None:
        """Change the settings and start every bucket full again."""
        if time_scale is not None and time_scale <= 0:
            raise ValueError(f"time_scale must be positive, not {time_scale}")
        with self._lock:
            self.enabled = self.enabled if enabled is None else bool(enabled)
            self.time_scale = self.time_scale if time_scale is None else float(time_scale)
            self._clock = clock or self._clock
            self._levels.clear()

    def settings(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "time_scale": self.time_scale,
            "policies": {
                name: {
                    "resource": None if p.resource is None else vars(p.resource),
                    "subscription": vars(p.subscription),
                }
                for name, p in POLICIES.items()
            },
            "operations": OPERATION_POLICY,
        }

    def note_operation(self, operation_path: str, resource: str) -> None:
        """Polls of this async operation count against the resource that started it."""
        with self._lock:
            self._polled[operation_path.lower()] = resource

    def admit(self, operation: str, scope: Scope) -> str | None:
        """Take a token for this request, or raise Throttled. Returns the header value to send."""
        name = OPERATION_POLICY.get(operation)
        if name is None or not self.enabled:
            return None
        policy = POLICIES[name]
        with self._lock:
            now = self._clock()
            resource = self._polled.get(scope.resource, scope.resource)
            keyed: list[tuple[str, Bucket, _Level]] = []
            if policy.resource is not None and resource:
                keyed.append(
                    (
                        f"{name}Resource",
                        policy.resource,
                        self._level(("r", name, resource), policy.resource, now),
                    )
                )
            subscription = ("s", name, scope.subscription, scope.location)
            keyed.append(
                (
                    f"{name}SubscriptionMaximum",
                    policy.subscription,
                    self._level(subscription, policy.subscription, now),
                )
            )
            empty = [(label, bucket, level) for label, bucket, level in keyed if level.tokens < 1]
            if not empty:
                for _, _, level in keyed:
                    level.tokens -= 1
            remaining = ",".join(
                f"{PROVIDER}/{label};{math.floor(level.tokens)}" for label, _, level in keyed
            )
            if not empty:
                return remaining
            label, bucket, _ = empty[0]
            wait = max(
                (1 - level.tokens) / b.refill_per_minute * 60 / self.time_scale for _, b, level in empty
            )
        raise Throttled(
            bucket=label,
            capacity=bucket.capacity,
            retry_after=max(1, math.ceil(wait)),
            remaining=remaining,
            now=datetime.now(UTC),
        )

    def _level(self, key: tuple[str, ...], bucket: Bucket, now: float) -> _Level:
        level = self._levels.get(key)
        if level is None:
            level = self._levels[key] = _Level(float(bucket.capacity), now)
            return level
        minutes = (now - level.updated) * self.time_scale / 60
        level.tokens = min(float(bucket.capacity), level.tokens + minutes * bucket.refill_per_minute)
        level.updated = now
        return level
