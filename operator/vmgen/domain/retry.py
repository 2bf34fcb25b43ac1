"""How long to wait before retrying after a transient error.

Capped exponential backoff keeps a throttled subscription from being hammered by many resources;
a server's Retry-After wins when it is known (ARM sends it with 429), still under the cap so that a
bogus header cannot park a resource for hours. Pure, so tests need no clock.
"""

from __future__ import annotations

BASE_SECONDS = 1.0
CAP_SECONDS = 300.0


def backoff(failures: int, *, retry_after: float | None = None) -> float:
    """Delay before retry number `failures` (1 for the first retry)."""
    if retry_after is not None:
        return min(CAP_SECONDS, max(0.0, retry_after))
    return min(CAP_SECONDS, BASE_SECONDS * 2.0 ** max(0, failures - 1))


FORBIDDEN_RETRIES = 5
"""A 403 from the Kubernetes API is retried this many times in a row (1 + 2 + 4 + 8 + 16 s) before it
fails the job. A kube-apiserver that has just started (after an outage or an upgrade) serves requests
before its RBAC caches have synced and answers 403 to every ServiceAccount meanwhile: one such answer
must not end a job for good. A real RBAC gap still ends it, about half a minute later."""

KUBERNETES_CAP_SECONDS = 30.0
"""The longest wait between passes while the API server does not answer: each try costs one refused
connection, and a job should resume within half a minute of the server's return, not five minutes."""


def forbidden_is_final(retries: int) -> bool:
    """Whether a 403 from the Kubernetes API ends the job, given the step's transient failures in a row."""
    return retries >= FORBIDDEN_RETRIES


def kubernetes_backoff(failures: int) -> float:
    """Delay before pass number `failures` when the API server did not take the last one."""
    return min(KUBERNETES_CAP_SECONDS, backoff(failures))
