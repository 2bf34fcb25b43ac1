"""Bad input is rejected at apply time or ends Failed with its own reason, and loses nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.e2e.conftest import World, assert_guest_untouched, condition, vm_requests


def failed_reason(world: World, body: dict[str, Any]) -> str:
    """The Ready=False reason of a Failed resource, checked to be told as a Warning Event too."""
    ready = condition(body, "Ready")
    assert ready["status"] == "False"
    assert ready["message"], "a Failed resource must say what to do"
    name = body["metadata"]["name"]
    warnings = {
        e["reason"] for e in world.events() if e["involvedObject"]["name"] == name and e["type"] == "Warning"
    }
    assert ready["reason"] in warnings, f"no Warning Event {ready['reason']} for {name}: {warnings}"
    return str(ready["reason"])


def test_a_malformed_subscription_id_is_rejected_at_apply_time(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    manifest = world.linux_manifest("bad-sub", vm)
    manifest["spec"]["vm"]["subscriptionId"] = "not-a-uuid"

    result = world.apply(manifest, check=False)

    assert result.returncode != 0
    assert "subscriptionId" in result.stderr
    assert world.kubectl("get", "vmgen", "bad-sub", check=False).returncode != 0


def test_an_edit_of_spec_vm_is_rejected_with_the_rule_message(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    manifest = world.linux_job("immutable", vm, host_keys=list(vm.sandbox.host_keys))
    edited = copy.deepcopy(manifest)
    edited["spec"]["vm"]["name"] = "some-other-vm"

    result = world.apply(edited, check=False)

    assert result.returncode != 0
    assert "spec.vm is immutable; create a new VMGeneralization" in result.stderr
    assert world.get("immutable")["spec"]["vm"]["name"] == vm.name


def test_a_missing_ssh_secret_fails_before_touching_the_vm(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.secrets(vm)
    world.apply(
        world.linux_manifest(
            "no-secret", vm, ssh_secret="does-not-exist", host_keys=list(vm.sandbox.host_keys)
        )
    )

    body = world.wait_failed("no-secret")

    assert failed_reason(world, body) == "SecretNotFound"
    assert "does-not-exist" in condition(body, "Ready")["message"]
    assert_guest_untouched(vm)


def foreign_host_keys() -> list[str]:
    """One key of each type the guest offers (ed25519, ECDSA, RSA), none of them any VM's: whichever
    algorithm the client negotiates, the key it meets is not pinned."""
    keys = (
        ed25519.Ed25519PrivateKey.generate(),
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
    return [
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
        for key in keys
    ]


def test_a_wrong_host_key_fails_and_the_guest_is_untouched(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    foreign = foreign_host_keys()
    assert not set(foreign) & set(vm.sandbox.host_keys)
    assert sorted(key.split()[0] for key in foreign) == sorted(key.split()[0] for key in vm.sandbox.host_keys)
    world.linux_job("wrong-hostkey", vm, host_keys=foreign)

    body = world.wait_failed("wrong-hostkey")

    assert failed_reason(world, body) == "HostKeyMismatch"
    assert_guest_untouched(vm)
    assert world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["powerState"] == "running"


def test_a_wrong_ssh_key_fails_and_the_guest_is_untouched(world: World, linux_vm: Any) -> None:
    vm, other = linux_vm(), linux_vm()
    world.secrets(vm, ssh_key=other.sandbox.private_key)
    world.apply(world.linux_manifest("wrong-key", vm, host_keys=list(vm.sandbox.host_keys)))

    body = world.wait_failed("wrong-key")

    assert failed_reason(world, body) == "SSHAuthenticationRefused"
    assert_guest_untouched(vm)


def test_a_vm_that_does_not_exist_fails_with_vm_not_found(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.job_for_other_vm("ghost", vm, vm_name="vm-that-was-never-created")

    body = world.wait_failed("ghost")

    assert failed_reason(world, body) == "VMNotFound"
    assert "vm-that-was-never-created" in condition(body, "Ready")["message"]
    assert_guest_untouched(vm)


def test_refused_azure_credentials_fail_and_the_vm_is_untouched(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.secrets(vm, client_secret="definitely-the-wrong-secret")
    world.apply(world.linux_manifest("refused", vm, host_keys=list(vm.sandbox.host_keys)))

    body = world.wait_failed("refused")

    assert failed_reason(world, body) == "AzureAuthenticationFailed"
    assert "definitely-the-wrong-secret" not in str(body)
    assert_guest_untouched(vm)
    assert not vm_requests(world.arm, vm), "no ARM request may pass without a token"


def seed(world: World, vm: Any, name: str, **state: Any) -> None:
    """A VM in Azure with no guest behind it, in the same subscription and group as `vm`."""
    world.arm.seed_vm(
        subscription_id=vm.subscription_id, resource_group=vm.resource_group, name=name, **state
    )


def test_an_already_generalized_vm_is_adopted_not_failed(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    seed(world, vm, "already-golden", os_type="Linux", power_state="deallocated", generalized=True)
    world.job_for_other_vm("adopted", vm, vm_name="already-golden")

    body = world.wait_ready("adopted")

    assert body["status"]["phase"] == "Succeeded"
    assert body["status"]["steps"]["deprovision"]["state"] == "Skipped"
    assert condition(body, "Generalized")["status"] == "True"
    assert condition(body, "Ready")["reason"] == "AdoptedGeneralizedVM"
    operations = [r.operation for r in world.arm.requests() if r.is_for_vm("already-golden")]
    assert operations, "the operator must have looked at the VM before adopting it"
    assert set(operations) <= {"get", "instanceView"}, operations


@pytest.mark.parametrize("power_state", ["deallocated", "stopped"])
def test_a_stopped_vm_that_is_not_generalized_fails_asking_to_start_it(
    world: World, linux_vm: Any, power_state: str
) -> None:
    vm = linux_vm()
    name = f"cold-{power_state}"
    seed(world, vm, name, os_type="Linux", power_state=power_state)
    world.job_for_other_vm(name, vm, vm_name=name)

    body = world.wait_failed(name)

    assert failed_reason(world, body) == "VMNotRunning"
    assert "start" in condition(body, "Ready")["message"].lower()
    operations = [r.operation for r in world.arm.requests() if r.is_for_vm(name)]
    assert operations, "the operator must have looked at the VM"
    assert "start" not in operations


def test_an_os_type_that_contradicts_azure_fails_validation(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    seed(world, vm, "really-windows", os_type="Windows")
    world.job_for_other_vm("os-mismatch", vm, vm_name="really-windows")

    body = world.wait_failed("os-mismatch")

    assert failed_reason(world, body) == "OSTypeMismatch"
    assert "Windows" in condition(body, "Ready")["message"]


def test_a_stopped_vm_confirmed_as_deprovisioned_is_generalized_without_ssh(
    world: World, linux_vm: Any
) -> None:
    vm = linux_vm()
    seed(world, vm, "deprovisioned-by-hand", os_type="Linux", power_state="stopped")
    world.secrets(vm)
    manifest = world.linux_manifest("by-hand", vm, host_keys=list(vm.sandbox.host_keys))
    manifest["spec"]["vm"]["name"] = "deprovisioned-by-hand"
    manifest["metadata"]["annotations"] = {"vmgen.io/confirm-deprovisioned": "true"}
    world.apply(manifest)

    body = world.wait_ready("by-hand")

    assert body["status"]["steps"]["deprovision"]["state"] == "Succeeded"
    assert condition(body, "Deprovisioned")["reason"] == "DeprovisionConfirmed"
    operations = [r.operation for r in world.arm.requests() if "/deprovisioned-by-hand" in r.path]
    assert operations.count("deallocate") == 1 and operations.count("generalize") == 1
    assert "start" not in operations
    assert_guest_untouched(vm)  # the job never connected to any guest
