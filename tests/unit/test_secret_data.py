"""What vmgen reads from a Secret's data, and the exact message when it is not there.

Each message names the Secret (namespace/name) and the key, and, where a person must create the Secret,
the whole `kubectl create secret` command to run; never a value. Also: the error tree's defaults and the
backoff's bounds, which every retry reads.
"""

from __future__ import annotations

import pytest

from vmgen.domain import errors, ports, retry, secrets

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"


def _missing(call: object, data: dict[str, bytes]) -> str:
    with pytest.raises(errors.SecretKeyMissing) as caught:
        call(data, namespace="images", name="web")  # type: ignore[operator]
    assert caught.value.reason == "SecretKeyMissing"
    return caught.value.message


def test_an_ssh_key_is_returned_as_it_is() -> None:
    assert secrets.ssh_private_key({"ssh-privatekey": b" KEY\n"}, namespace="n", name="s") == b" KEY\n"


@pytest.mark.parametrize("data", [{}, {"ssh-privatekey": b""}], ids=["no key", "an empty key"])
def test_a_missing_ssh_key_says_how_to_create_the_secret(data: dict[str, bytes]) -> None:
    assert _missing(secrets.ssh_private_key, data) == (
        "Secret images/web has no key ssh-privatekey; create it with: kubectl create secret generic NAME"
        " --type=kubernetes.io/ssh-auth --from-file=ssh-privatekey=PATH"
    )


AZURE = {"AZURE_TENANT_ID": b" t \n", "AZURE_CLIENT_ID": b"c", "AZURE_CLIENT_SECRET": b"s"}


def test_azure_credentials_are_read_key_by_key_and_stripped() -> None:
    assert secrets.azure_credentials(AZURE, namespace="n", name="s") == ports.AzureCredentials(
        tenant_id="t", client_id="c", client_secret="s"
    )


@pytest.mark.parametrize("key", ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"])
def test_a_missing_azure_key_is_named(key: str) -> None:
    data = {k: v for k, v in AZURE.items() if k != key}

    assert (
        _missing(secrets.azure_credentials, data) == f"Secret images/web has no key {key} (or it is empty)."
    )


def test_a_blank_key_counts_as_missing() -> None:
    assert _missing(secrets.azure_credentials, {**AZURE, "AZURE_CLIENT_ID": b"  \n"}) == (
        "Secret images/web has no key AZURE_CLIENT_ID (or it is empty)."
    )


def test_basic_auth_keeps_the_password_exactly_and_strips_the_user() -> None:
    data = {"username": b" admin \n", "password": b" p\xffss "}

    assert secrets.basic_auth(data, namespace="n", name="s") == ("admin", " p\ufffdss ")


@pytest.mark.parametrize(
    "data", [{"username": b"admin"}, {"username": b"admin", "password": b""}], ids=["no password", "empty"]
)
def test_a_missing_password_says_how_to_create_the_secret(data: dict[str, bytes]) -> None:
    assert _missing(secrets.basic_auth, data) == (
        "Secret images/web has no key password (or it is empty); create it with: kubectl create secret"
        " generic NAME --type=kubernetes.io/basic-auth --from-literal=username=USER"
        " --from-literal=password=..."
    )


def test_a_missing_user_is_named() -> None:
    assert _missing(secrets.basic_auth, {"password": b"p"}) == (
        "Secret images/web has no key username (or it is empty)."
    )


def test_a_ca_bundle_is_returned_stripped() -> None:
    assert secrets.ca_bundle({"ca.crt": f"\n{PEM}\n".encode()}, namespace="n", name="s") == PEM


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({}, "Secret images/web has no key ca.crt (or it is empty).", id="no key"),
        pytest.param(
            {"ca.crt": b"MIIB"},
            "Secret images/web key ca.crt holds no PEM certificate (-----BEGIN CERTIFICATE-----).",
            id="no PEM",
        ),
    ],
)
def test_a_ca_bundle_without_a_certificate_is_refused(data: dict[str, bytes], message: str) -> None:
    assert _missing(secrets.ca_bundle, data) == message


@pytest.mark.parametrize(
    ("secret", "hint"),
    [
        pytest.param(
            "azure-sp",
            " The credential comes from Secret images/azure-sp (keys AZURE_TENANT_ID, AZURE_CLIENT_ID,"
            " AZURE_CLIENT_SECRET): fix it there.",
            id="a Secret is named with its keys",
        ),
        pytest.param(
            None,
            " spec.azure.credentialsSecretRef is not set, so the operator's own identity (workload identity)"
            " was used: fix that identity, or name a Secret in spec.azure.credentialsSecretRef.",
            id="without a Secret the operator's identity is named",
        ),
        pytest.param(
            "",
            " spec.azure.credentialsSecretRef is not set, so the operator's own identity (workload identity)"
            " was used: fix that identity, or name a Secret in spec.azure.credentialsSecretRef.",
            id="an empty Secret name is no Secret",
        ),
    ],
)
def test_the_credential_hint_says_which_credential_to_fix(secret: str | None, hint: str) -> None:
    assert secrets.credential_hint(namespace="images", secret=secret) == hint


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        pytest.param(errors.VmgenError, "Error", id="the base"),
        pytest.param(errors.TransientError, "TransientError", id="transient"),
        pytest.param(errors.PermanentError, "Failed", id="permanent"),
        pytest.param(errors.UncertainError, "OutcomeUnknown", id="uncertain"),
    ],
)
def test_an_error_keeps_its_message_and_its_class_reason_unless_given_one(
    kind: type[errors.VmgenError], reason: str
) -> None:
    plain = kind("what happened")
    given = kind("what happened", reason="Other")

    assert (str(plain), plain.message, plain.reason) == ("what happened", "what happened", reason)
    assert (given.message, given.reason) == ("what happened", "Other")


def test_a_transient_error_carries_retry_after_and_its_reason() -> None:
    plain = errors.AzureThrottled("429")
    given = errors.TransientError("x", reason="R", retry_after=7.0)

    assert (plain.message, plain.reason, plain.retry_after) == ("429", "AzureThrottled", None)
    assert (given.message, given.reason, given.retry_after) == ("x", "R", 7.0)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        pytest.param("", 429, errors.AzureThrottled, id="an empty code falls to the status"),
        pytest.param(
            None, 403, errors.AzureAuthenticationFailed, id="a bare 403 is an authentication failure"
        ),
        pytest.param(None, 404, errors.VmNotFound, id="a bare 404 is a missing VM"),
        pytest.param(None, 500, errors.AzureUnavailable, id="a bare 500 is retried"),
        pytest.param(None, 499, errors.AzureOperationNotAllowed, id="a 499 gives up"),
        pytest.param(None, 399, errors.AzureOperationFailed, id="an operation ending Failed below 400"),
        pytest.param(None, 400, errors.AzureOperationNotAllowed, id="exactly 400 gives up as not allowed"),
        pytest.param(None, None, errors.AzureOperationNotAllowed, id="no code and no status give up"),
    ],
)
def test_azure_answers_without_a_tabled_code_are_sorted_by_status(
    code: str | None, status: int | None, expected: type[errors.VmgenError]
) -> None:
    assert errors.classify_azure(code, status) is expected


@pytest.mark.parametrize(
    ("failures", "retry_after", "delay"),
    [
        pytest.param(0, None, 1.0, id="no failure yet waits the base"),
        pytest.param(1, None, 1.0, id="the first retry waits the base"),
        pytest.param(2, None, 2.0, id="the second doubles"),
        pytest.param(4, None, 8.0, id="the fourth is eight times"),
        pytest.param(9, None, 256.0, id="the ninth is still under the cap"),
        pytest.param(10, None, 300.0, id="the tenth is capped"),
        pytest.param(3, 42.0, 42.0, id="Retry-After wins"),
        pytest.param(3, 0.0, 0.0, id="a zero Retry-After is kept"),
        pytest.param(3, -5.0, 0.0, id="a negative Retry-After is zero"),
        pytest.param(3, 3600.0, 300.0, id="Retry-After is capped"),
    ],
)
def test_the_backoff_doubles_up_to_its_cap_and_honours_retry_after(
    failures: int, retry_after: float | None, delay: float
) -> None:
    assert retry.backoff(failures, retry_after=retry_after) == delay


def test_a_value_that_is_not_utf8_is_read_with_replacement_characters_not_an_exception() -> None:
    data = {**AZURE, "AZURE_CLIENT_SECRET": b"s\xffcret"}

    assert secrets.azure_credentials(data, namespace="n", name="s").client_secret == "s\ufffdcret"
