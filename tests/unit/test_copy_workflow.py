"""spec.source Copy against the port fakes: every step after the copy acts on the copy, never on spec.vm."""

from __future__ import annotations

from typing import Any

from tests.unit.test_workflow import World
from vmgen.domain import errors

SOURCE_WRITES = ("begin_deallocate", "wait_deallocate", "generalize", "run_shell_script", "start")


def copy_world(**copy: Any) -> World:
    return World(
        source="Copy",
        capture={"managedImage": {"name": "web-golden-img"}},
        **({"copy": copy} if copy else {}),
    )


def on_source(world: World) -> list[str]:
    return [op for op, name in world.azure.calls if name == world.vm.ref.name and op in SOURCE_WRITES]


class TestTheCopyPath:
    async def test_the_copy_is_generalized_captured_and_deleted_and_the_source_only_read(self) -> None:
        world = copy_world()

        await world.run(passes=80)

        assert world.status["phase"] == "Succeeded", world.status
        copy = world.status["outputs"]["copy"]
        assert copy["state"] == "Deleted" and copy["address"] == "10.0.0.9"
        name = copy["vmId"].rsplit("/", 1)[-1]
        assert name.startswith("web-01-vmgen-")
        assert world.azure.managed_images["web-golden-img"].source.endswith(f"/virtualMachines/{name}")
        assert name not in world.azure.vms and world.azure.disks == {} and world.azure.nics == {}
        assert on_source(world) == []
        assert world.vm.guest.deprovision_runs == 0 and not world.vm.generalized
        assert [t.host for t in world.deprovisioner.targets] == ["10.0.0.9"]

    async def test_the_steps_on_the_copy_name_the_copy_and_its_source_in_their_events(self) -> None:
        world = copy_world()

        await world.run(passes=80)

        name = world.status["outputs"]["copy"]["vmId"].rsplit("/", 1)[-1]
        label = f"the copy {name} of VM web-01"
        messages = {e.reason: e.message for e in world.events.events}
        assert messages["ShutdownStarted"] == f"Deallocating {label}."
        assert messages["GeneralizeStarted"] == f"Marking {label} as generalized."
        assert messages["Capturing"] == f"Creating managed image web-golden-img from {label}."
        assert messages["ManagedImageCreated"].endswith(f"/images/web-golden-img created from {label}.")

    async def test_a_subnet_that_does_not_exist_fails_before_any_disk(self) -> None:
        world = copy_world(
            subnetId="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/x"
        )

        await world.run(passes=30)

        assert world.condition("Ready")["reason"] == "SubnetNotFound"
        assert "begin_disk" not in world.azure.operations()

    async def test_stop_source_first_deallocates_and_starts_the_source_once(self) -> None:
        world = copy_world(stopSourceFirst=True)

        await world.run(passes=80)

        assert world.status["phase"] == "Succeeded", world.status
        assert on_source(world) == ["begin_deallocate", "wait_deallocate", "start"]
        assert world.vm.power_state.value == "running"

    async def test_a_failure_after_the_copy_exists_deletes_it_unless_kept(self) -> None:
        for keep, state in ((False, "Deleted"), (True, "Kept")):
            world = copy_world(keepOnFailure=keep)
            world.deprovisioner.faults.add("deprovision", errors.AuthenticationRefused("refused"))

            await world.run(passes=80)

            assert world.status["phase"] == "Failed"
            assert world.status["outputs"]["copy"]["state"] == state
            assert (world.status["outputs"]["copy"]["vmId"].rsplit("/", 1)[-1] in world.azure.vms) is keep
            assert on_source(world) == []
