"""The API server refuses a bad VMGeneralization at `kubectl apply`, with a message that says what to fix.

Each row starts from a valid manifest and breaks one thing, so the refusal can only come from that
thing. The checks run in the real kube-apiserver: OpenAPI schema, enums, and the CRD's CEL rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.crd.resources import apply, get, linux_manifest, windows_manifest
from vmgen_testbed.kube import ControlPlane

pytestmark = pytest.mark.usefixtures("vmgen_crd")

Spec = dict[str, Any]


def _set(path: str, value: Any) -> Callable[[Spec], None]:
    *parents, leaf = path.split(".")

    def edit(spec: Spec) -> None:
        for key in parents:
            spec = spec.setdefault(key, {})
        spec[leaf] = value

    return edit


def _drop(key: str) -> Callable[[Spec], None]:
    return lambda spec: spec.pop(key)


def _as_windows(spec: Spec) -> None:
    spec["osType"] = "Windows"
    spec.pop("ssh")


LINUX_REFUSALS = [
    pytest.param(
        _set("vm.subscriptionId", "my-subscription"),
        "must be a subscription id, a UUID",
        id="a subscription id that is not a UUID is refused",
    ),
    pytest.param(
        _set("vm.name", "web-01-"),
        "must be an Azure VM name",
        id="a VM name ending in a hyphen is refused",
    ),
    pytest.param(
        _set("vm.name", "_web"),
        "must be an Azure VM name",
        id="a VM name starting with an underscore is refused",
    ),
    pytest.param(
        _set("vm.name", "web 01"),
        "must be an Azure VM name",
        id="a VM name with a space is refused",
    ),
    pytest.param(
        _set("vm.name", "v" * 65),
        "may not be more than 64",
        id="a VM name longer than 64 characters is refused",
    ),
    pytest.param(
        _set("vm.resourceGroup", "rg-images."),
        "must be an Azure resource group name",
        id="a resource group ending in a period is refused",
    ),
    pytest.param(
        _set("vm.resourceGroup", "rg/images"),
        "must be an Azure resource group name",
        id="a resource group with a slash is refused",
    ),
    pytest.param(
        _set("vm.resourceGroup", "r" * 91),
        "may not be more than 90",
        id="a resource group longer than 90 characters is refused",
    ),
    pytest.param(
        _drop("ssh"),
        "spec.ssh is required when spec.osType is Linux",
        id="a Linux VM without ssh is refused",
    ),
    pytest.param(
        _set("ssh.port", 0),
        "port must be between 1 and 65535",
        id="ssh port 0 is refused",
    ),
    pytest.param(
        _set("ssh.port", 65536),
        "port must be between 1 and 65535",
        id="ssh port 65536 is refused",
    ),
    pytest.param(
        _set("ssh.hostKeys", ["ssh-dss AAAAB3NzaC1kc3MAAACBAP"]),
        "must be an OpenSSH public key",
        id="a DSA host key is refused",
    ),
    pytest.param(
        _set("ssh.hostKeys", ["SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"]),
        "must be an OpenSSH public key",
        id="a host key fingerprint instead of the key is refused",
    ),
    pytest.param(
        _set("ssh.host", "10.0.0.4; rm -rf /"),
        "must be a DNS name or an IP address",
        id="an ssh host that is neither a name nor an address is refused",
    ),
    pytest.param(
        _set("ssh.privateKeySecretRef.name", "Web_01_SSH"),
        "must be a Secret name",
        id="a secret name that is not a DNS subdomain is refused",
    ),
    pytest.param(
        _set("timeouts.deprovision", "15 minutes"),
        "must be a positive duration",
        id="a timeout that is not a Go duration is refused",
    ),
    pytest.param(
        _set("timeouts.shutdown", "0s"),
        "must be a positive duration",
        id="a zero timeout is refused",
    ),
    pytest.param(
        _set("osType", "Darwin"),
        'Unsupported value: "Darwin"',
        id="an unknown osType is refused",
    ),
    pytest.param(
        _set("winrm", {"host": "10.0.0.5", "credentialsSecretRef": {"name": "admin"}}),
        "spec.winrm applies to Windows VMs only",
        id="winrm on a Linux VM is refused",
    ),
    pytest.param(
        _set("ssh.hostkeys", []),
        'unknown field "spec.ssh.hostkeys"',
        id="a misspelled field is refused instead of silently dropped",
    ),
    pytest.param(
        _drop("vm"),
        "spec.vm: Required value",
        id="a resource without vm is refused",
    ),
    pytest.param(
        _as_windows,
        "spec.winrm is required when spec.osType is Windows and spec.windows.transport is WinRM",
        id="a Windows VM without winrm is refused",
    ),
    pytest.param(
        lambda spec: spec["ssh"].pop("host"),
        "spec.ssh.host is required unless spec.source is Copy",
        id="an in-place job without an SSH host is refused",
    ),
    pytest.param(
        _set("source", "Clone"),
        'spec.source: Unsupported value: "Clone"',
        id="a source other than InPlace or Copy is refused",
    ),
    pytest.param(
        _set("copy.subnetId", "build-vnet/isolated"),
        "must be a subnet id",
        id="a copy subnet that is not a subnet id is refused",
    ),
]


@pytest.mark.parametrize(("edit", "message"), LINUX_REFUSALS)
def test_a_bad_linux_manifest_is_refused_with_its_own_message(
    control_plane: ControlPlane, namespace: str, edit: Callable[[Spec], None], message: str
) -> None:
    manifest = linux_manifest(namespace)
    edit(manifest["spec"])

    result = apply(control_plane, manifest)

    assert result.returncode != 0, f"accepted: {manifest['spec']}"
    assert message in result.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            _set("vm.name", "web-golden-image"),
            "spec.vm.name of a Windows VM has at most 15 characters",
            id="a Windows VM name longer than 15 characters is refused",
        ),
        pytest.param(
            lambda spec: spec["winrm"].update(auth="basic", tls=False),
            "basic auth sends the password in clear text without TLS",
            id="basic auth over plain HTTP is refused",
        ),
        pytest.param(
            lambda spec: spec["winrm"].update(tls=False, insecureSkipTLSVerify=True),
            "insecureSkipTLSVerify needs tls true",
            id="skipping TLS verification without TLS is refused",
        ),
        pytest.param(
            lambda spec: spec["winrm"].update(insecureSkipTLSVerify=True, caSecretRef={"name": "ca"}),
            "caSecretRef and insecureSkipTLSVerify exclude each other",
            id="a CA and skipping verification together are refused",
        ),
        pytest.param(
            _set("winrm.port", 70000),
            "port must be between 1 and 65535",
            id="winrm port 70000 is refused",
        ),
        pytest.param(
            _set("winrm.auth", "digest"),
            'Unsupported value: "digest"',
            id="an unknown winrm auth is refused",
        ),
        pytest.param(
            _set("windows.sysprepTimeout", "30"),
            "must be a positive duration",
            id="a sysprep timeout without a unit is refused",
        ),
        pytest.param(
            _set("ssh", {"host": "10.0.0.5", "privateKeySecretRef": {"name": "key"}}),
            "spec.ssh applies to Linux VMs only",
            id="ssh on a Windows VM is refused",
        ),
    ],
)
def test_a_bad_windows_manifest_is_refused_with_its_own_message(
    control_plane: ControlPlane, namespace: str, edit: Callable[[Spec], None], message: str
) -> None:
    manifest = windows_manifest(namespace)
    edit(manifest["spec"])

    result = apply(control_plane, manifest)

    assert result.returncode != 0, f"accepted: {manifest['spec']}"
    assert message in result.stderr


def test_auto_without_any_way_into_the_guest_is_refused(control_plane: ControlPlane, namespace: str) -> None:
    manifest = linux_manifest(namespace)
    manifest["spec"]["osType"] = "Auto"
    manifest["spec"].pop("ssh")

    result = apply(control_plane, manifest)

    assert result.returncode != 0
    assert "spec.osType Auto needs a way into the guest" in result.stderr


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda spec: spec["winrm"].update(auth="basic"), id="basic auth over TLS is accepted"),
        pytest.param(
            lambda spec: spec["winrm"].update(auth="basic", tls=False, allowUnencrypted=True),
            id="basic auth over HTTP is accepted with the explicit allowUnencrypted opt-in",
        ),
        pytest.param(
            lambda spec: spec["winrm"].update(tls=False, port=5985), id="NTLM over HTTP is accepted"
        ),
        pytest.param(
            lambda spec: (spec.pop("winrm"), spec.update(windows={"transport": "RunCommand"})),
            id="a Windows VM through Run Command needs no winrm",
        ),
        pytest.param(
            lambda spec: spec["vm"].update(name="WEB_02.X"),
            id="a VM name with dots and underscores is accepted",
        ),
        pytest.param(
            lambda spec: spec["winrm"].update(host="fd00::5"), id="an IPv6 guest address is accepted"
        ),
    ],
)
def test_a_windows_variant_that_follows_the_rules_is_accepted(
    control_plane: ControlPlane, namespace: str, edit: Callable[[Spec], None]
) -> None:
    manifest = windows_manifest(namespace)
    edit(manifest["spec"])

    result = apply(control_plane, manifest)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "resource_group",
    [
        pytest.param("rg_(images).prod-1", id="a resource group with underscores, parentheses and periods"),
        pytest.param("rg-bildverarbeitung-ü", id="a resource group with a non-ASCII letter, as Azure allows"),
        pytest.param("r" * 90, id="a resource group of 90 characters"),
    ],
)
def test_a_resource_group_azure_allows_is_accepted(
    control_plane: ControlPlane, namespace: str, resource_group: str
) -> None:
    manifest = linux_manifest(namespace)
    manifest["spec"]["vm"]["resourceGroup"] = resource_group

    result = apply(control_plane, manifest)

    assert result.returncode == 0, result.stderr
    assert get(control_plane, manifest)["spec"]["vm"]["resourceGroup"] == resource_group


class TestTheVmIsImmutable:
    @pytest.mark.parametrize("field", ["subscriptionId", "resourceGroup", "name"])
    def test_an_edit_of_spec_vm_is_refused_with_the_exact_message(
        self, control_plane: ControlPlane, namespace: str, field: str
    ) -> None:
        manifest = linux_manifest(namespace)
        assert apply(control_plane, manifest).returncode == 0
        original = dict(manifest["spec"]["vm"])
        manifest["spec"]["vm"][field] = {
            "subscriptionId": "00000000-0000-0000-0000-000000000001",
            "resourceGroup": "rg-other",
            "name": "web-99",
        }[field]

        result = apply(control_plane, manifest)

        assert result.returncode != 0
        assert 'spec.vm: Invalid value: "object": spec.vm is immutable; create a new VMGeneralization' in (
            result.stderr
        )
        # The whole of spec.vm is kept, the edited field included (not only `name`).
        assert get(control_plane, manifest)["spec"]["vm"] == original

    def test_spec_source_cannot_be_switched_and_a_copy_needs_no_ssh_host(
        self, control_plane: ControlPlane, namespace: str
    ) -> None:
        manifest = linux_manifest(namespace)
        manifest["spec"]["source"] = "Copy"
        manifest["spec"]["ssh"].pop("host")
        assert apply(control_plane, manifest).returncode == 0
        manifest["spec"]["source"] = "InPlace"
        manifest["spec"]["ssh"]["host"] = "10.0.0.4"

        result = apply(control_plane, manifest)

        assert result.returncode != 0
        assert "spec.source is immutable; create a new VMGeneralization instead" in result.stderr
        assert get(control_plane, manifest)["spec"]["source"] == "Copy"

    def test_other_spec_fields_can_still_be_edited(self, control_plane: ControlPlane, namespace: str) -> None:
        manifest = linux_manifest(namespace)
        assert apply(control_plane, manifest).returncode == 0
        manifest["spec"]["timeouts"] = {"deprovision": "45m"}
        manifest["spec"]["ssh"]["host"] = "web-01.internal.example"

        result = apply(control_plane, manifest)

        assert result.returncode == 0, result.stderr
        stored = get(control_plane, manifest)
        assert stored["spec"]["timeouts"]["deprovision"] == "45m"
        assert stored["spec"]["ssh"]["host"] == "web-01.internal.example"
