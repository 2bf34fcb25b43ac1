"""The table that sorts Azure's answers into retry or give up."""

from __future__ import annotations

import pytest

from vmgen.domain import errors

ROWS = [
    pytest.param("AnotherOperationInProgress", 409, errors.AzureConflict, id="a busy VM is retried"),
    pytest.param("Conflict", 409, errors.AzureConflict, id="a concurrent Run Command is retried"),
    pytest.param("TooManyRequests", 429, errors.AzureThrottled, id="throttling by code is retried"),
    pytest.param(None, 429, errors.AzureThrottled, id="a bare 429 is throttling"),
    pytest.param(None, 502, errors.AzureUnavailable, id="a bare 502 is retried"),
    pytest.param(None, 408, errors.AzureUnavailable, id="a request timeout is retried"),
    pytest.param(
        "InternalExecutionError",
        200,
        errors.AzureUnavailable,
        id="an operation failed inside Azure is retried",
    ),
    pytest.param(
        "VMAgentStatusCommunicationError",
        409,
        errors.AzureUnavailable,
        id="an agent not reporting yet is retried",
    ),
    pytest.param(
        "OperationNotAllowed", 409, errors.AzureOperationNotAllowed, id="a forbidden transition gives up"
    ),
    pytest.param(
        "OperationNotAllowed", 200, errors.AzureOperationNotAllowed, id="a forbidden operation gives up"
    ),
    pytest.param("ResourceNotFound", 404, errors.VmNotFound, id="a missing VM gives up"),
    pytest.param("SubscriptionNotFound", 404, errors.VmNotFound, id="a missing subscription gives up"),
    pytest.param("AuthorizationFailed", 403, errors.AzureAuthenticationFailed, id="a missing role gives up"),
    pytest.param(None, 401, errors.AzureAuthenticationFailed, id="a bare 401 gives up"),
    pytest.param("InvalidParameter", 400, errors.AzureOperationNotAllowed, id="a bad request gives up"),
    pytest.param(
        "SomethingNew",
        200,
        errors.AzureOperationFailed,
        id="an operation failed with an unknown code gives up",
    ),
]


@pytest.mark.parametrize(("code", "status", "expected"), ROWS)
def test_azure_answers_are_sorted_by_code_then_status(
    code: str | None, status: int, expected: type[errors.VmgenError]
) -> None:
    assert errors.classify_azure(code, status) is expected


def test_every_tabled_code_is_either_retried_or_given_up_explicitly() -> None:
    for code, kind in errors.AZURE_CODES.items():
        assert issubclass(kind, (errors.TransientError, errors.PermanentError)), code
