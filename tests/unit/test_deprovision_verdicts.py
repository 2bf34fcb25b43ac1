"""The Linux deprovision verdicts in full: the exact delay, reason and the facts a person reads.

tests/unit/test_deprovision_decisions.py says which verdict each piece of evidence leads to; this file
pins what is inside it (what Run Command saw, the counts, the host and port, the bound that ran out),
the deadlines at their boundary, and the guest evidence as text and as parsed from the script's output.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vmgen.domain import deprovision, guest, retry
from vmgen.domain.phases import Step, StepState
from vmgen.domain.reasons import Reason

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
INTACT = guest.Evidence(user_present=True, host_keys=3, ovf_env_present=True, waagent_running=False)
RUNNING = guest.Evidence(user_present=True, host_keys=3, ovf_env_present=False, waagent_running=True)
DONE = guest.Evidence(user_present=False, host_keys=0, ovf_env_present=False, waagent_running=False)
PARTLY = guest.Evidence(user_present=True, host_keys=0, ovf_env_present=True, waagent_running=False)
SEEN_INTACT = "user present, 3 SSH host key(s), ovf-env.xml present, waagent deprovision not running"
SEEN_RUNNING = "user present, 3 SSH host key(s), ovf-env.xml absent, waagent deprovision running"
SEEN_DONE = "user absent, 0 SSH host key(s), ovf-env.xml absent, waagent deprovision not running"


@pytest.mark.parametrize(
    ("evidence", "text"),
    [
        pytest.param(INTACT, SEEN_INTACT, id="an intact guest"),
        pytest.param(RUNNING, SEEN_RUNNING, id="a guest being deprovisioned"),
        pytest.param(DONE, SEEN_DONE, id="a deprovisioned guest"),
    ],
)
def test_the_evidence_reads_as_each_fact_run_command_saw(evidence: guest.Evidence, text: str) -> None:
    assert evidence.describe() == text


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        pytest.param(
            DONE,
            deprovision.Verified(
                f"The guest is deprovisioned already (seen via Run Command: {SEEN_DONE});"
                " not running it again."
            ),
            id="a deprovisioned guest is verified, saying what was seen",
        ),
        pytest.param(
            RUNNING,
            deprovision.StillRunning(
                f"waagent is deprovisioning the guest already (seen via Run Command: {SEEN_RUNNING}).",
                deprovision.VERIFY_AGAIN_SECONDS,
            ),
            id="a running waagent is watched again after VERIFY_AGAIN_SECONDS",
        ),
        pytest.param(INTACT, deprovision.Proceed(), id="an intact guest goes ahead"),
    ],
)
def test_the_look_before_the_first_run_in_full(evidence: guest.Evidence, expected: deprovision.Look) -> None:
    assert deprovision.after_look(evidence, delete_user=True) == expected


def _verify(
    evidence: guest.Evidence | None,
    *,
    unstarted: int = 0,
    now: datetime = NOW,
    deadline: datetime | None = NOW,
) -> deprovision.Verdict:
    step = Step(state=StepState.RUNNING, started_at=NOW, attempts=1, unstarted_runs=unstarted)
    return deprovision.after_verify(evidence, step=step, delete_user=True, deadline=deadline, now=now)


@pytest.mark.parametrize(
    ("now", "deadline", "expected"),
    [
        pytest.param(
            NOW, NOW, deprovision.StillRunning, id="exactly at the deadline waagent is still watched"
        ),
        pytest.param(
            NOW + timedelta(microseconds=1), NOW, deprovision.Unknown, id="one microsecond past it is unknown"
        ),
        pytest.param(
            NOW + timedelta(days=9), None, deprovision.StillRunning, id="without a deadline it is watched"
        ),
    ],
)
def test_a_running_waagent_may_run_until_exactly_its_deadline(
    now: datetime, deadline: datetime | None, expected: type
) -> None:
    assert type(_verify(RUNNING, now=now, deadline=deadline)) is expected


@pytest.mark.parametrize(
    ("evidence", "unstarted", "expected"),
    [
        pytest.param(
            DONE,
            0,
            deprovision.Verified(f"Deprovision verified via Run Command: {SEEN_DONE}."),
            id="a finished deprovision is verified, saying what was seen",
        ),
        pytest.param(
            RUNNING,
            0,
            deprovision.StillRunning(
                f"waagent is still deprovisioning the guest (seen via Run Command: {SEEN_RUNNING}).",
                deprovision.VERIFY_AGAIN_SECONDS,
            ),
            id="a running waagent within its deadline is watched",
        ),
        pytest.param(
            INTACT,
            1,
            deprovision.NotStarted(
                f"Run Command shows the guest intact ({SEEN_INTACT}): deprovision had not started, so it is"
                " safe to run it.",
                retry.backoff(2),
            ),
            id="a second unstarted run backs off as the second retry",
        ),
        pytest.param(
            PARTLY,
            0,
            deprovision.Unknown(
                "The guest is partly deprovisioned (user present, 0 SSH host key(s), ovf-env.xml present,"
                " waagent deprovision not running)"
            ),
            id="a partly deprovisioned guest is unknown, saying what was seen",
        ),
        pytest.param(
            None,
            0,
            deprovision.Unknown("The guest is partly deprovisioned (no usable report)"),
            id="no usable report is unknown and says so",
        ),
    ],
)
def test_the_verdict_on_an_interrupted_run_in_full(
    evidence: guest.Evidence | None, unstarted: int, expected: deprovision.Verdict
) -> None:
    assert _verify(evidence, unstarted=unstarted) == expected


def test_a_waagent_past_its_deadline_names_spec_timeouts_deprovision_and_what_was_seen() -> None:
    verdict = _verify(RUNNING, now=NOW + timedelta(seconds=1))

    assert verdict == deprovision.Unknown(
        f"waagent is still running in the guest after spec.timeouts.deprovision ({SEEN_RUNNING})"
    )


@pytest.mark.parametrize(
    ("unstarted", "gives_up"),
    [
        pytest.param(3, False, id="the fourth unstarted run may run again"),
        pytest.param(4, True, id="the fifth unstarted run gives up"),
    ],
)
def test_the_bound_on_unstarted_runs_is_exactly_max_deprovision_attempts(
    unstarted: int, gives_up: bool
) -> None:
    verdict = _verify(INTACT, unstarted=unstarted)

    if gives_up:
        assert verdict == deprovision.GiveUp(
            Reason.DEPROVISION_FAILED,
            "Deprovision was started 5 times over SSH and never got going: the connection dropped each time,"
            f" and Run Command shows the guest intact ({SEEN_INTACT}). The VM was not changed. Check the"
            " network path to spec.ssh.host, then recreate this resource.",
        )
    else:
        assert isinstance(verdict, deprovision.NotStarted) and verdict.delay == retry.backoff(4)


def test_a_failed_inspection_that_asks_a_person_says_what_run_command_said() -> None:
    verdict = deprovision.after_inspection_error(transient=False, step=Step(), message="Conflict: busy")

    assert verdict == deprovision.Unknown("Run Command could not inspect the guest (Conflict: busy)")


def test_the_unknown_message_in_full() -> None:
    assert deprovision.unknown_message("Lost", name="web", namespace="images") == (
        "Lost. vmgen cannot tell whether `waagent -deprovision` finished and will not run it again blindly."
        " Check the guest (for example through the serial console); if it was deprovisioned, set the"
        ' annotation vmgen.io/confirm-deprovisioned: "true" (kubectl annotate vmgen web -n images'
        " vmgen.io/confirm-deprovisioned=true) and vmgen deallocates and generalizes it; otherwise delete"
        " this resource."
    )


def test_the_confirmed_message_names_the_annotation() -> None:
    assert deprovision.confirmed_message() == (
        "Deprovision confirmed by a person through the annotation vmgen.io/confirm-deprovisioned."
    )


@pytest.mark.parametrize(
    ("age", "fresh"),
    [
        pytest.param(deprovision.LOOK_FRESH, True, id="a look exactly LOOK_FRESH old still stands in"),
        pytest.param(
            deprovision.LOOK_FRESH + timedelta(microseconds=1), False, id="one microsecond older does not"
        ),
    ],
)
def test_a_look_is_fresh_up_to_and_including_look_fresh(age: timedelta, fresh: bool) -> None:
    assert deprovision.look_is_fresh(Step(looked_at=NOW - age), now=NOW) is fresh


def _unreachable(
    step: Step, *, unresolvable: bool = False, timeout: timedelta = timedelta(minutes=15)
) -> deprovision.Unreachable | deprovision.GiveUp:
    return deprovision.after_unreachable(
        step,
        unresolvable=unresolvable,
        detail="refused",
        host="web-01.internal",
        port=2222,
        timeout=timeout,
        now=NOW,
    )


DNS = (
    "spec.ssh.host 'web-01.internal' does not resolve (refused). Check the name for typos (or use the VM's"
    " private IP address) and that the operator's DNS can resolve it."
)
TCP = (
    "Nothing answers SSH on web-01.internal:2222 (refused). Check spec.ssh.host and spec.ssh.port, that sshd"
    " runs on the VM, and that network security groups and firewalls let the operator reach that port."
)


@pytest.mark.parametrize(
    ("unresolvable", "reason", "what"),
    [
        pytest.param(True, Reason.GUEST_HOST_UNRESOLVABLE, DNS, id="a name that does not resolve"),
        pytest.param(False, Reason.GUEST_UNREACHABLE, TCP, id="a port nothing answers on"),
    ],
)
def test_an_unreachable_guest_says_what_to_check_and_retries_after_the_backoff(
    unresolvable: bool, reason: Reason, what: str
) -> None:
    verdict = _unreachable(Step(retries=2, unreachable_since=NOW), unresolvable=unresolvable)

    assert verdict == deprovision.Unreachable(reason, f"{what} Nothing ran on the VM.", retry.backoff(3))


@pytest.mark.parametrize(
    ("since", "timeout", "limit"),
    [
        pytest.param(
            NOW - timedelta(minutes=15), timedelta(minutes=15), "15m", id="exactly at 15m it gives up"
        ),
        pytest.param(
            NOW - timedelta(seconds=30), timedelta(seconds=30), "30s", id="a bound under a minute in s"
        ),
        pytest.param(
            NOW - timedelta(seconds=60), timedelta(seconds=60), "1m", id="a bound of one minute in m"
        ),
    ],
)
def test_an_unreachable_guest_gives_up_once_the_bound_has_passed_naming_it(
    since: datetime, timeout: timedelta, limit: str
) -> None:
    verdict = _unreachable(Step(unreachable_since=since), timeout=timeout)

    assert verdict == deprovision.GiveUp(
        Reason.GUEST_UNREACHABLE,
        f"{TCP} The guest could not be reached for {limit} (spec.timeouts.deprovision); nothing ran on the"
        " VM, which is unchanged. Fix spec.ssh or the network, then recreate this resource.",
    )


def test_one_microsecond_before_the_bound_an_unreachable_guest_is_tried_once_more_at_the_deadline() -> None:
    verdict = _unreachable(
        Step(retries=9, unreachable_since=NOW - timedelta(minutes=15) + timedelta(microseconds=1))
    )

    assert isinstance(verdict, deprovision.Unreachable) and verdict.delay == pytest.approx(1e-6)


def test_the_first_unreachable_try_starts_the_row_now() -> None:
    verdict = _unreachable(Step(), timeout=timedelta(0))

    assert isinstance(verdict, deprovision.GiveUp)


REPORT = "\n".join(
    [
        "vmgen-evidence user=present",
        "vmgen-evidence hostkeys=3",
        "vmgen-evidence ovfenv=absent",
        "vmgen-evidence waagent=running",
        "ssh-ed25519 AAAA root@web",
    ]
)


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        pytest.param(REPORT, RUNNING, id="a complete report"),
        pytest.param(
            REPORT.replace("present", "absent")
            .replace("hostkeys=3", "hostkeys=0")
            .replace("running", "idle"),
            guest.Evidence(user_present=False, host_keys=0, ovf_env_present=False, waagent_running=False),
            id="the other value of each fact",
        ),
        pytest.param("  " + REPORT.replace("\n", "\n  "), RUNNING, id="indented lines are read"),
        pytest.param(REPORT.replace("hostkeys=3", "hostkeys=three"), None, id="a count that is not a number"),
        pytest.param(REPORT.replace("user=present", "user=maybe"), None, id="an unknown user fact"),
        pytest.param(REPORT.replace("ovfenv=absent", "ovfenv=gone"), None, id="an unknown ovf-env fact"),
        pytest.param(REPORT.replace("waagent=running", "waagent=busy"), None, id="an unknown waagent fact"),
        pytest.param(
            REPORT.replace("vmgen-evidence user", "other user"), None, id="a foreign line proves nothing"
        ),
        pytest.param(REPORT.replace("user=present", "user"), None, id="a fact without a value"),
        pytest.param(REPORT.replace("vmgen-evidence waagent=running", ""), None, id="a truncated report"),
        pytest.param(REPORT + "\nvmgen-evidence user=present=x", None, id="a later garbled value of a fact"),
        pytest.param(
            REPORT + "\nvmgen-evidence user=absent again", None, id="a later fact with trailing words"
        ),
    ],
)
def test_the_evidence_is_parsed_only_from_a_complete_report(
    stdout: str, expected: guest.Evidence | None
) -> None:
    assert guest.parse_evidence(stdout) == expected


@pytest.mark.parametrize(
    ("line", "key"),
    [
        pytest.param("ssh-rsa AAAA+/9= root@x", "ssh-rsa AAAA+/9=", id="rsa with padding and a comment"),
        pytest.param("  ssh-ed25519 AAAA==  ", "ssh-ed25519 AAAA==", id="ed25519 with surrounding blanks"),
        pytest.param("ecdsa-sha2-nistp256 AAAA", "ecdsa-sha2-nistp256 AAAA", id="ecdsa p256"),
        pytest.param("ecdsa-sha2-nistp384 AAAA", "ecdsa-sha2-nistp384 AAAA", id="ecdsa p384"),
        pytest.param("ecdsa-sha2-nistp521 AAAA", "ecdsa-sha2-nistp521 AAAA", id="ecdsa p521"),
        pytest.param("ssh-dss AAAA", None, id="dsa is not trusted"),
        pytest.param("ssh-ed25519", None, id="a type without a key"),
        pytest.param("ssh-ed25519 AAAA===", None, id="more padding than base64 has"),
        pytest.param("# ssh-ed25519 AAAA", None, id="a commented line"),
        pytest.param("ssh-ed25519 AAAA@x", None, id="a key with a character base64 has not"),
    ],
)
def test_each_host_key_type_is_read_as_type_and_key(line: str, key: str | None) -> None:
    assert guest.parse_host_keys(line) == ((key,) if key else ())


def test_with_user_deletion_a_remaining_user_means_the_look_goes_ahead() -> None:
    user_left = guest.Evidence(user_present=True, host_keys=0, ovf_env_present=False, waagent_running=False)

    assert deprovision.after_look(user_left, delete_user=True) == deprovision.Proceed()
    assert isinstance(deprovision.after_look(user_left, delete_user=False), deprovision.Verified)
