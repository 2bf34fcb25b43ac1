"""Kubernetes-style conditions and the timestamps status carries, as frozen values.

Conditions follow the Kubernetes API conventions: a PascalCase `reason`, `observedGeneration`, and a
`lastTransitionTime` that moves only when `status` flips (so `kubectl wait` and Argo CD see a stable
history). Timestamps are RFC 3339 UTC with "Z", to the second, whatever the machine's time zone.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)  # reads a trailing "Z" since Python 3.11
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str
    observed_generation: int | None
    last_transition_time: datetime | None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Condition:
        generation = body.get("observedGeneration")
        statuses = {s.value: s for s in ConditionStatus}
        return cls(
            type=str(body.get("type", "")),
            status=statuses.get(str(body.get("status")), ConditionStatus.UNKNOWN),
            reason=str(body.get("reason") or ""),
            message=str(body.get("message") or ""),
            observed_generation=generation if isinstance(generation, int) else None,
            last_transition_time=parse_time(body.get("lastTransitionTime")),
        )

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "status": self.status.value,
            "reason": self.reason,
            "message": self.message,
        }
        if self.observed_generation is not None:
            body["observedGeneration"] = self.observed_generation
        if self.last_transition_time is not None:
            body["lastTransitionTime"] = format_time(self.last_transition_time)
        return body
