"""Linux deprovision over SSH (asyncssh), with pinned host keys and an honest account of failures.

`SshDeprovisioner` implements `ports.Deprovisioner`. It runs Azure's documented step, as Packer and
Image Builder do: `sudo waagent -force -deprovision+user && export HISTSIZE=0 && sync`.

Traps it avoids:
- Trust comes only from the target: the pinned `host_keys` are handed to asyncssh as a
  (trusted keys, CA keys, revoked keys) tuple, so no `~/.ssh/known_hosts` pattern matching (the
  `[host]:port` form for a port other than 22 cannot go wrong) and no other source of trust. asyncssh
  then offers only the pinned keys' algorithms, so a server with several host keys presents the
  pinned kind. No `~/.ssh/config`, no agent, no X.509 bundle, no password or keyboard-interactive
  prompt: public-key authentication with `target.private_key` only.
- A key the guest presents that is not pinned ends in HostKeyMismatch naming the host, the key type
  and its fingerprint (public data), never the private key.
- waagent must outlive the connection. A lost client can hit it two ways: SIGHUP (a pty session, or
  a shell that forwards it) and a session whose pipes are gone (every later write fails). So waagent
  runs under `trap "" HUP PIPE` with its output in a guest temp file, copied to stdout (success) or
  stderr (failure) once it exited. Measured in the testbed: waagent 2.x prints only its warnings, at
  the start, so even the bare command survived a dropped connection; the guard keeps that true for an
  agent or sshd that behaves otherwise.
- Uncertain is its own outcome: anything that goes wrong before the session opened (connect
  refused/timed out, key refused, no session) proves nothing ran; a lost connection or a timeout
  after that is DeprovisionOutcomeUnknown, never success and never failure.
- Reachability first (`reach`): DNS and a bare TCP connect, so a guest that cannot be reached is told
  apart (GuestHostUnresolvable vs GuestUnreachable) without reading Secrets or asking Azure anything.
- After deprovision the open connection survives but new ones are reset (sshd finds no host keys)
  and `sudo` fails (the user is gone): everything runs in the one session.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import asyncssh

from vmgen.domain import errors, model

__all__ = ["SshDeprovisioner", "deprovision_command"]

_STDERR_TAIL_LINES = 20


def deprovision_command(*, delete_user: bool) -> str:
    action = "-deprovision+user" if delete_user else "-deprovision"
    script = (
        'trap "" HUP PIPE; log=$(mktemp) || exit 1; '
        f'waagent -force {action} >"$log" 2>&1; rc=$?; '
        'if [ "$rc" -eq 0 ]; then cat "$log"; else cat "$log" >&2; fi; rm -f "$log"; exit "$rc"'
    )
    return f"sudo -n sh -c '{script}' && export HISTSIZE=0 && sync"


class SshDeprovisioner:
    """`ports.Deprovisioner` over asyncssh."""

    def __init__(self, *, connect_timeout: float = 20.0, keepalive_interval: float = 15.0) -> None:
        self._connect_timeout = connect_timeout
        self._keepalive_interval = keepalive_interval

    async def reach(self, host: str, port: int) -> None:
        try:
            await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: not even a valid DNS name (idna)
            raise errors.GuestHostUnresolvable(_describe(exc)) from exc
        try:
            async with asyncio.timeout(self._connect_timeout):
                _reader, writer = await asyncio.open_connection(host, port)
        except TimeoutError as exc:  # before OSError: a dropped SYN is a timeout, not a refusal
            raise errors.GuestUnreachable(f"no answer within {self._connect_timeout:g}s") from exc
        except OSError as exc:
            raise errors.GuestUnreachable(_describe(exc)) from exc
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def probe(self, target: model.SshTarget) -> None:
        """Preflight: connect with the verified host key and the user's key and check that sudo works
        without a password (`sudo -n true`). Changes nothing in the guest."""
        async with self._session(target) as conn:
            try:
                result = await asyncio.wait_for(
                    conn.run("sudo -n true", check=False, stdin=asyncssh.DEVNULL), 30
                )
            except (asyncssh.Error, OSError, TimeoutError) as exc:
                raise errors.GuestUnreachable(
                    f"The SSH session to {_where(target)} failed: {_describe(exc)}"
                ) from exc
        if result.returncode != 0:
            raise errors.AuthenticationRefused(
                f"{_where(target)} accepted the SSH key for {target.username!r}, but `sudo -n true` failed"
                f" ({_text(result.stderr).strip() or result.returncode}): waagent needs passwordless sudo."
            )

    async def deprovision(
        self,
        target: model.SshTarget,
        *,
        delete_user: bool,
        timeout: float,  # noqa: ASYNC109 - the port's signature; it bounds waagent, not the connect
    ) -> str:
        command = deprovision_command(delete_user=delete_user)
        async with self._session(target) as conn:
            try:
                result = await asyncio.wait_for(
                    conn.run(command, check=False, stdin=asyncssh.DEVNULL),
                    timeout,
                )
            except asyncssh.ChannelOpenError as exc:
                raise errors.GuestUnreachable(
                    f"{_where(target)} refused an SSH session before anything ran: {exc.reason}"
                ) from exc
            except TimeoutError as exc:
                raise errors.DeprovisionOutcomeUnknown(
                    f"waagent did not finish within {timeout:g}s on {_where(target)}; it may still be"
                    " running there."
                ) from exc
            except (asyncssh.Error, OSError) as exc:
                raise errors.DeprovisionOutcomeUnknown(
                    f"The SSH connection to {_where(target)} was lost while waagent may have been running"
                    f" ({_describe(exc)}); deprovision may or may not have completed."
                ) from exc
        if result.exit_status is None:
            raise errors.DeprovisionOutcomeUnknown(
                f"The SSH connection to {_where(target)} was lost before waagent's exit status came back;"
                " deprovision may or may not have completed."
            )
        if result.returncode != 0:
            raise errors.DeprovisionFailed(
                f"waagent deprovision on {_where(target)} exited with {_exit(result)}:"
                f" {_tail(_text(result.stderr)) or '(no output)'}"
            )
        return _text(result.stdout)

    @contextlib.asynccontextmanager
    async def _session(self, target: model.SshTarget) -> AsyncIterator[asyncssh.SSHClientConnection]:
        """A verified, authenticated connection; errors before it exists prove nothing ran."""
        trusted = _host_keys(target)
        witness = _HostKeyWitness()
        try:
            conn = await asyncssh.connect(
                target.host,
                target.port,
                username=target.username,
                client_keys=[_private_key(target)],
                known_hosts=(trusted, [], []),
                client_factory=lambda: witness,
                config=[],
                agent_path=None,
                x509_trusted_certs=None,
                preferred_auth=["publickey"],
                password_auth=False,
                kbdint_auth=False,
                host_based_auth=False,
                gss_auth=False,
                gss_kex=False,
                connect_timeout=self._connect_timeout,
                keepalive_interval=self._keepalive_interval,
                keepalive_count_max=4,
            )
        except (asyncssh.HostKeyNotVerifiable, asyncssh.KeyExchangeFailed) as exc:
            pinned = ", ".join(sorted({key.get_algorithm() for key in trusted}))
            presented = (
                f"an {witness.untrusted.get_algorithm()} host key ({witness.untrusted.get_fingerprint()})"
                if witness.untrusted
                else f"no acceptable host key ({exc.reason})"
            )
            raise errors.HostKeyMismatch(
                f"{_where(target)} presented {presented}, which matches none of the trusted host keys"
                f" ({pinned}; from spec.ssh.hostKeys, or read through Run Command when none are pinned)."
                " Check that spec.ssh.host is this VM's address; read the VM's keys with `az vm run-command"
                " invoke --command-id RunShellScript --scripts 'cat /etc/ssh/ssh_host_*_key.pub'` and pin"
                " them, then recreate this resource. Nothing ran on the host."
            ) from exc
        except asyncssh.PermissionDenied as exc:
            raise errors.AuthenticationRefused(
                f"{_where(target)} refused the SSH key for user {target.username!r}. Check that the"
                " privateKeySecretRef Secret holds this user's private key (key ssh-privatekey) and that its"
                " public key is in ~/.ssh/authorized_keys on the VM, then recreate this resource. Nothing ran"
                " on the VM."
            ) from exc
        except socket.gaierror as exc:
            raise errors.GuestHostUnresolvable(f"{target.host} does not resolve: {_describe(exc)}") from exc
        except (asyncssh.Error, OSError) as exc:  # refused, reset, unreachable, timed out (TimeoutError)
            raise errors.GuestUnreachable(f"Cannot open SSH to {_where(target)}: {_describe(exc)}") from exc
        try:
            yield conn
        finally:
            conn.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)


class _HostKeyWitness(asyncssh.SSHClient):
    """Remembers the host key that matched no pinned key, to name it in HostKeyMismatch."""

    untrusted: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.untrusted = key
        return False


def _host_keys(target: model.SshTarget) -> list[asyncssh.SSHKey]:
    if not target.host_keys:
        raise errors.InvalidSpec(f"No SSH host keys are pinned for {_where(target)}; refusing to connect.")
    try:
        return [asyncssh.import_public_key(key) for key in target.host_keys]
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise errors.InvalidSpec(f"A pinned SSH host key for {_where(target)} is not valid: {exc}") from exc


def _private_key(target: model.SshTarget) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_private_key(target.private_key)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise errors.InvalidSpec(f"The SSH private key for {_where(target)} cannot be used: {exc}") from exc


def _where(target: model.SshTarget) -> str:
    return f"{target.host}:{target.port}"


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _text(stream: str | bytes | None) -> str:
    if isinstance(stream, bytes):
        return stream.decode("utf-8", "replace")
    return stream or ""


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-_STDERR_TAIL_LINES:])


def _exit(result: asyncssh.SSHCompletedProcess) -> str:
    if result.exit_signal is not None:
        return f"signal {result.exit_signal[0]}"
    return f"status {result.exit_status}"
