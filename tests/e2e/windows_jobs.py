"""What the Windows e2e tests share: the Secrets and the manifest of a Windows job, and the checks of
the modelled machine and the simulator (the e2e conftest's World stays Linux-shaped)."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import World, vm_requests


def winrm_secrets(world: World, vm: Any, *, password: str | None = None) -> None:
    """`admin` (kubernetes.io/basic-auth), `winrm-ca` (ca.crt) and `azure-sp` for a Windows job."""
    world.kubectl(
        "create",
        "secret",
        "generic",
        "admin",
        "--type=kubernetes.io/basic-auth",
        f"--from-literal=username={vm.username}",
        f"--from-literal=password={vm.password if password is None else password}",
    )
    world.kubectl("create", "secret", "generic", "winrm-ca", f"--from-file=ca.crt={vm.ca_path}")
    world.azure_secret(
        "azure-sp",
        tenant_id=world.arm.tenant_id,
        client_id=world.arm.client_id,
        client_secret=world.arm.client_secret,
    )


def windows_manifest(
    world: World, name: str, vm: Any, *, transport: str = "WinRM", sysprep_timeout: str = "30m", **winrm: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "vm": {"subscriptionId": vm.subscription_id, "resourceGroup": vm.resource_group, "name": vm.name},
        "osType": "Windows",
        "azure": {"credentialsSecretRef": {"name": "azure-sp"}},
        "windows": {"transport": transport, "sysprepTimeout": sysprep_timeout},
    }
    if transport == "WinRM":
        spec["winrm"] = {
            "host": vm.endpoint.host,
            "port": vm.endpoint.https_port,
            "tls": True,
            "auth": "ntlm",
            "credentialsSecretRef": {"name": "admin"},
            "caSecretRef": {"name": "winrm-ca"},
            **winrm,
        }
    return {
        "apiVersion": "vmgen.io/v1alpha1",
        "kind": "VMGeneralization",
        "metadata": {"name": name, "namespace": world.namespace},
        "spec": spec,
    }


def windows_job(world: World, name: str, vm: Any, **kwargs: Any) -> dict[str, Any]:
    winrm_secrets(world, vm)
    manifest = windows_manifest(world, name, vm, **kwargs)
    world.apply(manifest)
    return manifest


def assert_generalized_once(world: World, vm: Any) -> None:
    """The model shows Panther removed, RESEAL_TO_OOBE and one sysprep start; the simulator shows the VM
    deallocated and generalized and never started."""
    machine = vm.machine.snapshot()
    assert machine["pantherPresent"] is False
    assert machine["imageState"] == "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
    assert machine["sysprepStarts"] == 1, machine
    azure = world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)
    assert azure["powerState"] == "deallocated"
    assert azure["generalized"] is True
    operations = [r.operation for r in vm_requests(world.arm, vm)]
    assert "start" not in operations, "the operator must never start the VM"


def assert_no_secret_leaked(world: World, vm: Any, *names: str) -> None:
    secrets = [vm.password, world.arm.client_secret]
    texts = {
        "operator log": world.operator.logs(),
        "events": json.dumps(world.events()),
        "status": json.dumps([world.get(name).get("status") for name in names]),
    }
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret value leaked into the {where}"
