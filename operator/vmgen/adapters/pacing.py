"""One ARM request budget per subscription, shared by every job of the process.

Azure Compute throttles with token buckets per resource and per subscription and region
(learn.microsoft.com, "Compute throttling limits"), and says how full they are on every answer:
`x-ms-ratelimit-remaining-resource: Microsoft.Compute/LowCostGetResource;35,Microsoft.Compute/
LowCostGetSubscriptionMaximum;23999`; ARM adds `x-ms-ratelimit-remaining-subscription-reads` (and
`-writes`, `-deletes`). A job that only reacts to 429s learns about the limit once it is too late, and
each job backing off on its own keeps the rest of the fleet spending the subscription's last tokens.

`Pacer` keeps, per subscription, the last count each bucket reported, estimates its refill from the
documented rates (below; in real time, so on a faster simulated clock it only errs on the slow side),
and takes a token locally for every request it lets through, so that concurrent jobs see one shared
count before the answers come back. A request whose buckets are nearly empty waits until the estimate
says a token is back; a 429's Retry-After pauses the whole subscription (or, when only a resource bucket
is empty, that resource), so every job of the subscription waits together. `PacingPolicy` is the
azure-core per-retry policy that asks the Pacer before each attempt and tells it each answer; one policy
object per client (azure-core chains policies through `next`, so one instance cannot serve two
pipelines), all sharing one Pacer. Concurrency is bounded too: requests in flight per subscription and in
all (`Config.max_requests_in_flight`, `max_subscription_requests_in_flight`).

Traps avoided:
- Which bucket a request spends is learnt from the answers to the same kind of request (method and
  resource type path, names stripped), not from a hand-kept table of URLs that would drift from Azure's.
- A bucket's capacity is not in the header; the highest count seen stands in for it (buckets start
  full), so the estimate never refills past it, and the reserve kept is a share of it.
- The per-region subscription bucket cannot be told from the URL (a VM's region is in its body): the
  budget is per subscription, which is stricter than Azure when one subscription spans regions.
- Azure counts the polls of an asynchronous operation against the resource that started it: the
  operation URLs an answer names (`Azure-AsyncOperation`, `Location`) are remembered with that
  resource, so a poll spends the VM's resource bucket here too (bounded memory: the oldest are dropped).
- Waiting happens before the global concurrency slot is taken, so one throttled subscription never
  holds up another.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy

__all__ = ["DOCUMENTED_PER_MINUTE", "Pacer", "PacingPolicy", "PacingStats"]

DOCUMENTED_PER_MINUTE: dict[str, tuple[float | None, float]] = {
    "PutVM": (4, 500),
    "UpdateVM": (4, 500),
    "DeleteVM": (4, 500),
    "LowCostGet": (12, 8000),
    "HighCostGet": (None, 300),
    "GetOperation": (15, 5000),
    "GuestPatch": (2, 200),
}
"""Refill per minute (per resource, per subscription and region), Compute throttling limits, 05/2024."""
ARM_PER_SECOND = {"reads": 12000 / 3600, "writes": 1200 / 3600, "deletes": 15000 / 3600}
"""ARM's documented hourly subscription limits, as a rate (the oldest and lowest of ARM's limits)."""
UNKNOWN_PER_SECOND = 1.0
"""A bucket the table does not know (e.g. Azure's `HighCostGet3Min`): one token a second."""
RESERVE_SHARE = 0.05
"""Of a subscription bucket's capacity, kept back: below it every job of the subscription waits."""
MAX_WAIT_SECONDS = 60.0
"""One sleep at most before looking again (a bogus header must not park a job for hours)."""
_RESOURCE_HEADER = "x-ms-ratelimit-remaining-resource"
_ARM_HEADER = "x-ms-ratelimit-remaining-subscription-"
_OPERATION_HEADERS = ("azure-asyncoperation", "location")
MAX_REMEMBERED_OPERATIONS = 4096


@dataclass
class PacingStats:
    """What the budget did, for benchmarks and metrics."""

    requests: int = 0
    throttled: int = 0
    """Answers 429 received."""
    waits: int = 0
    waited_seconds: float = 0.0


@dataclass
class _Bucket:
    rate: float
    """Tokens per second."""
    tokens: float = 0.0
    at: float = 0.0
    high: float = 0.0
    seen: bool = False
    """A bucket no answer has reported yet (a new resource of a known kind) holds nothing back."""
    paused_until: float = 0.0
    in_flight: int = 0
    """Requests let through on this bucket whose answers are still out: a count an answer reports does
    not include them yet, so they are taken off it."""

    def level(self, now: float) -> float:
        return min(self.high, self.tokens + max(0.0, now - self.at) * self.rate)

    def observe(self, count: int, now: float) -> None:
        self.high = max(self.high, float(count), 1.0)
        self.tokens, self.at, self.seen = float(count) - self.in_flight, now, True

    def take(self, now: float) -> None:
        self.in_flight += 1
        if self.seen:
            self.tokens, self.at = self.level(now) - 1, now

    def wait(self, need: float, now: float) -> float:
        """Seconds until `need` tokens are expected (never more than the bucket holds) and any pause
        is over."""
        paused = self.paused_until - now
        if not self.seen:
            return paused
        short = min(need, self.high) - self.level(now)
        return max(paused, short / self.rate if short > 0 else 0.0)


@dataclass
class _Budget:
    semaphore: asyncio.Semaphore
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    """Subscription-level buckets by label."""
    resources: dict[tuple[str, str], _Bucket] = field(default_factory=dict)
    """Resource-level buckets by (resource path, label)."""
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The labels the last answer to each kind of request reported: what that kind spends."""
    paused_until: float = 0.0


class Pacer:
    """The process's budgets, one per subscription; share one instance between every client."""

    def __init__(
        self,
        *,
        max_requests_in_flight: int = 64,
        max_subscription_requests_in_flight: int = 16,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._per_subscription = max_subscription_requests_in_flight
        self._global = asyncio.Semaphore(max_requests_in_flight)
        self._budgets: dict[str, _Budget] = {}
        self._origins: dict[str, str] = {}
        """Operation URL path -> the resource whose request started it (insertion-ordered, bounded)."""
        self.stats = PacingStats()

    def resource_of(self, path: str) -> str:
        """The resource a request's resource-level buckets belong to (an operation's: its starter's)."""
        return self._origins.get(path.lower()) or _resource(path)

    def policy(self) -> PacingPolicy:
        """A new azure-core policy object for one client's pipeline, spending this Pacer's budgets."""
        return PacingPolicy(self)

    @contextlib.asynccontextmanager
    async def slot(self, subscription: str, kind: str, resource: str) -> AsyncIterator[list[_Bucket]]:
        """Wait for the budget and a concurrency slot, then hold the slot while the request runs.
        Yields the buckets the request took a token from; hand them to `answered`."""
        budget = self._budget(subscription)
        async with budget.semaphore:
            taken = await self._admit(budget, kind, resource)
            try:
                async with self._global:
                    self.stats.requests += 1
                    yield taken
            finally:
                for bucket in taken:
                    bucket.in_flight = max(0, bucket.in_flight - 1)

    def answered(
        self,
        subscription: str,
        kind: str,
        resource: str,
        *,
        taken: list[_Bucket],
        status: int,
        headers: Mapping[str, str],
    ) -> None:
        """Feed the budget with what ARM said: the remaining counts, and a 429's Retry-After. `taken`
        (from `slot`) is emptied: this request is no longer in flight on those buckets."""
        for bucket in taken:
            bucket.in_flight = max(0, bucket.in_flight - 1)
        taken.clear()
        headers = {name.lower(): value for name, value in headers.items()}  # any transport's casing
        for name in _OPERATION_HEADERS:
            started = headers.get(name)
            if started:
                self._origins[urlparse(started).path.lower()] = resource
        while len(self._origins) > MAX_REMEMBERED_OPERATIONS:
            del self._origins[next(iter(self._origins))]
        budget = self._budget(subscription)
        now = self._clock()
        entries = _entries(headers)
        for label, count in entries:
            self._bucket(budget, label, resource).observe(count, now)
        if entries:
            budget.kinds[kind] = tuple(label for label, _ in entries)
        if status != 429:
            return
        self.stats.throttled += 1
        until = now + (_retry_after(headers) or 1.0)
        empty = [label for label, count in entries if count <= 0]
        if empty and all(_resource_level(label) for label in empty):
            for label in empty:
                self._bucket(budget, label, resource).paused_until = until
        else:  # the subscription (or something unnamed) is spent: every job of it waits
            budget.paused_until = max(budget.paused_until, until)

    async def _admit(self, budget: _Budget, kind: str, resource: str) -> list[_Bucket]:
        while True:
            now = self._clock()
            wanted = [(label, self._bucket(budget, label, resource)) for label in budget.kinds.get(kind, ())]
            wait = max(
                [budget.paused_until - now]
                + [b.wait(1.0 if _resource_level(label) else 1.0 + _reserve(b), now) for label, b in wanted]
            )
            if wait <= 0:
                for _label, bucket in wanted:
                    bucket.take(now)
                return [bucket for _label, bucket in wanted]
            wait = min(wait, MAX_WAIT_SECONDS)
            self.stats.waits += 1
            self.stats.waited_seconds += wait
            await self._sleep(wait)

    def _budget(self, subscription: str) -> _Budget:
        budget = self._budgets.get(subscription)
        if budget is None:
            budget = self._budgets[subscription] = _Budget(asyncio.Semaphore(self._per_subscription))
        return budget

    @staticmethod
    def _bucket(budget: _Budget, label: str, resource: str) -> _Bucket:
        if _resource_level(label):
            key = (resource, label)
            found = budget.resources.get(key)
            if found is None:
                found = budget.resources[key] = _Bucket(rate=_rate(label))
            return found
        found = budget.buckets.get(label)
        if found is None:
            found = budget.buckets[label] = _Bucket(rate=_rate(label))
        return found


class PacingPolicy(AsyncHTTPPolicy[Any, Any]):
    """azure-core per-retry policy: every attempt to ARM asks the shared budget first and feeds it after."""

    def __init__(self, pacer: Pacer) -> None:
        super().__init__()
        self._pacer = pacer

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        http = request.http_request
        path = urlparse(http.url).path
        subscription = _subscription(path)
        if subscription is None:  # /subscriptions, /tenants, metadata: not Compute's to budget
            return await self.next.send(request)
        kind, resource = _kind(http.method, path), self._pacer.resource_of(path)
        async with self._pacer.slot(subscription, kind, resource) as taken:
            response = await self.next.send(request)
            answer = response.http_response
            self._pacer.answered(
                subscription, kind, resource, taken=taken, status=answer.status_code, headers=answer.headers
            )
        return response


def _subscription(path: str) -> str | None:
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1].lower()
    return None


def _provider_tail(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return []
    index = len(lowered) - 1 - lowered[::-1].index("providers")
    return parts[index + 1 :]


def _kind(method: str, path: str) -> str:
    """`POST Microsoft.Compute/virtualMachines/deallocate`: the request without resource names."""
    tail = _provider_tail(path)
    if not tail:
        return f"{method.upper()} {path.lower()}"
    namespace, rest = tail[0], tail[1:]
    types = rest[0::2]
    action = rest[-1:] if len(rest) % 2 == 1 else []
    return f"{method.upper()} {namespace}/{'/'.join(types[: len(rest) // 2] + action)}".lower()


def _resource(path: str) -> str:
    """The resource a resource-level bucket belongs to (an action's target, an operation's own URL)."""
    tail = _provider_tail(path)
    rest = tail[1:]
    if rest and len(rest) % 2 == 1:
        return path.lower().rsplit("/", 1)[0]
    return path.lower()


def _entries(headers: Mapping[str, str]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for item in (headers.get(_RESOURCE_HEADER) or "").split(","):
        label, _, count = item.strip().rpartition(";")
        with contextlib.suppress(ValueError):
            found.append((label, int(count)))
    for name, value in headers.items():
        if name.lower().startswith(_ARM_HEADER):
            with contextlib.suppress(ValueError):
                found.append((f"arm/{name.lower().removeprefix(_ARM_HEADER)}", int(value)))
    return found


def _resource_level(label: str) -> bool:
    return label.endswith("Resource")


def _rate(label: str) -> float:
    if label.startswith("arm/"):
        return ARM_PER_SECOND.get(label.removeprefix("arm/"), UNKNOWN_PER_SECOND)
    name = label.rpartition("/")[2]
    for policy, (resource, subscription) in DOCUMENTED_PER_MINUTE.items():
        if name == f"{policy}Resource" and resource is not None:
            return resource / 60
        if name == f"{policy}SubscriptionMaximum":
            return subscription / 60
    return UNKNOWN_PER_SECOND


def _reserve(bucket: _Bucket) -> float:
    return max(1.0, bucket.high * RESERVE_SHARE)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if not value:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            with contextlib.suppress(TypeError, ValueError):
                return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    return None
