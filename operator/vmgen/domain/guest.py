"""Read-only scripts run in the guest through Azure Run Command, and the pure parsers of their output.

Two questions are answered through Run Command (an authenticated channel) and never over SSH:
- Which SSH host keys does the guest have? Read before connecting, so a key is never trusted on first use.
- Did an interrupted deprovision finish? After the operator restarted mid-step, or the SSH connection
  dropped while waagent ran, rerunning waagent blindly could hit a guest that no longer has the user
  and host keys; assuming success could generalize a VM that still holds them. The evidence script
  reports facts; `judge()` turns them into Done / NotStarted / InProgress / Unknown (after
  mysql-operator's diagnose: explicit states, UNKNOWN included); Unknown asks a person, and so does
  InProgress once it outlasts spec.timeouts.deprovision.

Traps avoided: Run Command must never run waagent itself (the agent kills its own runner, WALinuxAgent
issue 3547), so the scripts only read; the process probe uses `[-]deprovision` so that it does not
match its own command line; the user name is shell-quoted.
"""

from __future__ import annotations

import enum
import re
import shlex
from dataclasses import dataclass

_KEY_LINE = re.compile(
    r"^(?P<type>ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521)"
    r"\s+(?P<data>[A-Za-z0-9+/]+={0,2})(\s.*)?$"
)


def parse_host_keys(stdout: str) -> tuple[str, ...]:
    """`type base64` for every OpenSSH public key line (comments dropped, order kept, no duplicates)."""
    keys: dict[str, None] = {}
    for line in stdout.splitlines():
        match = _KEY_LINE.match(line.strip())
        if match:
            keys[f"{match['type']} {match['data']}"] = None
    return tuple(keys)


_MARK = "vmgen-evidence"


def evidence_script(username: str) -> str:
    """A read-only probe of what `waagent -deprovision[+user]` removes, one `vmgen-evidence k=v` per line,
    followed by the guest's SSH host public keys: one Run Command answers both questions."""
    user = shlex.quote(username)
    return "\n".join(
        [
            f"if awk -F: -v u={user} '$1 == u {{ found = 1 }} END {{ exit !found }}' /etc/passwd; "
            f"then echo {_MARK} user=present; else echo {_MARK} user=absent; fi",
            f"echo {_MARK} hostkeys=$(ls /etc/ssh/ssh_host_*_key 2>/dev/null | wc -l)",
            f"if [ -e /var/lib/waagent/ovf-env.xml ]; then echo {_MARK} ovfenv=present; "
            f"else echo {_MARK} ovfenv=absent; fi",
            "if for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\" 2>/dev/null; echo; done "
            f"| grep -q 'waagent.*[-]deprovision'; then echo {_MARK} waagent=running; "
            f"else echo {_MARK} waagent=idle; fi",
            "cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null || true",
        ]
    )


@dataclass(frozen=True)
class Evidence:
    user_present: bool
    host_keys: int
    ovf_env_present: bool
    waagent_running: bool

    def describe(self) -> str:
        return (
            f"user {'present' if self.user_present else 'absent'}, {self.host_keys} SSH host key(s), "
            f"ovf-env.xml {'present' if self.ovf_env_present else 'absent'}, "
            f"waagent deprovision {'running' if self.waagent_running else 'not running'}"
        )


def parse_evidence(stdout: str) -> Evidence | None:
    """None when the output is not the complete report (a truncated or foreign answer proves nothing)."""
    facts: dict[str, str] = {}
    for line in stdout.splitlines():
        mark, _, fact = line.strip().partition(" ")
        key, sep, value = fact.partition("=")
        if mark == _MARK and sep:
            facts[key] = value
    try:
        checks = {
            "user": facts["user"] in ("present", "absent"),
            "ovfenv": facts["ovfenv"] in ("present", "absent"),
            "waagent": facts["waagent"] in ("running", "idle"),
            "hostkeys": facts["hostkeys"].isdigit(),
        }
    except KeyError:
        return None
    if not all(checks.values()):
        return None
    return Evidence(
        user_present=facts["user"] == "present",
        host_keys=int(facts["hostkeys"]),
        ovf_env_present=facts["ovfenv"] == "present",
        waagent_running=facts["waagent"] == "running",
    )


class Verdict(enum.Enum):
    DONE = "Done"
    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    UNKNOWN = "Unknown"


def judge(evidence: Evidence | None, *, delete_user: bool) -> Verdict:
    """What the evidence says about deprovision.

    waagent removes /var/lib/waagent (with ovf-env.xml) and, last, the user; host keys only when the
    image regenerates them, so they count as "intact" evidence but are not required to be gone.
    Anything in between (some things removed, waagent not running) is Unknown: only a person can say.
    """
    if evidence is None:
        return Verdict.UNKNOWN
    if evidence.waagent_running:
        return Verdict.IN_PROGRESS
    if not evidence.ovf_env_present and not (delete_user and evidence.user_present):
        return Verdict.DONE
    if evidence.ovf_env_present and evidence.user_present and evidence.host_keys > 0:
        return Verdict.NOT_STARTED
    return Verdict.UNKNOWN


def look_before_first_run(evidence: Evidence | None, *, delete_user: bool) -> Verdict:
    """What a look at a guest that vmgen has not deprovisioned yet says: presumed intact.

    Only every effect of deprovision at once (agent state gone, no host keys, and the user gone under
    +user) counts as Done, so that a guest merely lacking ovf-env.xml (a specialized image) is never
    taken for deprovisioned; a running waagent is InProgress; anything else is NotStarted (go ahead,
    as without the look). An unreadable report proves nothing either way: NotStarted.
    """
    if evidence is None:
        return Verdict.NOT_STARTED
    if evidence.waagent_running:
        return Verdict.IN_PROGRESS
    user_gone = not delete_user or not evidence.user_present
    if not evidence.ovf_env_present and evidence.host_keys == 0 and user_gone:
        return Verdict.DONE
    return Verdict.NOT_STARTED
