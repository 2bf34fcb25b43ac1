"""Fault injection: make the next N matching ARM requests fail the way Azure fails.

Retry code is only proven by the failures it meets: 429 with and without `Retry-After` (azure-core retries
a POST 429 only when the header is there), 5xx, a long-running operation that ends `Failed` (the SDK then
raises with the poll's 200 status, so callers must classify by `error.code`), and a connection closed
without an answer (an uncertain outcome).

A fault matches by operation name and HTTP method (None matches any) and is used up after `count`
matches. `failed-operation` faults match only requests that start a long-running operation, so a GET in
between does not consume them. The queue itself is not locked: the world model calls it under its lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Fault", "FaultKind", "FaultQueue"]

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

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.count < 1:
            raise ValueError("a fault must match at least once (count >= 1)")

    def matches(self, operation: str, method: str) -> bool:
        return self.operation in (None, operation) and (
            self.method is None or self.method.upper() == method.upper()
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

    def take(self, operation: str, method: str, *, failed_operation: bool) -> Fault | None:
        """Use up one match of the first pending fault for this request, if any.

        `failed_operation=False` looks for faults that replace the answer (429, 5xx, drop);
        `True` for a fault that lets the operation start and then fail."""
        for entry in self._pending:
            fault = entry.fault
            if (fault.kind == "failed-operation") == failed_operation and fault.matches(operation, method):
                entry.remaining -= 1
                if entry.remaining == 0:
                    self._pending.remove(entry)
                return fault
        return None
