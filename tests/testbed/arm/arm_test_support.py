"""Small helpers shared by the ARM contract tests."""

from __future__ import annotations

from azure.core.exceptions import HttpResponseError


def error_code(error: HttpResponseError) -> str:
    """The ARM `error.code` of a failed call (what callers must classify by)."""
    assert error.error is not None, f"no ARM error body in {error!r}"
    return str(error.error.code)


def error_message(error: HttpResponseError) -> str:
    assert error.error is not None, f"no ARM error body in {error!r}"
    return str(error.error.message)
