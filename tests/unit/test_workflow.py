"""The workflow against small fakes of the ports: one side effect per pass, recorded around it.

A "restart" here is what a SIGKILLed operator does: a new Workflow built only from the status the
API server holds (the fake writer's body), with everything in memory lost.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from tests.unit import fakes
from vmgen import workflow
from vmgen.domain import deprovision, errors, model, planner, ports
from vmgen.domain.reasons import Reason

NAMESPACE = "images"
PRIVATE_KEY = (
    b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
    b"c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY=\n"
    b"-----END OPENSSH PRIVATE KEY-----\n"
)
CLIENT_SECRET = "client-secret-value-7c1f"


class World:
    def __init__(self, *vms: fakes.FakeVm, pinned: bool = True, **spec_changes: Any) -> None:
        self.vm = vms[0] if vms else fakes.linux_vm()
        self.azure = fakes.FakeAzure(self.vm, *vms[1:])
        self.deprovisioner = fakes.FakeDeprovisioner(self.azure)
        self.secrets = fakes.FakeSecrets(
            {
                (NAMESPACE, "ssh"): {"ssh-privatekey": PRIVATE_KEY},
                (NAMESPACE, "azure-sp"): {
                    "AZURE_TENANT_ID": b"t",
                    "AZURE_CLIENT_ID": b"c",
                    "AZURE_CLIENT_SECRET": CLIENT_SECRET.encode(),
                },
            }
        )
        self.locks = fakes.FakeLocks()
        self.policy = fakes.FakePolicy()
        self.clock = fakes.FakeClock()
        self.windows = fakes.FakeWindowsGuests()
        self.writer = fakes.FakeStatusWriter()
        self.events = fakes.FakeEvents()
        ref = self.vm.ref
        self.spec: dict[str, Any] = {
            "vm": {
                "subscriptionId": ref.subscription_id,
                "resourceGroup": ref.resource_group,
                "name": ref.name,
            },
            "osType": "Linux",
            "azure": {"credentialsSecretRef": {"name": "azure-sp"}},
            "ssh": {
                "host": "10.0.0.4",
                "port": 22,
                "username": "azureuser",
                "privateKeySecretRef": {"name": "ssh"},
                "hostKeys": list(self.vm.guest.host_keys) if pinned else [],
            },
            **spec_changes,
        }
        self.annotations: dict[str, str] = {}
        self.flow = self.restart()

    def restart(self) -> workflow.Workflow:
        """A new operator process: only what the API server stored survives."""
        self.flow = workflow.Workflow(
            ports=workflow.Ports(
                compute=self.azure,
                deprovisioner=self.deprovisioner,
                secrets=self.secrets,
                locks=self.locks,
                clock=self.clock,
                policy=self.policy,
                windows=self.windows,
            ),
            stored=self.writer.body,
            writer=self.wrap(self.writer),
            events=self.events,
        )
        return self.flow

    def wrap(self, writer: fakes.FakeStatusWriter) -> ports.StatusWriter:
        """The writer the workflow gets (a test may decorate it, as wiring.py does)."""
        return writer

    def resource(self, name: str = "web-golden") -> workflow.Resource:
        return workflow.Resource(
            namespace=NAMESPACE, name=name, generation=1, spec=self.spec, annotations=self.annotations
        )

    async def step(self) -> float | None:
        delay = await self.flow.run_pass(self.resource())
        self.clock.advance(delay or 0)
        return delay

    async def run(self, *, passes: int = 30) -> list[float]:
        delays: list[float] = []
        for _ in range(passes):
            delay = await self.step()
            if delay is None:
                return delays
            delays.append(delay)
        raise AssertionError(f"not terminal after {passes} passes: {self.writer.body}")

    @property
    def status(self) -> dict[str, Any]:
        return self.writer.body

    def step_state(self, step: str) -> str | None:
        state: str | None = self.status.get("steps", {}).get(step, {}).get("state")
        return state

    def condition(self, kind: str) -> dict[str, Any]:
        found = [c for c in self.status.get("conditions", []) if c["type"] == kind]
        assert found, f"no {kind} condition in {self.status}"
        return dict(found[0])


async def until(world: World, predicate: Any, *, passes: int = 20) -> None:
    for _ in range(passes):
        if predicate():
            return
        assert await world.step() is not None, "terminal before the expected point"
    raise AssertionError(f"never reached; status {world.status}")


class TestTheHappyPath:
    async def test_a_running_linux_vm_ends_generalized_with_every_step_checkpointed(self) -> None:
        world = World()

        await world.run()

        status = world.status
        assert status["phase"] == "Succeeded"
        assert {name: s["state"] for name, s in status["steps"].items()} == {
            "validate": "Succeeded",
            "deprovision": "Succeeded",
            "shutdown": "Succeeded",
            "generalize": "Succeeded",
        }
        assert status["steps"]["deprovision"]["attempts"] == 1
        assert all(
            world.condition(k)["status"] == "True"
            for k in ("Ready", "Deprovisioned", "Deallocated", "Generalized")
        )
        assert status["startedAt"] <= status["completedAt"]
        assert status["observedGeneration"] == 1
        assert status["vm"]["osType"] == "Linux"
        assert world.vm.generalized and world.vm.guest.deprovision_runs == 1
        assert world.azure.operations().count("begin_deallocate") == 1
        assert world.azure.operations().count("generalize") == 1
        assert world.locks.holders == {}, "the lease is released when the job succeeds"

    async def test_every_step_start_and_finish_is_an_event(self) -> None:
        world = World()

        await world.run()

        reasons = world.events.reasons("Normal")
        for reason in (
            Reason.VALIDATION_STARTED,
            Reason.VALIDATION_SUCCEEDED,
            Reason.DEPROVISION_STARTED,
            Reason.DEPROVISION_SUCCEEDED,
            Reason.SHUTDOWN_STARTED,
            Reason.VM_DEALLOCATED,
            Reason.GENERALIZE_STARTED,
            Reason.VM_GENERALIZED,
            Reason.SUCCEEDED,
        ):
            assert reason in reasons, reason
        assert world.events.reasons("Warning") == []
        assert all(r in set(Reason) for r in world.events.reasons())

    async def test_host_keys_come_from_run_command_when_none_are_pinned(self) -> None:
        world = World(pinned=False)
        keys = world.vm.guest.host_keys

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.deprovisioner.targets[0].host_keys == keys
        assert world.azure.operations().index("run_shell_script") < world.azure.operations().index(
            "begin_deallocate"
        )

    async def test_a_pass_that_changes_nothing_writes_nothing(self) -> None:
        world = World(fakes.linux_vm(power_state=model.PowerState.STARTING))

        await world.step()
        written = len(world.writer.patches)
        await world.step()

        assert written >= 1, "the first pass records the wait"
        assert world.status["phase"] == "Validating"
        assert len(world.writer.patches) == written


class TestTheFirstStatus:
    async def test_a_new_resource_says_pending_before_it_claims_the_vm_or_calls_azure(self) -> None:
        world = World()
        world.locks.faults.add("acquire", errors.KubernetesUnavailable("API server busy"))

        await world.step()

        first = world.writer.patches[0]
        assert first["phase"] == "Pending"
        assert [(c["type"], c["status"], c["reason"]) for c in first["conditions"]] == [
            ("Ready", "False", Reason.PENDING)
        ]
        assert first["conditions"][0]["message"] == workflow.ACCEPTED
        assert world.azure.calls == [], "written before the claim, which failed: Azure was never asked"

    async def test_a_restarted_operator_does_not_write_pending_over_the_stored_status(self) -> None:
        world = World()
        await world.step()
        world.restart()
        written = len(world.writer.patches)

        await world.step()

        assert all(p.get("phase") != "Pending" for p in world.writer.patches[written:])
        assert world.status["phase"] != "Pending"


class TestPersistence:
    async def test_a_restart_mid_deprovision_verifies_instead_of_running_it_again(self) -> None:
        world = World()
        await until(world, lambda: world.step_state("validate") == "Succeeded")
        # The operator writes the intent, waagent runs, and the process dies before the checkpoint.
        world.vm.guest.deprovision(delete_user=True)
        world.writer.body["steps"]["deprovision"] = {
            "state": "Running",
            "attempts": 1,
            "startedAt": "2026-01-01T00:00:00Z",
        }
        world.restart()

        await world.run()

        assert world.vm.guest.deprovision_runs == 1, "deprovision must never run twice"
        assert world.deprovisioner.targets == []
        deprovision = world.status["steps"]["deprovision"]
        assert deprovision["state"] == "Succeeded" and deprovision["attempts"] == 1
        assert "verified via Run Command" in deprovision["message"]
        assert world.condition("Deprovisioned")["reason"] == Reason.DEPROVISION_VERIFIED

    async def test_a_restart_before_waagent_started_runs_deprovision_once(self) -> None:
        world = World()
        await until(world, lambda: world.step_state("validate") == "Succeeded")
        world.writer.body["steps"]["deprovision"] = {"state": "Running", "attempts": 1}
        world.restart()

        await world.run()

        assert world.vm.guest.deprovision_runs == 1
        assert world.status["steps"]["deprovision"]["attempts"] == 2
        assert Reason.DEPROVISION_NOT_STARTED in world.events.reasons()

    async def test_a_deprovision_still_running_is_waited_for_not_repeated(self) -> None:
        world = World()
        await until(world, lambda: world.step_state("validate") == "Succeeded")
        world.writer.body["steps"]["deprovision"] = {"state": "Running", "attempts": 1}
        world.vm.guest.waagent_running = True
        world.restart()

        delay = await world.step()

        assert delay == deprovision.VERIFY_AGAIN_SECONDS
        assert world.step_state("deprovision") == "Running"
        assert world.condition("Ready")["reason"] == Reason.DEPROVISION_IN_PROGRESS
        world.vm.guest.waagent_running = False
        world.vm.guest.deprovision(delete_user=True)
        await world.run()
        assert world.vm.guest.deprovision_runs == 1
        assert world.status["phase"] == "Succeeded"

    async def test_a_deprovision_running_past_its_timeout_asks_a_person(self) -> None:
        world = World()
        await until(world, lambda: world.step_state("validate") == "Succeeded")
        started = world.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        world.writer.body["steps"]["deprovision"] = {"state": "Running", "attempts": 1, "startedAt": started}
        world.vm.guest.waagent_running = True
        world.restart()
        world.clock.advance(16 * 60)  # spec.timeouts.deprovision defaults to 15m

        await world.step()

        assert world.step_state("deprovision") == "Unknown"
        assert world.condition("DeprovisionOutcomeUnknown")["status"] == "True"
        assert "spec.timeouts.deprovision" in world.condition("DeprovisionOutcomeUnknown")["message"]
        assert world.vm.guest.deprovision_runs == 0

    async def test_a_continuation_token_is_recorded_before_anything_waits_on_it(self) -> None:
        world = World()
        await until(
            world,
            lambda: (
                world.step_state("shutdown") == "Running"
                and "continuationToken" in world.status["steps"]["shutdown"]
            ),
        )

        assert "begin_deallocate" in world.azure.operations()
        assert "wait_deallocate" not in world.azure.operations()
        intent, token = [p for p in world.writer.patches if "shutdown" in p.get("steps", {})][:2]
        assert (
            intent["steps"]["shutdown"]["state"] == "Running"
            and "continuationToken" not in intent["steps"]["shutdown"]
        )
        assert token["steps"]["shutdown"]["continuationToken"]

    async def test_a_restart_during_deallocate_resumes_from_the_token(self) -> None:
        world = World()
        await until(world, lambda: "continuationToken" in world.status.get("steps", {}).get("shutdown", {}))
        world.restart()

        await world.run()

        assert world.azure.operations().count("begin_deallocate") == 1
        assert world.azure.operations().count("wait_deallocate") == 1
        assert "continuationToken" not in world.status["steps"]["shutdown"], "a finished step drops its token"

    async def test_a_restart_after_generalize_checkpoints_without_generalizing_again(self) -> None:
        world = World()
        await until(world, lambda: world.step_state("shutdown") == "Succeeded")
        await world.step()  # intent written, generalize sent ...
        assert world.vm.generalized
        world.writer.body["steps"]["generalize"]["state"] = "Running"  # ... but the checkpoint was lost
        world.restart()

        await world.run()

        assert world.azure.operations().count("generalize") == 1
        assert world.status["phase"] == "Succeeded"

    async def test_no_irreversible_action_runs_when_its_intent_cannot_be_written(self) -> None:
        world = World()
        await until(world, lambda: world.step_state("validate") == "Succeeded")
        world.writer.faults.add("patch_status", errors.KubernetesUnavailable("API server down"))

        delay = await world.step()

        assert delay is not None and delay > 0, "retried later"
        assert world.vm.guest.deprovision_runs == 0
        assert world.step_state("deprovision") in (None, "Pending")
        assert Reason.KUBERNETES_UNAVAILABLE in world.events.reasons("Warning")


class TestUncertainty:
    async def test_an_unverifiable_deprovision_waits_for_a_person_and_continues_when_confirmed(self) -> None:
        world = World()
        world.deprovisioner.outcome_lost = True
        world.vm.guest.user_present = True  # partly done: the fake removes the user, put it back
        await until(
            world, lambda: world.step_state("deprovision") == "Running" and world.deprovisioner.targets != []
        )
        world.vm.guest.user_present = True

        await until(world, lambda: world.step_state("deprovision") == "Unknown")

        unknown = world.condition("DeprovisionOutcomeUnknown")
        assert unknown["status"] == "True"
        assert planner.CONFIRM_ANNOTATION in unknown["message"]
        assert world.condition("Ready")["status"] == "False"
        assert world.status["phase"] == "Deprovisioning"
        assert Reason.DEPROVISION_OUTCOME_UNKNOWN in world.events.reasons("Warning")
        patches = len(world.writer.patches)
        assert await world.step() == planner.CONFIRMATION_RECHECK_SECONDS
        assert len(world.writer.patches) == patches, "waiting for a person writes nothing"
        assert "begin_deallocate" not in world.azure.operations()

        world.annotations[planner.CONFIRM_ANNOTATION] = "true"
        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert "confirmed by" in world.status["steps"]["deprovision"]["message"]
        assert world.condition("DeprovisionOutcomeUnknown")["status"] == "False"
        assert world.vm.guest.deprovision_runs == 1

    async def test_run_command_refusing_to_run_makes_the_outcome_unknown_not_failed(self) -> None:
        world = World()
        await until(world, lambda: world.step_state("validate") == "Succeeded")
        world.writer.body["steps"]["deprovision"] = {"state": "Running", "attempts": 1}
        world.azure.faults.add(
            "run_shell_script", errors.AzureOperationFailed("VMAgentStatusCommunicationError")
        )
        world.restart()

        await world.step()

        assert world.step_state("deprovision") == "Unknown"
        assert world.status["phase"] == "Deprovisioning"
        assert "VMAgentStatusCommunicationError" in world.condition("DeprovisionOutcomeUnknown")["message"]

    async def test_transient_run_command_errors_are_retried_before_the_outcome_is_unknown(self) -> None:
        world = World()
        await until(world, lambda: world.step_state("validate") == "Succeeded")
        world.writer.body["steps"]["deprovision"] = {"state": "Running", "attempts": 1}
        world.azure.faults.add("run_shell_script", *(errors.AzureUnavailable("502") for _ in range(10)))
        world.restart()

        delays = [await world.step() for _ in range(deprovision.VERIFY_RETRIES + 1)]

        assert delays == [1.0, 2.0, 4.0, planner.CONFIRMATION_RECHECK_SECONDS]
        assert world.step_state("deprovision") == "Unknown"
        assert world.events.reasons("Warning").count(Reason.DEPROVISION_OUTCOME_UNKNOWN) == 1

    async def test_an_unknown_outcome_resolves_itself_when_run_command_comes_back(self) -> None:
        world = World()
        await until(world, lambda: world.step_state("validate") == "Succeeded")
        world.writer.body["steps"]["deprovision"] = {"state": "Running", "attempts": 1}
        world.vm.guest.deprovision(delete_user=True)
        world.azure.faults.add(
            "run_shell_script", errors.AzureOperationFailed("VMAgentStatusCommunicationError")
        )
        world.restart()
        await world.step()
        assert world.step_state("deprovision") == "Unknown"

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.condition("DeprovisionOutcomeUnknown")["status"] == "False"
        assert world.condition("DeprovisionOutcomeUnknown")["reason"] == Reason.DEPROVISION_VERIFIED
        assert world.vm.guest.deprovision_runs == 1

    async def test_a_lost_connection_after_waagent_finished_is_verified_and_goes_on(self) -> None:
        world = World()
        world.deprovisioner.outcome_lost = True

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.vm.guest.deprovision_runs == 1
        assert Reason.DEPROVISION_VERIFIED in world.events.reasons()


class TestLookBeforeDeprovision:
    async def test_a_guest_deprovisioned_already_is_verified_and_never_deprovisioned_again(self) -> None:
        world = World()
        world.vm.guest.deprovision(delete_user=True)  # by a person, or by a deleted earlier resource

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.vm.guest.deprovision_runs == 1
        assert world.deprovisioner.targets == [], "no SSH connection may be made"
        assert world.condition("Deprovisioned")["reason"] == Reason.DEPROVISION_VERIFIED

    async def test_a_guest_being_deprovisioned_already_is_waited_for(self) -> None:
        world = World()
        world.vm.guest.waagent_running = True

        await until(world, lambda: world.step_state("validate") == "Succeeded")
        delay = await world.step()

        assert delay == deprovision.VERIFY_AGAIN_SECONDS
        assert world.condition("Ready")["reason"] == Reason.DEPROVISION_IN_PROGRESS
        assert world.step_state("deprovision") == "Running", (
            "from here the verify path and its deadline apply"
        )
        assert world.status["steps"]["deprovision"].get("attempts", 0) == 0
        assert world.deprovisioner.targets == []

    async def test_a_guest_without_ovf_env_is_still_deprovisioned(self) -> None:
        world = World()
        world.vm.guest.ovf_env_present = False  # a specialized image: user and host keys are there

        await world.run()

        assert world.vm.guest.deprovision_runs == 1
        assert world.condition("Deprovisioned")["reason"] == Reason.DEPROVISION_SUCCEEDED

    async def test_when_run_command_is_refused_deprovision_goes_ahead_over_ssh(self) -> None:
        world = World()
        world.azure.faults.add("run_shell_script", errors.AzureOperationNotAllowed("Run Command is disabled"))

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.vm.guest.deprovision_runs == 1
        assert Reason.AZURE_OPERATION_NOT_ALLOWED in world.events.reasons("Warning")


class TestRetries:
    async def test_throttling_is_retried_after_retry_after_with_a_warning_event(self) -> None:
        world = World()
        world.azure.faults.add("observe", errors.AzureThrottled("TooManyRequests", retry_after=7))

        first = await world.step()

        assert first == 7
        assert world.events.reasons("Warning") == [Reason.AZURE_THROTTLED]
        assert world.condition("Ready")["reason"] == Reason.AZURE_THROTTLED
        await world.run()
        assert world.status["phase"] == "Succeeded"

    async def test_repeated_transient_errors_back_off_exponentially(self) -> None:
        world = World()
        world.azure.faults.add("observe", *(errors.AzureUnavailable("503") for _ in range(4)))

        delays = [await world.step() for _ in range(4)]

        assert delays == [1.0, 2.0, 4.0, 8.0]
        await world.run()
        assert world.status["phase"] == "Succeeded"

    async def test_transient_errors_do_not_count_as_deprovision_attempts(self) -> None:
        world = World()
        await until(world, lambda: world.step_state("validate") == "Succeeded")
        world.azure.faults.add("observe", errors.AzureUnavailable("502"), errors.AzureThrottled("429"))

        await world.run()

        assert world.status["steps"]["deprovision"]["attempts"] == 1
        assert world.status["phase"] == "Succeeded"

    async def test_an_unreachable_guest_is_retried_and_counted_as_an_attempt(self) -> None:
        world = World()
        world.deprovisioner.faults.add("deprovision", errors.GuestUnreachable("connection refused"))

        await world.run()

        assert world.status["steps"]["deprovision"]["attempts"] == 2
        assert world.vm.guest.deprovision_runs == 1
        assert Reason.GUEST_UNREACHABLE in world.events.reasons("Warning")

    async def test_a_refused_deallocate_is_begun_again_after_backoff(self) -> None:
        world = World()
        world.azure.faults.add("begin_deallocate", errors.AzureConflict("AnotherOperationInProgress"))

        await world.run()

        assert world.azure.operations().count("begin_deallocate") == 2
        assert world.status["steps"]["shutdown"]["attempts"] == 2

    async def test_a_deallocate_that_azure_ended_failed_is_begun_again_not_resumed_forever(self) -> None:
        world = World()
        world.azure.faults.add("wait_deallocate", errors.AzureOperationLost("InternalExecutionError"))
        await until(world, lambda: "continuationToken" in world.status.get("steps", {}).get("shutdown", {}))

        await world.step()  # the resume fails: the token is forgotten

        assert "continuationToken" not in world.status["steps"]["shutdown"]
        world.vm.power_state = model.PowerState.RUNNING  # what Azure shows after a failed deallocate
        await world.run()
        assert world.status["phase"] == "Succeeded"
        assert world.azure.operations().count("begin_deallocate") == 2

    async def test_a_failed_poll_keeps_the_continuation_token(self) -> None:
        world = World()
        world.azure.faults.add("wait_deallocate", errors.AzureUnavailable("503 on the operation poll"))
        await until(world, lambda: "continuationToken" in world.status.get("steps", {}).get("shutdown", {}))

        await world.step()

        assert "continuationToken" in world.status["steps"]["shutdown"]
        await world.run()
        assert world.status["phase"] == "Succeeded"
        assert world.azure.operations().count("begin_deallocate") == 1

    async def test_unreachable_tries_do_not_count_towards_giving_up(self) -> None:
        world = World()
        world.deprovisioner.faults.add(
            "deprovision",
            *(errors.GuestUnreachable("connection refused") for _ in range(4)),
            errors.DeprovisionOutcomeUnknown("lost"),
        )

        await world.run(passes=60)

        assert world.status["phase"] == "Succeeded"
        assert world.vm.guest.deprovision_runs == 1

    async def test_a_connection_that_drops_every_time_backs_off_then_gives_up_untouched(self) -> None:
        world = World()
        world.deprovisioner.faults.add(
            "deprovision", *(errors.DeprovisionOutcomeUnknown("lost") for _ in range(10))
        )

        delays = await world.run(passes=80)

        assert world.status["phase"] == "Failed"
        assert world.condition("Ready")["reason"] == Reason.DEPROVISION_FAILED
        assert world.status["steps"]["deprovision"]["attempts"] == deprovision.MAX_DEPROVISION_ATTEMPTS
        assert "started 5 times" in world.condition("Ready")["message"]
        assert world.vm.guest.deprovision_runs == 0
        assert sum(delays) >= 1 + 2 + 4 + 8, "each verified retry must back off"


class TestFailures:
    @pytest.mark.parametrize(
        "exc",
        [
            pytest.param(
                errors.HostKeyMismatch("the guest presented another ssh-ed25519 key"), id="host key mismatch"
            ),
            pytest.param(errors.AuthenticationRefused("permission denied"), id="ssh key refused"),
            pytest.param(errors.DeprovisionFailed("waagent exited 1"), id="waagent failed"),
        ],
    )
    async def test_a_permanent_deprovision_error_fails_with_its_reason_and_frees_the_vm(
        self, exc: errors.PermanentError
    ) -> None:
        world = World()
        world.deprovisioner.faults.add("deprovision", exc)

        await world.run()

        assert world.status["phase"] == "Failed"
        assert world.step_state("deprovision") == "Failed"
        ready = world.condition("Ready")
        assert (ready["status"], ready["reason"], ready["message"]) == ("False", exc.reason, exc.message)
        assert world.condition("Deprovisioned")["status"] == "False"
        assert exc.reason in world.events.reasons("Warning")
        assert "begin_deallocate" not in world.azure.operations()
        assert world.locks.holders == {}
        assert "completedAt" in world.status

    async def test_a_missing_ssh_secret_fails_naming_it_before_touching_the_vm(self) -> None:
        world = World()
        world.spec["ssh"]["privateKeySecretRef"]["name"] = "does-not-exist"

        await world.run()

        assert world.condition("Ready")["reason"] == Reason.SECRET_NOT_FOUND
        assert "does-not-exist" in world.condition("Ready")["message"]
        assert world.vm.guest.deprovision_runs == 0
        assert world.azure.operations() == ["observe"]

    async def test_refused_azure_credentials_fail_and_touch_nothing(self) -> None:
        world = World()
        world.azure.faults.add("observe", errors.AzureAuthenticationFailed("invalid_client"))

        await world.run()

        assert world.condition("Ready")["reason"] == Reason.AZURE_AUTHENTICATION_FAILED
        assert world.step_state("validate") == "Failed"
        assert world.azure.operations() == ["observe"]
        assert world.vm.guest.deprovision_runs == 0
        assert "Secret images/azure-sp" in world.condition("Ready")["message"]

    async def test_an_azure_secret_without_its_keys_fails_naming_the_key(self) -> None:
        world = World()
        world.secrets.secrets[(NAMESPACE, "azure-sp")] = {"AZURE_TENANT_ID": b"t"}

        await world.run()

        assert world.condition("Ready")["reason"] == Reason.SECRET_KEY_MISSING
        assert "AZURE_CLIENT_ID" in world.condition("Ready")["message"]

    async def test_a_windows_vm_without_spec_winrm_fails_untouched(self) -> None:
        world = World(fakes.linux_vm(os_type=model.OsType.WINDOWS), osType="Auto")

        await world.run()

        assert world.condition("Ready")["reason"] == Reason.INVALID_SPEC
        assert "spec.winrm" in world.condition("Ready")["message"]
        assert world.azure.operations() == ["observe"]
        assert world.windows.machine.scripts == []

    async def test_a_claim_the_operator_may_not_release_leaves_the_finished_status_alone(self) -> None:
        world = World()
        world.locks.faults.add("release", errors.KubernetesForbidden("leases is forbidden"))

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.condition("Ready")["reason"] == Reason.SUCCEEDED
        assert Reason.KUBERNETES_FORBIDDEN in world.events.reasons("Warning")

    async def test_a_lease_that_cannot_be_released_leaves_the_finished_status_alone(self) -> None:
        world = World()
        world.locks.faults.add("release", errors.KubernetesUnavailable("the API server is down"))

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.condition("Ready")["status"] == "True"
        assert world.condition("Ready")["reason"] == Reason.SUCCEEDED


class TestAdoption:
    async def test_an_already_generalized_vm_is_adopted_with_only_reads(self) -> None:
        vm = fakes.linux_vm(power_state=model.PowerState.DEALLOCATED, generalized=True)
        world = World(vm)

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.step_state("validate") == "Succeeded"
        assert [world.step_state(s) for s in ("deprovision", "shutdown", "generalize")] == ["Skipped"] * 3
        for kind in ("Ready", "Deprovisioned", "Deallocated", "Generalized"):
            assert (world.condition(kind)["status"], world.condition(kind)["reason"]) == (
                "True",
                Reason.ADOPTED_GENERALIZED_VM,
            )
        assert world.azure.operations() == ["observe"]


class TestClaims:
    async def test_a_second_resource_for_a_claimed_vm_waits_and_never_touches_it(self) -> None:
        world = World()
        world.locks.holders[world.vm.ref.resource_id.lower()] = f"{NAMESPACE}/first"

        delay = await world.flow.run_pass(world.resource("second"))

        assert delay == planner.CLAIM_RECHECK_SECONDS
        assert world.status["phase"] == "Pending"
        ready = world.condition("Ready")
        assert (ready["status"], ready["reason"]) == ("False", Reason.VM_CLAIMED_BY_ANOTHER)
        assert f"{NAMESPACE}/first" in ready["message"]
        assert world.azure.calls == [] and world.azure.credentials == [], "not even a read of the VM"
        assert world.secrets.reads == []

    async def test_the_second_resource_proceeds_once_the_claim_is_released(self) -> None:
        world = World()
        world.locks.holders[world.vm.ref.resource_id.lower()] = f"{NAMESPACE}/first"
        await world.flow.run_pass(world.resource("second"))
        world.locks.holders.clear()

        for _ in range(30):
            if await world.flow.run_pass(world.resource("second")) is None:
                break

        assert world.status["phase"] == "Succeeded"


class TestSecurity:
    async def test_no_secret_value_reaches_status_or_events(self) -> None:
        world = World()
        world.deprovisioner.faults.add(
            "deprovision", errors.AuthenticationRefused("permission denied (publickey)")
        )

        await world.run()

        seen = (
            json.dumps(world.status)
            + json.dumps(world.writer.patches)  # every status ever written, not only the last
            + json.dumps([e.__dict__ for e in world.events.events])
        )
        key = PRIVATE_KEY.decode()
        # json.dumps escapes the key's newlines: look for it as written there, and for each of its lines
        for secret in (CLIENT_SECRET, json.dumps(key)[1:-1], *key.splitlines()):
            assert secret not in seen
        assert world.deprovisioner.targets[0].private_key == PRIVATE_KEY
        assert "c2VjcmV0" not in repr(world.deprovisioner.targets[0])
        assert CLIENT_SECRET not in repr(world.azure.credentials[0])

    async def test_the_operator_identity_is_used_when_no_azure_secret_is_named(self) -> None:
        world = World()
        del world.spec["azure"]
        world.policy.identity_namespaces = (NAMESPACE,)  # a cluster admin allowed it (domain/policy.py)
        world.policy.scopes[NAMESPACE] = f"/subscriptions/{world.vm.ref.subscription_id}"

        await world.run()

        assert set(world.azure.credentials) == {None}
        assert world.status["phase"] == "Succeeded"


class TestAzureClients:
    async def test_one_azure_client_serves_every_pass_and_is_closed_at_the_end(self) -> None:
        world = World()

        await world.run()
        await world.flow.aclose()

        assert len(world.azure.credentials) == 1
        assert world.azure.closed == 1

    async def test_rotated_azure_credentials_get_a_new_client(self) -> None:
        world = World()
        await world.step()
        world.secrets.secrets[(NAMESPACE, "azure-sp")] = {
            "AZURE_TENANT_ID": b"t",
            "AZURE_CLIENT_ID": b"c",
            "AZURE_CLIENT_SECRET": b"rotated",
        }

        await world.run()

        assert [c.client_secret for c in world.azure.credentials if c] == [CLIENT_SECRET, "rotated"]
        assert world.azure.closed == 1, "the client with the old secret is closed"


def test_every_error_reason_is_in_the_vocabulary() -> None:
    def subclasses(cls: type[errors.VmgenError]) -> list[type[errors.VmgenError]]:
        return [cls, *(s for c in cls.__subclasses__() for s in subclasses(c))]

    reasons = {cls.reason for cls in subclasses(errors.VmgenError)}

    assert reasons <= set(Reason), reasons - set(Reason)


def test_resources_read_the_confirm_annotation_strictly() -> None:
    base = workflow.Resource(namespace="n", name="x", generation=1, spec={}, annotations={})

    assert not base.confirmed
    assert replace(base, annotations={planner.CONFIRM_ANNOTATION: "true"}).confirmed
    assert replace(base, annotations={planner.CONFIRM_ANNOTATION: " True "}).confirmed
    assert not replace(base, annotations={planner.CONFIRM_ANNOTATION: "yes"}).confirmed


WINRM_PASSWORD = "winrm-password-4f2a"


def windows_world(transport: str = "WinRM", **machine: Any) -> World:
    world = World(fakes.linux_vm("win-01", os_type=model.OsType.WINDOWS), osType="Windows")
    world.spec.pop("ssh")
    world.spec["windows"] = {"transport": transport, "sysprepTimeout": "10m"}
    if transport == "WinRM":
        world.spec["winrm"] = {"host": "10.0.0.5", "credentialsSecretRef": {"name": "admin"}}
    world.secrets.secrets[(NAMESPACE, "admin")] = {
        "username": b"azureuser",
        "password": WINRM_PASSWORD.encode(),
    }
    world.windows.machine = fakes.FakeWindows(**machine)

    def stopped() -> None:
        world.vm.power_state = model.PowerState.STOPPED

    world.windows.machine.on_shutdown = stopped
    return world


class TestWindows:
    async def test_over_winrm_sysprep_runs_once_with_quit_and_the_vm_is_generalized(self) -> None:
        world = windows_world(sysprep_reads=3)

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.windows.machine.sysprep_starts == 1
        assert world.windows.machine.exits == ["quit"]
        assert set(world.windows.opened) == {"winrm"}
        assert world.windows.connections[0].username == "azureuser"
        assert world.condition("Deprovisioned")["reason"] == Reason.SYSPREP_SUCCEEDED
        assert "generalize" in world.azure.operations()
        assert WINRM_PASSWORD not in json.dumps(world.status)

    async def test_through_run_command_sysprep_shuts_the_vm_down_and_it_is_deallocated(self) -> None:
        world = windows_world("RunCommand")

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.windows.machine.exits == ["shutdown"]
        assert set(world.windows.opened) == {"run-command"}
        assert (NAMESPACE, "admin") not in world.secrets.reads

    async def test_a_preflight_finding_fails_with_its_reason_and_sysprep_never_starts(self) -> None:
        world = windows_world(findings={"roles": ["AD-Domain-Services"]})

        await world.run()

        assert world.condition("Ready")["reason"] == Reason.UNSUPPORTED_SERVER_ROLE
        assert "AD-Domain-Services" in world.condition("Ready")["message"]
        assert world.windows.machine.sysprep_starts == 0
        assert world.windows.machine.scripts == ["preflight"]

    async def test_an_operator_restarted_during_sysprep_reads_the_state_and_never_starts_it_again(
        self,
    ) -> None:
        world = windows_world(sysprep_reads=4)
        await until(world, lambda: world.windows.machine.sysprep_starts == 1)

        world.restart()
        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.windows.machine.sysprep_starts == 1
        assert world.windows.machine.scripts.count("sysprep-start") == 1

    async def test_a_connection_lost_after_the_start_is_settled_from_the_state(self) -> None:
        world = windows_world()
        world.windows.machine.faults.add("sysprep-start", errors.DeprovisionOutcomeUnknown("connection lost"))

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert Reason.DEPROVISION_OUTCOME_UNKNOWN in world.events.reasons("Warning")

    async def test_sysprep_stuck_past_its_timeout_fails_with_the_image_state(self) -> None:
        world = windows_world(outcome="stuck")

        await world.run(passes=200)

        assert world.condition("Ready")["reason"] == Reason.SYSPREP_TIMEOUT
        assert "SPECIALIZE" in world.condition("Ready")["message"]
        assert world.windows.machine.sysprep_starts == 1

    async def test_a_guest_unreadable_past_the_sysprep_timeout_asks_a_person(self) -> None:
        world = windows_world(outcome="stuck")
        await until(world, lambda: world.windows.machine.sysprep_starts == 1)
        for _ in range(40):
            world.windows.machine.faults.add("sysprep-state", errors.GuestUnreachable("connection refused"))

        await until(world, lambda: world.step_state("deprovision") == "Unknown", passes=60)

        assert world.condition("DeprovisionOutcomeUnknown")["status"] == "True"
        assert "sysprepTimeout" in world.condition("Ready")["message"]
        assert "waagent" not in world.condition("Ready")["message"]
        assert "kubectl annotate vmgen" in world.condition("Ready")["message"]
        assert world.windows.machine.sysprep_starts == 1

    async def test_a_preflight_whose_connection_dropped_is_retried_and_sysprep_starts_once(self) -> None:
        world = windows_world()
        world.windows.machine.faults.add("preflight", errors.DeprovisionOutcomeUnknown("connection lost"))

        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.windows.machine.scripts.count("preflight") == 2
        assert world.windows.machine.sysprep_starts == 1

    async def test_a_vm_stopped_mid_sysprep_over_winrm_waits_for_a_person_then_finishes(self) -> None:
        world = windows_world(sysprep_reads=5)
        await until(world, lambda: world.windows.machine.sysprep_starts == 1)
        world.vm.power_state = model.PowerState.STOPPED

        await until(world, lambda: world.step_state("deprovision") == "Unknown")
        assert "ImageState" in world.condition("Ready")["message"]
        world.annotations[planner.CONFIRM_ANNOTATION] = "true"
        await world.run()

        assert world.status["phase"] == "Succeeded"
        assert world.condition("Deprovisioned")["reason"] == Reason.DEPROVISION_CONFIRMED
        assert world.windows.machine.sysprep_starts == 1
