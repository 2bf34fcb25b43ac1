"""The namespace policy is enforced before any Azure call and before the VM is claimed."""

from __future__ import annotations

from tests.unit import fakes
from tests.unit.test_workflow import NAMESPACE, World
from vmgen.domain.reasons import Reason


class TestRefusals:
    async def test_the_operator_identity_outside_identity_namespaces_fails_without_touching_azure(
        self,
    ) -> None:
        world = World(azure={})  # no credentialsSecretRef: the operator's own identity

        assert await world.step() is None

        assert world.status["phase"] == "Failed"
        assert world.condition("Ready")["reason"] == Reason.OPERATOR_IDENTITY_NOT_ALLOWED
        assert world.azure.calls == [] and world.azure.credentials == []
        assert world.locks.holders == {}

    async def test_a_resource_group_outside_the_namespace_scope_fails_without_touching_azure(self) -> None:
        world = World()
        world.policy.scopes[NAMESPACE] = f"/subscriptions/{world.vm.ref.subscription_id}/resourceGroups/other"

        assert await world.step() is None

        assert world.condition("Ready")["reason"] == Reason.SCOPE_NOT_ALLOWED
        assert "other" in world.condition("Ready")["message"]
        assert world.azure.calls == [] and world.locks.holders == {}


class TestAllowed:
    async def test_an_allowed_identity_namespace_with_its_scope_is_generalized(self) -> None:
        world = World(azure={})
        world.policy = fakes.FakePolicy(
            identity_namespaces=(NAMESPACE,),
            scopes={NAMESPACE: f"/subscriptions/{world.vm.ref.subscription_id}"},
        )
        world.restart()

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.azure.credentials[0] is None, "the operator's own identity was used"

    async def test_the_policy_is_read_again_on_every_pass(self) -> None:
        world = World()
        await world.step()
        await world.step()

        assert world.policy.reads == 2
