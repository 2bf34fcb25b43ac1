"""The WinRM adapter refuses a wrong CA, a wrong password and Basic over HTTP, and leaks no secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trustme

from vmgen.adapters import winrm
from vmgen.domain import errors
from vmgen_testbed.windows import scripts

from .test_winrm_transport import target


@pytest.fixture
def vm(windows_vm: Callable[..., Any]) -> Any:
    return windows_vm(allow_basic_http=True)


async def test_a_certificate_from_another_ca_is_refused(vm: Any) -> None:
    other = trustme.CA().cert_pem.bytes().decode()
    with pytest.raises(errors.PermanentError, match="not trusted") as refused:
        await winrm.WinRmClient().run(target(vm, ca_pem=other), scripts.probe_script(output="x"))
    assert vm.password not in str(refused.value)
    assert refused.value.reason == "WinRMCertificateUntrusted"


async def test_a_wrong_password_is_refused_as_authentication(vm: Any) -> None:
    with pytest.raises(errors.AuthenticationRefused, match="401") as refused:
        await winrm.WinRmClient().run(
            target(vm, password="not-the-password"), scripts.probe_script(output="x")
        )
    assert "not-the-password" not in str(refused.value)
    assert refused.value.reason == "WinRMAuthenticationRefused"


async def test_a_wrong_password_over_http_is_refused_too(vm: Any) -> None:
    with pytest.raises(errors.AuthenticationRefused):
        await winrm.WinRmClient().run(
            target(vm, port=vm.endpoint.http_port, tls=False, ca_pem=None, password="wrong"),
            scripts.probe_script(output="x"),
        )


async def test_basic_over_plain_http_is_refused_before_connecting(vm: Any) -> None:
    before = vm.endpoint.requests
    with pytest.raises(errors.InvalidSpec, match="in the clear") as refused:
        await winrm.WinRmClient().run(
            target(vm, port=vm.endpoint.http_port, tls=False, auth="basic", ca_pem=None),
            scripts.probe_script(output="x"),
        )
    assert refused.value.reason == "WinRMBasicOverHTTP"
    assert vm.endpoint.requests == before  # nothing reached the guest, although it would accept Basic


def test_the_target_never_shows_its_password() -> None:
    shown = repr(winrm.WinRmTarget(host="h", port=5986, username="u", password="hunter2-secret"))
    assert "hunter2-secret" not in shown


def test_a_read_timeout_not_above_the_operation_timeout_is_refused() -> None:
    with pytest.raises(errors.InvalidSpec, match="must exceed"):
        winrm.WinRmTimeouts(operation=30, read=30)


async def test_without_a_ca_the_system_trust_store_is_used_and_refuses_the_testbed_ca(vm: Any) -> None:
    with pytest.raises(errors.PermanentError, match="not trusted"):
        await winrm.WinRmClient().run(target(vm, ca_pem=None), scripts.probe_script(output="x"))


async def test_skipping_tls_verification_works_only_when_asked_for(vm: Any) -> None:
    result = await winrm.WinRmClient().run(
        target(vm, ca_pem=None, insecure_skip_tls_verify=True), scripts.probe_script(output="unverified")
    )
    assert result.output == ("unverified",)


async def test_a_ca_and_skipping_verification_together_are_refused(vm: Any) -> None:
    with pytest.raises(errors.InvalidSpec, match="choose one"):
        await winrm.WinRmClient().run(
            target(vm, insecure_skip_tls_verify=True), scripts.probe_script(output="x")
        )
