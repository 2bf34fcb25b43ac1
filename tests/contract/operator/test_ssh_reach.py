"""Reaching the guest before anything else: DNS and a bare TCP connect tell apart a name that does not
resolve from a port where nothing listens, and neither sends a byte of SSH.

The names used never leave the machine: a name that is not a valid host name is refused by the resolver
itself (glibc checks it before any query; strace shows no socket but nscd's), and the closed port is
on loopback.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from vmgen.adapters import ssh
from vmgen.domain import errors


def _closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there now


async def test_a_name_that_does_not_resolve_is_its_own_error() -> None:
    with pytest.raises(errors.GuestHostUnresolvable, match=r"not known|invalid|label"):
        await ssh.SshDeprovisioner().reach("web-01!not-a-host", 22)


async def test_a_name_that_is_not_even_a_dns_name_does_not_resolve() -> None:
    with pytest.raises(errors.GuestHostUnresolvable):
        await ssh.SshDeprovisioner().reach("web-01..internal", 22)


async def test_a_port_where_nothing_listens_is_unreachable_not_unresolvable() -> None:
    with pytest.raises(errors.GuestUnreachable) as caught:
        await ssh.SshDeprovisioner().reach("127.0.0.1", _closed_loopback_port())

    assert not isinstance(caught.value, errors.GuestHostUnresolvable)
    assert "errno 111" in caught.value.message.lower(), "ECONNREFUSED"


async def test_a_running_guest_is_reached(linux_vm: Callable[..., Any]) -> None:
    sandbox = linux_vm().sandbox

    await ssh.SshDeprovisioner().reach(sandbox.ip, sandbox.port)
