"""A guest that cannot be reached, and the look before deprovision, through the workflow and the fakes.

Tried as a new user would (a host name that does not resolve, a port where nothing listens): each retry
must cost no Azure request, say what is wrong in its own reason, never claim waagent is running, and end
Failed once spec.timeouts.deprovision has passed. A restart soon after the look must not look again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.unit.test_workflow import World, until
from vmgen.domain import deprovision, errors
from vmgen.domain.reasons import Reason
from vmgen.domain.status import Stamp, Status, StepName, StepState


def _unresolvable(count: int) -> list[Exception]:
    return [errors.GuestHostUnresolvable("[Errno -2] Name or service not known") for _ in range(count)]


def _refused(count: int) -> list[Exception]:
    return [errors.GuestUnreachable("[Errno 111] Connect call failed") for _ in range(count)]


class TestAGuestThatCannotBeReached:
    async def test_an_unresolvable_host_fails_after_the_deprovision_timeout_with_its_own_reason(self) -> None:
        world = World(timeouts={"deprovision": "2m"})
        world.deprovisioner.faults.add("reach", *_unresolvable(100))

        await world.run(passes=40)

        assert world.status["phase"] == "Failed"
        ready = world.condition("Ready")
        assert ready["reason"] == Reason.GUEST_HOST_UNRESOLVABLE
        assert "does not resolve" in ready["message"]
        assert "spec.timeouts.deprovision" in ready["message"]
        assert "nothing ran on the VM" in ready["message"]
        assert world.vm.guest.deprovision_runs == 0
        assert world.deprovisioner.targets == [], "no SSH session was ever opened"

    async def test_a_closed_port_is_told_apart_from_dns_and_names_the_port(self) -> None:
        world = World(timeouts={"deprovision": "1m"})
        world.deprovisioner.faults.add("reach", *_refused(100))

        await world.run(passes=40)

        ready = world.condition("Ready")
        assert ready["reason"] == Reason.GUEST_UNREACHABLE
        assert "10.0.0.4:22" in ready["message"]
        assert "spec.ssh.port" in ready["message"]

    async def test_retries_of_an_unreachable_guest_ask_azure_nothing(self) -> None:
        world = World()
        world.deprovisioner.faults.add("reach", *_refused(6))
        await until(world, lambda: "unreachableSince" in world.status.get("steps", {}).get("deprovision", {}))
        calls = len(world.azure.calls)

        for _ in range(5):
            await world.step()

        assert len(world.azure.calls) == calls, world.azure.operations()[calls:]
        assert len(world.deprovisioner.reached) >= 6
        await world.run()
        assert world.status["phase"] == "Succeeded"

    async def test_unreachable_tries_are_not_deprovision_attempts_and_never_run_the_look(self) -> None:
        world = World()
        world.deprovisioner.faults.add("reach", *_refused(3))

        await world.run()

        assert world.status["steps"]["deprovision"]["attempts"] == 1
        assert world.azure.operations().count("run_shell_script") == 1, "one look, when the guest answered"
        assert "unreachableSince" not in world.status["steps"]["deprovision"]

    async def test_the_deprovisioned_condition_says_why_it_waits_not_that_waagent_runs(self) -> None:
        world = World()
        world.deprovisioner.faults.add("reach", *_unresolvable(3))
        await until(world, lambda: "unreachableSince" in world.status.get("steps", {}).get("deprovision", {}))

        condition = world.condition("Deprovisioned")

        assert condition["status"] == "False"
        assert condition["reason"] == Reason.GUEST_HOST_UNRESOLVABLE
        assert "waagent" not in condition["message"]
        assert world.step_state("deprovision") == "Pending"

    async def test_the_bound_counts_from_status_so_a_restart_does_not_reset_it(self) -> None:
        world = World(timeouts={"deprovision": "2m"})
        world.deprovisioner.faults.add("reach", *_refused(100))
        await until(world, lambda: "unreachableSince" in world.status.get("steps", {}).get("deprovision", {}))
        since = world.status["steps"]["deprovision"]["unreachableSince"]

        world.restart()
        await world.run(passes=40)

        assert world.status["phase"] == "Failed"
        assert world.status["steps"]["deprovision"]["unreachableSince"] == since


class TestTheLookBeforeDeprovision:
    async def test_what_the_look_found_is_recorded_in_status(self) -> None:
        world = World(pinned=False)
        world.deprovisioner.faults.add("deprovision", *_refused(1))
        await until(world, lambda: "lookedAt" in world.status.get("steps", {}).get("deprovision", {}))

        step = world.status["steps"]["deprovision"]

        assert step["hostKeys"] == list(world.vm.guest.host_keys)

    async def test_a_restart_soon_after_the_look_does_not_look_again(self) -> None:
        world = World(pinned=False)
        world.deprovisioner.faults.add("deprovision", *_refused(1))  # the SSH run never got going
        await until(world, lambda: bool(world.deprovisioner.targets))
        keys = set(world.vm.guest.host_keys)

        world.restart()
        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.azure.operations().count("run_shell_script") == 1
        assert world.vm.guest.deprovision_runs == 1
        assert set(world.deprovisioner.targets[-1].host_keys) == keys, "verified with the recorded keys"

    async def test_a_stale_look_is_repeated(self) -> None:
        world = World(pinned=False)
        world.deprovisioner.faults.add("deprovision", *_refused(1))
        await until(world, lambda: bool(world.deprovisioner.targets))

        world.clock.advance(deprovision.LOOK_FRESH.total_seconds() + 60)
        world.restart()
        await world.run()

        assert world.azure.operations().count("run_shell_script") == 2
        assert world.status["phase"] == "Succeeded"


class TestTheStatusKeepsTheRow:
    T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def _at(self, minutes: float) -> Stamp:
        return Stamp(now=self.T0 + timedelta(minutes=minutes), generation=1)

    def test_the_first_unreachable_try_starts_the_row_and_later_ones_keep_its_start(self) -> None:
        status = Status().unreachable(
            StepName.DEPROVISION, reason="GuestUnreachable", message="m", at=self._at(0)
        )
        status = status.unreachable(
            StepName.DEPROVISION, reason="GuestUnreachable", message="m", at=self._at(3)
        )

        step = status.step(StepName.DEPROVISION)
        assert step.unreachable_since == self.T0
        assert step.retries == 2
        assert step.state is StepState.PENDING

    def test_the_row_ends_when_the_guest_answers(self) -> None:
        status = Status().unreachable(
            StepName.DEPROVISION, reason="GuestUnreachable", message="m", at=self._at(0)
        )

        looked = status.looked(StepName.DEPROVISION, host_keys=("ssh-ed25519 AAAA",), at=self._at(1))
        begun = status.begin(StepName.DEPROVISION, message="Running", at=self._at(1))

        assert looked.step(StepName.DEPROVISION).unreachable_since is None
        assert looked.step(StepName.DEPROVISION).looked_at == self.T0 + timedelta(minutes=1)
        assert begun.step(StepName.DEPROVISION).unreachable_since is None

    def test_what_the_look_found_survives_a_round_trip_through_the_api_server(self) -> None:
        status = Status().looked(StepName.DEPROVISION, host_keys=("ssh-ed25519 AAAA",), at=self._at(0))
        status = status.unreachable(
            StepName.DEPROVISION, reason="GuestUnreachable", message="m", at=self._at(2)
        )

        again = Status.from_body(status.to_body()).step(StepName.DEPROVISION)

        assert again.host_keys == ("ssh-ed25519 AAAA",)
        assert again.looked_at == self.T0
        assert again.unreachable_since == self.T0 + timedelta(minutes=2)
