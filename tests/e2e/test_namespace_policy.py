"""No confused deputy: the cluster admin's policy refuses, before any Azure call, a resource that would
use the operator's own identity in a namespace not allowed to, and one whose VM lies outside the
scopes its Namespace's `vmgen.io/allowed-scopes` annotation lists (docs/security.md)."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import World, assert_guest_untouched, condition, vm_requests


def test_the_operator_identity_is_refused_in_a_namespace_not_allowed_to_use_it(
    world: World, linux_vm: Any
) -> None:
    vm = linux_vm()
    world.arm.clear_requests()
    world.ssh_secret("ssh", vm.sandbox.private_key)
    world.apply(
        world.linux_manifest("borrowed-identity", vm, azure_secret=None, host_keys=list(vm.sandbox.host_keys))
    )

    body = world.wait_failed("borrowed-identity")

    ready = condition(body, "Ready")
    assert ready["reason"] == "OperatorIdentityNotAllowed"
    assert "credentialsSecretRef" in ready["message"]
    assert vm_requests(world.arm, vm) == [], "no Azure call for a refused resource"
    assert [r for r in world.arm.requests() if r.api == "entra"] == [], "not even a token was asked for"
    assert_guest_untouched(vm)
    assert "OperatorIdentityNotAllowed" in [e["reason"] for e in world.events()]


def test_a_resource_group_outside_the_namespace_scope_is_refused(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.control_plane.kubectl(
        "annotate",
        "namespace",
        world.namespace,
        f"vmgen.io/allowed-scopes=/subscriptions/{vm.subscription_id}/resourceGroups/rg-somewhere-else",
    )
    world.arm.clear_requests()
    world.linux_job("out-of-scope", vm, host_keys=list(vm.sandbox.host_keys))

    body = world.wait_failed("out-of-scope")

    ready = condition(body, "Ready")
    assert ready["reason"] == "ScopeNotAllowed"
    assert "rg-somewhere-else" in ready["message"]
    assert vm_requests(world.arm, vm) == [], "no Azure call for a refused resource"
    assert_guest_untouched(vm)


def test_a_resource_inside_the_namespace_scope_is_generalized(world: World, linux_vm: Any) -> None:
    vm = linux_vm()
    world.control_plane.kubectl(
        "annotate",
        "namespace",
        world.namespace,
        f"vmgen.io/allowed-scopes=/subscriptions/{vm.subscription_id}/resourceGroups/{vm.resource_group}",
    )
    world.linux_job("in-scope", vm, host_keys=list(vm.sandbox.host_keys))

    assert world.wait_ready("in-scope")["status"]["phase"] == "Succeeded"
