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
