"""Fault injection: make the next N matching ARM requests fail the way Azure fails.

Retry code is only proven by the failures it meets: 429 with and without `Retry-After` (azure-core retries
a POST 429 only when the header is there), 5xx, a long-running operation that ends `Failed` (the SDK then
raises with the poll's 200 status, so callers must classify by `error.code`), and a connection closed
without an answer (an uncertain outcome).

A fault matches by operation name, HTTP method, VM name and resource name (None matches any) and is used
up after `count` matches. `resource` scopes a fault to a resource that is not a VM (a snapshot, an image,
a gallery): any segment of the path equal to it, compared as ARM compares names. A poll of a long-running
operation is matched against the path that started the operation (server.py), so a poll fault scoped to
`vm=` lands on that VM's polls only. The VM is matched exactly, by path segment (`names_vm`): a substring
test on `/virtualMachines/vm-1` would also hit `vm-12`, so one test's faults could land on another VM's
requests.
`failed-operation` faults match only requests that start a long-running operation, so a GET in between
does not consume them. The queue itself is not locked: the world model calls it under its lock.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

__all__ = ["Fault", "FaultKind", "FaultQueue", "names_vm"]

FaultKind = Literal["429", "429-retry-after", "500", "502", "503", "failed-operation", "drop"]
KINDS: tuple[FaultKind, ...] = ("429", "429-retry-after", "500", "502", "503", "failed-operation", "drop")


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    operation: str | None = None
    method: str | None = None
    count: int = 1
    retry_after: int = 1
    error_code: str = "InternalExecutionError"
    vm: str | None = None  # a VM name: only requests on that VM (and its sub-resources) match
    resource: str | None = None  # a resource name: only requests whose path has it as a segment match

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.count < 1:
            raise ValueError("a fault must match at least once (count >= 1)")

    def matches(self, operation: str, method: str, path: str) -> bool:
        return (
            self.operation in (None, operation)
            and (self.method is None or self.method.upper() == method.upper())
            and (self.vm is None or names_vm(path, self.vm))
            and (self.resource is None or self.resource.lower() in path.lower().split("/"))
        )


def names_vm(path: str, vm_name: str) -> bool:
    """Whether an ARM path is about exactly this VM: `.../virtualMachines/<name>` ending the path or
    followed by `/`, compared case-insensitively as ARM compares names."""
    segments = path.lower().split("/")
    return any(
        segment == "virtualmachines" and following == vm_name.lower()
        for segment, following in itertools.pairwise(segments)
    )


@dataclass
class _Pending:
    fault: Fault
    remaining: int


class FaultQueue:
    def __init__(self) -> None:
        self._pending: list[_Pending] = []

    def add(self, fault: Fault) -> None:
        self._pending.append(_Pending(fault, fault.count))

    def clear(self) -> None:
        self._pending.clear()

    def take(self, operation: str, method: str, path: str, *, failed_operation: bool) -> Fault | None:
        """Use up one match of the first pending fault for this request, if any.

        `path` is the request's path (or, for an operation finishing later, the resource id it acts
        on). `failed_operation=False` looks for faults that replace the answer (429, 5xx, drop);
        `True` for a fault that lets the operation start and then fail."""
        for entry in self._pending:
            fault = entry.fault
            if (fault.kind == "failed-operation") == failed_operation and fault.matches(
                operation, method, path
            ):
                entry.remaining -= 1
                if entry.remaining == 0:
                    self._pending.remove(entry)
                return fault
        return None
