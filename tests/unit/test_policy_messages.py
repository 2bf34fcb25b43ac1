"""The cluster admin's policy in full: the rules read from the annotation, and each refusal's exact text.

A refusal is what a namespace user reads in `kubectl describe`: it must name the namespace, the VM and
its scope, the scopes allowed, and the exact `kubectl annotate namespace` command an admin runs.
"""

from __future__ import annotations

import pytest

from vmgen.domain import errors, model, policy

SUB = "00000000-0000-0000-0000-00000000000a"
VM = model.VmRef(subscription_id=SUB, resource_group="rg-a", name="web-01")
TARGET = f"/subscriptions/{SUB}/resourceGroups/rg-a"
ANNOTATE = (
    "A cluster admin sets it with `kubectl annotate namespace images --overwrite"
    " vmgen.io/allowed-scopes=/subscriptions/<id>/resourceGroups/<group>`."
)


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        pytest.param(
            None,
            policy.NamespaceRules("images", identity_allowed=True, scopes=None),
            id="no annotation: no scopes",
        ),
        pytest.param(
            " /Subscriptions/ABC/resourceGroups/RG-A/ , ,/subscriptions/Def",
            policy.NamespaceRules(
                "images",
                identity_allowed=True,
                scopes=(policy.Scope("abc", "rg-a"), policy.Scope("def", None)),
            ),
            id="entries are trimmed, lower-cased, blank ones skipped",
        ),
        pytest.param(
            "/subscriptions/abc,/subs/x",
            policy.NamespaceRules("images", identity_allowed=True, scopes=(), invalid="/subs/x"),
            id="one bad entry invalidates the whole annotation",
        ),
        pytest.param(
            "",
            policy.NamespaceRules("images", identity_allowed=True, scopes=()),
            id="an empty annotation allows none",
        ),
    ],
)
def test_the_rules_read_from_the_annotation(annotation: str | None, expected: policy.NamespaceRules) -> None:
    assert policy.rules("images", annotation=annotation, identity_namespaces=("images", "other")) == expected


def test_a_namespace_not_listed_may_not_use_the_operator_identity() -> None:
    assert not policy.rules("dev", annotation=None, identity_namespaces=("images",)).identity_allowed


@pytest.mark.parametrize(
    ("scope", "text"),
    [
        pytest.param(policy.Scope("abc"), "/subscriptions/abc", id="a subscription"),
        pytest.param(
            policy.Scope("abc", "rg"), "/subscriptions/abc/resourceGroups/rg", id="a resource group"
        ),
    ],
)
def test_a_scope_reads_back_as_its_arm_id(scope: policy.Scope, text: str) -> None:
    assert str(scope) == text


def _refusal(
    annotation: str | None, *, identity: bool = True, uses_identity: bool = True, vm: model.VmRef = VM
) -> errors.PermanentError:
    rules = policy.rules("images", annotation=annotation, identity_namespaces=("images",) if identity else ())
    with pytest.raises(errors.PermanentError) as caught:
        policy.check(rules, vm, uses_operator_identity=uses_identity)
    return caught.value


def test_an_invalid_annotation_names_the_entry_and_stops_the_namespace() -> None:
    refusal = _refusal("/subs/x")

    assert isinstance(refusal, policy.InvalidNamespacePolicy)
    assert refusal.message == (
        "The annotation vmgen.io/allowed-scopes on namespace images has the entry '/subs/x', which is neither"
        " /subscriptions/<id> nor /subscriptions/<id>/resourceGroups/<group>; nothing in this namespace runs"
        f" until it is fixed. {ANNOTATE}"
    )


def test_the_operator_identity_outside_its_namespaces_says_how_to_bring_a_secret() -> None:
    refusal = _refusal(f"/subscriptions/{SUB}", identity=False)

    assert isinstance(refusal, policy.OperatorIdentityNotAllowed)
    assert refusal.message == (
        "Namespace images may not use the operator's own Azure identity (it is not in the operator's"
        " --identity-namespaces); give the resource spec.azure.credentialsSecretRef naming a Secret with a"
        " service principal of your own, or ask a cluster admin to allow the namespace."
    )


def test_the_operator_identity_without_an_annotation_names_the_target_and_the_command() -> None:
    refusal = _refusal(None)

    assert isinstance(refusal, policy.ScopeNotAllowed)
    assert refusal.message == (
        f"Namespace images has no vmgen.io/allowed-scopes annotation, so the operator's own identity may not"
        f" target {TARGET} (nor anything else). {ANNOTATE}"
    )


@pytest.mark.parametrize(
    ("annotation", "allowed"),
    [
        pytest.param(
            f"/subscriptions/{SUB}/resourceGroups/rg-ab", f"/subscriptions/{SUB}/resourceGroups/rg-ab"
        ),
        pytest.param("", "nothing"),
        pytest.param("/subscriptions/x,/subscriptions/y", "/subscriptions/x, /subscriptions/y"),
    ],
    ids=["another group", "nothing allowed", "two other subscriptions"],
)
def test_a_vm_outside_the_scopes_names_them(annotation: str, allowed: str) -> None:
    refusal = _refusal(annotation, uses_identity=False)

    assert isinstance(refusal, policy.ScopeNotAllowed)
    assert refusal.message == (
        f"VM web-01 in {TARGET} is outside the scopes namespace images may target ({allowed}); nothing was"
        f" done. {ANNOTATE}"
    )


@pytest.mark.parametrize(
    "vm",
    [
        pytest.param(VM, id="the same ids"),
        pytest.param(model.VmRef(SUB.upper(), "RG-A", "web-01"), id="ids in another case"),
    ],
)
def test_a_vm_in_an_allowed_group_passes_whatever_the_case(vm: model.VmRef) -> None:
    rules = policy.rules(
        "images", annotation=f"/subscriptions/{SUB}/resourceGroups/rg-a", identity_namespaces=()
    )

    policy.check(rules, vm, uses_operator_identity=False)  # raises when refused
