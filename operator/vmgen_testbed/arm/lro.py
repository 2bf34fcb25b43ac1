"""ARM long-running operations as the Azure SDK polls them.

A POST such as powerOff answers 202 with two ABSOLUTE URLs built from the request's own host and port:
`Azure-AsyncOperation` (polled for `{"status": "InProgress"|"Succeeded"|"Failed"}`) and `Location`
(202 while running, then 200 with the operation's result, which the SDK fetches once at the end of a
POST). A PUT answers 201/202 with the resource in `Creating` and an `Azure-AsyncOperation` URL; the SDK's
final GET reads the resource itself. A relative or wrong-host URL would send the SDK elsewhere, hence
`urls()` takes the base URL from the incoming request.

The status body follows Compute's shape (`name`, `status`, `startTime`, `endTime`, `error`, and for
runCommand `properties.output`), which also satisfies the published `OperationStatusResult`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Operation", "iso"]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Operation:
    name: str  # simulator operation name, e.g. "powerOff"
    subscription_id: str
    location: str
    provider: str = "Microsoft.Compute"  # whose locations/{location}/operations path polls it
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "InProgress"  # InProgress | Succeeded | Failed
    ended: datetime | None = None
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None  # what the Location URL returns once done (runCommand)

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def succeed(self, result: dict[str, Any] | None = None) -> None:
        self.status, self.result, self.ended = "Succeeded", result, datetime.now(UTC)

    def fail(self, code: str, message: str) -> None:
        self.status, self.error, self.ended = "Failed", {"code": code, "message": message}, datetime.now(UTC)

    def status_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"startTime": iso(self.started), "status": self.status, "name": self.id}
        if self.ended is not None:
            body["endTime"] = iso(self.ended)
        if self.error is not None:
            body["error"] = self.error
        if self.result is not None:
            body["properties"] = {"output": self.result}
        return body

    def urls(self, base_url: str, api_version: str) -> tuple[str, str]:
        """(Azure-AsyncOperation, Location), absolute, on the host the client used."""
        path = (
            f"{base_url}/subscriptions/{self.subscription_id}/providers/{self.provider}/locations/"
            f"{self.location}/operations/{self.id}"
        )
        return (
            f"{path}?p={uuid.uuid4()}&api-version={api_version}",
            f"{path}?p={uuid.uuid4()}&monitor=true&api-version={api_version}",
        )


def retry_after(seconds: int | None) -> dict[str, str]:
    """The Retry-After header of an LRO answer: none, as Azure Compute sends, unless a test asks for one."""
    return {} if seconds is None else {"Retry-After": str(seconds)}
