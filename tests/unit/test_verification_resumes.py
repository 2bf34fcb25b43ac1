"""A verification's Run Command survives a restart: its continuation token is recorded before anything
waits for it, and a restarted operator follows that Run Command instead of beginning another. Seen in
the chaos e2e test (tests/e2e/test_chaos.py) on a loaded machine: each restart began a new verification,
none finished within one life, and every job stood still in Deprovisioning."""

from __future__ import annotations

import pytest

from tests.unit.test_workflow import World, until
from vmgen.domain import deprovision, errors, model
from vmgen.domain.phases import Step, StepState


class TestTheDecision:
    @pytest.mark.parametrize(
        ("step", "token"),
        [
            (Step(state=StepState.RUNNING, continuation_token="rc-1"), "rc-1"),
            (Step(state=StepState.RUNNING), None),
            (Step(state=StepState.UNKNOWN, continuation_token="rc-1"), None),
            (Step(state=StepState.PENDING, continuation_token="rc-1"), None),
        ],
        ids=[
            "a running deprovision with a recorded verification follows it",
            "a running deprovision without one begins one",
            "an unknown outcome's recheck begins its own",
            "a pending step has no verification in flight",
        ],
    )
    def test_which_verification_is_followed(self, step: Step, token: str | None) -> None:
        assert deprovision.verification_in_flight(step) == token

    @pytest.mark.parametrize(("state", "recorded"), [(StepState.RUNNING, True), (StepState.UNKNOWN, False)])
    def test_only_a_running_deprovisions_verification_is_recorded(
        self, state: StepState, recorded: bool
    ) -> None:
        assert deprovision.records_verification(Step(state=state)) is recorded


class Killed(Exception):
    """The operator process died (SIGKILL) while it waited: nothing after this point ran."""


async def interrupted_verification(world: World) -> None:
    """Deprovision Running (its outcome lost), a verification begun, and the operator killed in its wait."""
    await until(world, lambda: world.step_state("validate") == "Succeeded")
    world.writer.body["steps"]["deprovision"] = {"state": "Running", "attempts": 1}
    world.vm.guest.deprovision(delete_user=True)  # waagent finished while nobody was looking
    world.azure.faults.add("wait_shell_script", Killed())
    world.restart()
    with pytest.raises(Killed):
        await world.step()


class TestInTheWorkflow:
    async def test_a_restart_follows_the_recorded_run_command_instead_of_beginning_another(self) -> None:
        world = World()
        await interrupted_verification(world)
        token = world.status["steps"]["deprovision"]["continuationToken"]
        begun = world.azure.operations().count("run_shell_script")

        world.restart()
        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.azure.operations().count("run_shell_script") == begun, "no second Run Command"
        assert world.azure.followed[-1] == model.ContinuationToken(token)
        assert "continuationToken" not in world.status["steps"]["deprovision"]
        assert world.vm.guest.deprovision_runs == 1, "verified, never run again"

    async def test_a_run_command_that_cannot_be_followed_is_forgotten_and_begun_again(self) -> None:
        world = World()
        await interrupted_verification(world)
        world.azure.faults.add(
            "wait_shell_script", errors.AzureOperationLost("the token is unknown to Azure")
        )

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.azure.operations().count("run_shell_script") == 2
        assert len(set(world.azure.followed)) == 2, "the second verification has its own token"
