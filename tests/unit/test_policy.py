"""The cluster admin's policy (domain/policy.py): which namespace may use the operator's identity, and
which subscriptions / resource groups a namespace may target. One row per case, named as a sentence."""

from __future__ import annotations

import pytest

from vmgen.domain import model, policy
from vmgen.domain.reasons import Reason

SUB = "00000000-0000-0000-0000-00000000000a"
OTHER_SUB = "00000000-0000-0000-0000-00000000000b"
VM = model.VmRef(subscription_id=SUB, resource_group="rg-a", name="web-01")


def refusal(
    *, annotation: str | None, identity: bool, uses_identity: bool, vm: model.VmRef = VM
) -> str | None:
    rules = policy.rules("images", annotation=annotation, identity_namespaces=("images",) if identity else ())
    try:
        policy.check(rules, vm, uses_operator_identity=uses_identity)
    except (policy.OperatorIdentityNotAllowed, policy.ScopeNotAllowed, policy.InvalidNamespacePolicy) as exc:
        assert exc.message, "a refusal says why"
        return exc.reason
    return None


ROWS = [
    pytest.param(None, False, False, VM, None, id="own credentials without an annotation are not restricted"),
    pytest.param(
        None,
        False,
        True,
        VM,
        Reason.OPERATOR_IDENTITY_NOT_ALLOWED,
        id="the operator identity is refused by default",
    ),
    pytest.param(
        None,
        True,
        True,
        VM,
        Reason.SCOPE_NOT_ALLOWED,
        id="an identity namespace without scopes may target nothing",
    ),
    pytest.param(
        f"/subscriptions/{SUB}/resourceGroups/rg-a",
        True,
        True,
        VM,
        None,
        id="the identity reaches an allowed resource group",
    ),
    pytest.param(
        f"/subscriptions/{SUB}", True, True, VM, None, id="a subscription scope covers its resource groups"
    ),
    pytest.param(
        f"/subscriptions/{SUB}/resourceGroups/rg-b",
        True,
        True,
        VM,
        Reason.SCOPE_NOT_ALLOWED,
        id="another resource group is refused",
    ),
    pytest.param(
        f"/subscriptions/{SUB}/resourceGroups/rg-a",
        False,
        False,
        model.VmRef(SUB, "rg-ab", "x"),
        Reason.SCOPE_NOT_ALLOWED,
        id="a group scope does not cover a group whose name starts the same",
    ),
    pytest.param(
        f"/subscriptions/{OTHER_SUB}",
        False,
        False,
        VM,
        Reason.SCOPE_NOT_ALLOWED,
        id="the annotation restricts own credentials too",
    ),
    pytest.param(
        f"/subscriptions/{SUB.upper()}/resourcegroups/RG-A/",
        False,
        False,
        VM,
        None,
        id="scopes compare case-insensitively like ARM ids",
    ),
    pytest.param(
        f" /subscriptions/{OTHER_SUB} , /subscriptions/{SUB}/resourceGroups/rg-a ",
        False,
        False,
        VM,
        None,
        id="any listed scope may match",
    ),
    pytest.param("", False, False, VM, Reason.SCOPE_NOT_ALLOWED, id="an empty annotation allows nothing"),
    pytest.param(
        f"/subscriptions/{SUB}/resourceGroups/rg-a,rg-b",
        False,
        False,
        VM,
        Reason.INVALID_NAMESPACE_POLICY,
        id="an unreadable entry refuses everything",
    ),
    pytest.param("*", True, True, VM, Reason.INVALID_NAMESPACE_POLICY, id="a wildcard is not a scope"),
    pytest.param(
        f"/subscriptions/{SUB}",
        False,
        True,
        VM,
        Reason.OPERATOR_IDENTITY_NOT_ALLOWED,
        id="scopes do not grant the operator identity",
    ),
]


@pytest.mark.parametrize(("annotation", "identity", "uses_identity", "vm", "expected"), ROWS)
def test_the_policy_decides(
    annotation: str | None, identity: bool, uses_identity: bool, vm: model.VmRef, expected: str | None
) -> None:
    assert refusal(annotation=annotation, identity=identity, uses_identity=uses_identity, vm=vm) == expected


def test_a_refusal_tells_a_person_how_to_fix_it() -> None:
    rules = policy.rules("images", annotation=None, identity_namespaces=())
    with pytest.raises(policy.OperatorIdentityNotAllowed) as refused:
        policy.check(rules, VM, uses_operator_identity=True)
    assert "spec.azure.credentialsSecretRef" in refused.value.message
    rules = policy.rules(
        "images", annotation=f"/subscriptions/{SUB}/resourceGroups/rg-b", identity_namespaces=()
    )
    with pytest.raises(policy.ScopeNotAllowed) as outside:
        policy.check(rules, VM, uses_operator_identity=False)
    assert "kubectl annotate namespace images" in outside.value.message
    assert "rg-b" in outside.value.message
