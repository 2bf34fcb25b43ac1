"""Small helpers shared by the ARM contract tests."""

from __future__ import annotations

from azure.core.exceptions import HttpResponseError

from vmgen_testbed.arm import schema
from vmgen_testbed.arm.state import RequestRecord


def error_code(error: HttpResponseError) -> str:
    """The ARM `error.code` of a failed call (what callers must classify by)."""
    assert error.error is not None, f"no ARM error body in {error!r}"
    return str(error.error.code)


def error_message(error: HttpResponseError) -> str:
    assert error.error is not None, f"no ARM error body in {error!r}"
    return str(error.error.message)


def assert_logged_bodies_match_azure(records: list[RequestRecord]) -> set[str]:
    """Every ARM response body in `records` validates against Azure's published definition; returns the
    definitions checked."""
    checked = set()
    for record in records:
        if record.api != "arm" or record.response_body is None:
            continue
        definition = schema.response_definition(record.operation, record.status or 0)
        assert definition is not None, f"no schema for {record.operation} {record.status}"
        schema.validate(definition, record.response_body)
        checked.add(definition)
    return checked
